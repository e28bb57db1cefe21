// Package sockets counts inet sockets per protocol, family and state from
// sock_diag (NETLINK_SOCK_DIAG), and computes the "tracked connections"
// figure the way the EC2 connection-tracking guide's `ss | awk` pipeline does: every TCP and UDP
// socket in every state whose peer is neither a wildcard (listening or
// unconnected) nor 127.0.0.1 / ::ffff:127.0.0.1.
//
// Count is exported for other netsight parts (the nic collector's
// conntrack capacity, `netsight conntrack`).
package sockets
