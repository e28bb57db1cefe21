// Package tcpanalysis decodes captured frames (Ethernet, 802.1Q/802.1ad,
// Linux cooked v1/v2, raw IP, BSD loopback; IPv4, IPv6 with extension
// headers; TCP, UDP) without allocating, and analyses TCP per flow and per
// direction the way Wireshark's tcp.analysis.* does: retransmissions (plain,
// fast, spurious), out-of-order, duplicate ACKs, zero windows and probes,
// window full, window updates, keep-alives, segments not captured, RST/FIN
// by side, the window-scale value from the SYN options, the DF bit,
// handshake RTTs and ACK-based RTT samples, plus packet and payload size
// histograms. Sequence numbers are compared modulo 2^32, so wrap-around is
// handled. Where the definitions differ from Wireshark on purpose,
// docs/analyze.md says so.
//
// The same Analyzer serves the live capture collector (collector/capture)
// and `netsight analyze` on pcap/pcapng files (package pcapfile). Its flow
// table is bounded (capacity with LRU eviction, idle timeout) and counts
// evictions by reason.
package tcpanalysis
