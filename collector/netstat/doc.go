// Package netstat exports the TCP/IP stack counters of /proc/net/netstat and
// /proc/net/snmp that tell where the host's own stack drops or stalls
// (listen queue overflows, receive-queue and backlog drops, zero-window
// adverts, timeouts, SYN retransmissions), for the agent's network
// namespace, as a fixed set of counters. NetStat reads the same counters of
// any other network namespace on demand, through a process inside it, for
// the health verdict.
package netstat
