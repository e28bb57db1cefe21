// Package agenttest builds the netsight binary from the repository and runs
// it for the deployment tests (chart, unit, dashboards, packages): as root or
// under setpriv with a given capability set, on a free loopback port, with a
// temporary data directory, stopped when the test ends.
package agenttest
