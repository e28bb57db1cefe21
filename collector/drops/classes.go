package drops

import "strings"

// Classes of drop reasons, for the health verdict and the docs: what a
// growing count of the reason most likely means.
const (
	// ClassStack: this host's stack or its configuration dropped packets
	// that were fine (netfilter, qdisc, backlog, neighbour, memory, BPF,
	// routing): the verdict's host_stack.
	ClassStack = "stack"
	// ClassApplication: a local application does not keep up (receive
	// buffer, accept queue, zero window).
	ClassApplication = "application"
	// ClassCorrupt: the packet arrived damaged (checksum, header,
	// truncated): the path or the peer.
	ClassCorrupt = "corrupt"
	// ClassProtocol: the protocol's normal work (packets to closed ports,
	// old or out-of-window segments, data freed at socket close,
	// NOT_SPECIFIED): no sign of trouble by itself.
	ClassProtocol = "protocol"
)

var classes = map[string]string{
	"SOCKET_RCVBUFF": ClassApplication, "SOCKET_BACKLOG": ClassApplication, "TCP_LISTEN_OVERFLOW": ClassApplication,
	"TCP_ZEROWINDOW": ClassApplication, "TCP_OFO_QUEUE_PRUNE": ClassApplication, "PROTO_MEM": ClassStack,

	"TCP_CSUM": ClassCorrupt, "UDP_CSUM": ClassCorrupt, "IP_CSUM": ClassCorrupt, "ICMP_CSUM": ClassCorrupt,
	"SKB_CSUM": ClassCorrupt, "IP_INHDR": ClassCorrupt, "PKT_TOO_SMALL": ClassCorrupt, "HDR_TRUNC": ClassCorrupt,
	"DEV_HDR": ClassCorrupt, "INVALID_PROTO": ClassCorrupt, "IPV6_BAD_EXTHDR": ClassCorrupt,

	"NETFILTER_DROP": ClassStack, "CPU_BACKLOG": ClassStack, "FULL_RING": ClassStack, "NOMEM": ClassStack,
	"IP_OUTNOROUTES": ClassStack, "IP_INNOROUTES": ClassStack, "IP_RPFILTER": ClassStack, "BPF_CGROUP_EGRESS": ClassStack,
	"XDP": ClassStack, "TC_EGRESS": ClassStack, "TC_INGRESS": ClassStack, "SECURITY_HOOK": ClassStack,
	"DEV_READY": ClassStack, "SKB_GSO_SEG": ClassStack, "SKB_UCOPY_FAULT": ClassStack, "TAP_FILTER": ClassStack,
	"TAP_TXFILTER": ClassStack, "XFRM_POLICY": ClassStack, "IPV6DISABLED": ClassStack, "PKT_TOO_BIG": ClassStack,
	"RECURSION_LIMIT": ClassStack, "NO_TX_TARGET": ClassStack, "TUNNEL_TXINFO": ClassStack, "PFMEMALLOC": ClassStack,
	"TC_COOKIE_ERROR": ClassStack, "TC_CHAIN_NOTFOUND": ClassStack, "TC_RECLASSIFY_LOOP": ClassStack,
	"FRAG_REASM_TIMEOUT": ClassStack,
}

// Class returns the class of a reason label (ClassProtocol for any reason
// not listed: new reasons of newer kernels count as protocol work until
// classified). Every QDISC_*, NEIGH_*, FQ_* and CAKE_* reason is a stack
// drop.
func Class(reason string) string {
	if c, ok := classes[reason]; ok {
		return c
	}
	for _, p := range []string{"QDISC_", "NEIGH_", "FQ_", "CAKE_", "DUALPI2_"} {
		if strings.HasPrefix(reason, p) {
			return ClassStack
		}
	}
	return ClassProtocol
}

// DropClass is Class, as a method for the health verdict's read interface
// (which cannot import this package).
func (*Collector) DropClass(reason string) string { return Class(reason) }
