// Package e2e drives the real netsight binary for end-to-end lab tests and
// the soak run (bench/soak): it builds the binary once, starts `netsight run`
// inside a lab network namespace and a memory-limited cgroup (testlab.Cgroup),
// and talks to it only through its config file, its HTTP endpoints (/metrics,
// the query API) and /proc, so the tests do not depend on how the agent is
// wired inside.
//
// The tests in this package are the flood and churn tests of the hardening
// work: a SYN flood with random source ports into a captured namespace, 100,000
// short connections through the flows collector, and 100 interfaces created
// and deleted while capture follows them. Each runs the agent under a memory
// limit and checks RSS, file descriptors and goroutines.
package e2e
