package conntrack

import "golang.org/x/sys/unix"

// Label vocabularies. Every label value comes from these fixed tables, so the
// per-state series are bounded by construction: 3 families x 8 protocols x
// at most 16 states, in practice far fewer (see docs/collectors/conntrack.md).

const (
	nFam   = 3
	nProto = 8
	nState = 16
)

var famNames = [nFam]string{"ipv4", "ipv6", "other"}

func famIndex(f uint8) int {
	switch f {
	case unix.AF_INET:
		return 0
	case unix.AF_INET6:
		return 1
	}
	return 2
}

var protoNames = [nProto]string{"tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "gre", "other"}

func protoIndex(p uint8) int {
	switch p {
	case unix.IPPROTO_TCP:
		return 0
	case unix.IPPROTO_UDP:
		return 1
	case unix.IPPROTO_ICMP:
		return 2
	case unix.IPPROTO_ICMPV6:
		return 3
	case unix.IPPROTO_SCTP:
		return 4
	case unix.IPPROTO_DCCP:
		return 5
	case unix.IPPROTO_GRE:
		return 6
	}
	return 7
}

// tcpStates is enum tcp_conntrack (include/uapi/linux/netfilter/nf_conntrack_tcp.h),
// named as `conntrack -L` prints them, in snake_case.
var tcpStates = []string{"none", "syn_sent", "syn_recv", "established", "fin_wait", "close_wait",
	"last_ack", "time_wait", "close", "syn_sent2"}

// sctpStates is enum sctp_conntrack.
var sctpStates = []string{"none", "closed", "cookie_wait", "cookie_echoed", "established",
	"shutdown_sent", "shutdown_recd", "shutdown_ack_sent", "heartbeat_sent"}

// dccpStates is enum ct_dccp_states.
var dccpStates = []string{"none", "request", "respond", "partopen", "open", "closereq", "closing",
	"timewait"}

// Protocols without a state machine get a state from the status bits, as
// `conntrack -L` shows [UNREPLIED] / [ASSURED].
const (
	stUnreplied = 13
	stReplied   = 14
	stAssured   = 15
	stUnknown   = 12
)

func stateName(proto, st int) string {
	switch st {
	case stUnreplied:
		return "unreplied"
	case stReplied:
		return "replied"
	case stAssured:
		return "assured"
	case stUnknown:
		return "unknown"
	}
	var names []string
	switch proto {
	case 0:
		names = tcpStates
	case 4:
		names = sctpStates
	case 5:
		names = dccpStates
	}
	if st < len(names) {
		return names[st]
	}
	return "unknown"
}

func stateIndex(proto int, hasState bool, state uint8, status uint32) int {
	if hasState && (proto == 0 || proto == 4 || proto == 5) {
		limit := len(tcpStates)
		switch proto {
		case 4:
			limit = len(sctpStates)
		case 5:
			limit = len(dccpStates)
		}
		if int(state) < limit {
			return int(state)
		}
		return stUnknown
	}
	switch {
	case status&(1<<2) != 0:
		return stAssured
	case status&(1<<1) != 0:
		return stReplied
	}
	return stUnreplied
}
