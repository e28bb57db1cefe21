// Package kernel holds netsight's shared kernel access: procfs, sysfs and
// capabilities with configurable roots (so unit tests read fixtures instead
// of the host), the conntrack procfs and ctnetlink readers, ethtool, BPF
// socket iterators, and the one NETLINK_SOCK_DIAG client (SockDiag: dumps
// with or without tcp_info; WatchDestroyedTCP: the destroy multicast groups)
// used by the sockets counter and the flows sock_diag back end.
package kernel
