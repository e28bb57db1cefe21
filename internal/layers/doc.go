// Package layers states netsight's import rule and checks a package graph
// against it (its test checks the real tree; `make test` runs it):
//
//	cmd -> agent -> {web, export/*, store, monitor, collector/*} -> {flow, tcpanalysis, probe} -> internal/kernel
//	config at the bottom; nothing imports agent; no source imports another
//	source, web, store, monitor or an output.
package layers
