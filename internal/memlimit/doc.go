// Package memlimit sets the Go runtime's soft memory limit (GOMEMLIMIT) at
// start-up, so the garbage collector works harder as the agent approaches
// its memory budget instead of letting the heap grow until the kernel's OOM
// killer ends the process.
//
// The limit is chosen in this order: a GOMEMLIMIT environment variable (the
// runtime already applied it; it is left alone), the config's
// limits.memory, or Ratio (85%) of the memory limit of the cgroup the agent
// runs in (cgroup v2 memory.max or v1 memory.limit_in_bytes, found through
// /proc/self/cgroup and /proc/self/mountinfo by
// github.com/KimMachineGun/automemlimit). Without any of these no limit is
// set. The choice is logged.
package memlimit
