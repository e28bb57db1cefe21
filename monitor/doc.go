// Package monitor holds netsight's derived views: values computed from what
// the sources export rather than read from the kernel.
//
// The monitors engine (Engine) is the agent's flow table observer: it rolls
// every connection's delta up into 10 s and 1 min slots per monitor (named
// local × remote scopes from config, plus "all"), per traffic category and
// per group (at most 2,048), classifying addresses with monitor/topology. It
// serves Windows (the contract with the health verdict, window.go), the
// monitors API (Handler) and its metrics (it is a prometheus.Collector).
// docs/monitors.md describes what it counts.
//
// The NIC connection capacity (the EC2 connection-tracking guide's "total
// connections supported" = conntrack_allowance_available + tracked
// connections) and the conntrack exhaustion forecast (least-squares growth
// over a window, time until the table is full) are plain functions and
// types (NICCapacity, Forecast) that `netsight conntrack` calls directly;
// Collector is the prometheus.Collector the agent registers for them, which
// reads the raw values the running sources expose through small read
// interfaces (AllowanceReader, TrackedReader, ConntrackReader). Sources never
// import this package (docs/architecture.md).
package monitor
