// Package agent wires netsight together: config -> collectors -> outputs,
// the HTTP server, signals (SIGINT/SIGTERM stop within 5 s, SIGHUP reloads)
// and the lifecycle of everything it starts.
package agent
