// Package monitor holds netsight's derived views: values computed from what
// the sources export rather than read from the kernel. Today: the NIC
// connection capacity (the EC2 connection-tracking guide's "total
// connections supported" = conntrack_allowance_available + tracked
// connections) and the conntrack exhaustion forecast (least-squares growth
// over a window, time until the table is full).
//
// The math is plain functions and types (NICCapacity, Forecast) that
// `netsight conntrack` calls directly; Collector is the prometheus.Collector
// the agent registers, which reads the raw values the running sources
// expose through small read interfaces (AllowanceReader, TrackedReader,
// ConntrackReader). Sources never import this package (docs/architecture.md).
package monitor
