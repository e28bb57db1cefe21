// Package flow holds per-connection TCP health records and the bounded table
// that turns them into per-interval aggregates.
//
// Sources (the eBPF and sock_diag back ends in collector/flows) push Records
// into a Table. The Table is the one place where per-connection state lives:
// it is bounded (MaxEntries, least-recently-updated entries evicted first),
// forgets open connections that stopped being reported (IdleTimeout) and
// keeps closed connections for a few intervals so the flow API can show them.
//
// Every Roll (one per collector interval) computes what each connection did
// since the previous Roll, adds it to monotonic totals with bounded labels
// (direction and traffic direction only), and folds the connections into
// groups keyed by (local IP, remote IP, server port, direction): the client's
// ephemeral port is dropped. The groups are ranked by a loss/latency score and
// the first TopK are kept; all others are summed into one "other" group.
// Per-connection 5-tuples never become metric labels.
package flow
