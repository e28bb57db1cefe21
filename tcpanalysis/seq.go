package tcpanalysis

// Sequence-number arithmetic modulo 2^32 (RFC 793 section 3.3, RFC 1982):
// a is "less than" b when b is less than 2^31 ahead of a. All comparisons of
// sequence and acknowledgement numbers in this package go through these, so
// a connection that wraps its sequence space is analysed like any other.

func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }
func seqGE(a, b uint32) bool { return int32(a-b) >= 0 }
