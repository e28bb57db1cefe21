// Package nftables implements the opt-in conntrack-state counters of seed
// 003: when enabled, netsight creates its own `inet netsight` table holding
// named counters for {ipv4, ipv6} x {tcp, udp} x {input, output, forward} x
// {new, established, invalid}, fed by one rule each in three base chains,
// exports them as counters and deletes that table (and only it) on shutdown.
// It never touches another table. Disabled by default: enabling it is
// consenting to netsight adding this table to the firewall.
package nftables
