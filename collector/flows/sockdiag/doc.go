// Package sockdiag is the flows back end for hosts where eBPF cannot load:
// it dumps TCP sockets with tcp_info through NETLINK_SOCK_DIAG (INET_DIAG)
// and subscribes to the kernel's destroy notifications
// (SKNLGRP_INET_TCP_DESTROY / SKNLGRP_INET6_TCP_DESTROY), which carry each
// closing socket's final tcp_info. Connections closed while the notification
// socket overran are reported with the values of the last poll. The
// netlink side (requests, parsing, the destroy groups) is
// internal/kernel's SockDiag and WatchDestroyedTCP, which the sockets
// collector's counter uses too.
package sockdiag
