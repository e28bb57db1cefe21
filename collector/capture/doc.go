// Package capture is the live packet capture collector: one AF_PACKET
// TPACKET_V3 ring (gopacket/afpacket, pure Go) per selected interface, with
// a classic BPF filter assembled in-process (TCP only, optionally by port,
// headers only), interfaces followed as they appear and disappear through
// rtnetlink link events. Each ring feeds its own tcpanalysis.Analyzer;
// metrics are per device and direction, with kernel drop counts from
// PACKET_STATISTICS. See docs/collectors/capture.md.
package capture
