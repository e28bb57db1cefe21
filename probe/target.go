package probe

import (
	"fmt"
	"net/netip"
	"time"
)

// Protocol is the probe type.
type Protocol string

// Probe protocols.
const (
	ICMP Protocol = "icmp"
	TCP  Protocol = "tcp"
)

// Limits shared by the collector config and the command line.
const (
	// MinSize and MaxSize bound the ICMP payload size in bytes (the data
	// after the 8-byte ICMP header, as `ping -s`). The payload carries a
	// 16-byte token, so the minimum leaves room for it.
	MinSize = 56
	MaxSize = 8500
	// DefaultSize is ping's default payload: 64-byte ICMP messages.
	DefaultSize = 56
	// MinInterval is the smallest probe interval accepted.
	MinInterval = 10 * time.Millisecond
	// MaxInterval is the largest probe interval accepted.
	MaxInterval = time.Hour
	// DefaultInterval is one probe per second per target.
	DefaultInterval = time.Second
	// DefaultTimeout is how long a probe waits for its answer. It lets a TCP
	// probe survive one lost SYN or SYN-ACK (Linux retransmits the SYN after
	// 1 s) so that loss is counted as loss rather than as a failed probe.
	DefaultTimeout = 2 * time.Second
	// DefaultPeriod is the aggregation period (30 s or 60 s in production).
	DefaultPeriod = 30 * time.Second
)

// Target is one destination to probe.
type Target struct {
	// Name identifies the target in results and metrics.
	Name string
	// Host is an IP address or a DNS name (re-resolved on a schedule).
	Host string
	// Port is the TCP port (TCP only).
	Port uint16
	// Protocol is ICMP or TCP.
	Protocol Protocol
	// Size is the ICMP payload size in bytes (ICMP only; 0 means DefaultSize).
	Size int
	// DF sets don't-fragment on ICMP probes (path MTU checks).
	DF bool
	// IPv6 forces AAAA resolution for names; otherwise A records are tried
	// first. Literal addresses decide their own family.
	IPv6 bool
	// Interval between probes (0 means DefaultInterval).
	Interval time.Duration
	// Timeout of one probe (0 means DefaultTimeout, capped so that it never
	// exceeds 10 intervals).
	Timeout time.Duration
}

func (t *Target) interval() time.Duration {
	if t.Interval <= 0 {
		return DefaultInterval
	}
	return t.Interval
}

func (t *Target) timeout() time.Duration {
	if t.Timeout <= 0 {
		return DefaultTimeout
	}
	return t.Timeout
}

func (t *Target) size() int {
	if t.Size <= 0 {
		return DefaultSize
	}
	return t.Size
}

// Validate checks the fields the engine relies on; the collector config
// does the user-facing validation with field paths.
func (t *Target) Validate() error {
	switch {
	case t.Host == "":
		return fmt.Errorf("target %q: empty host", t.Name)
	case t.Protocol != ICMP && t.Protocol != TCP:
		return fmt.Errorf("target %q: unknown protocol %q", t.Name, t.Protocol)
	case t.Protocol == TCP && t.Port == 0:
		return fmt.Errorf("target %q: tcp needs a port", t.Name)
	case t.Size != 0 && (t.Size < MinSize || t.Size > MaxSize):
		return fmt.Errorf("target %q: size %d outside %d..%d", t.Name, t.Size, MinSize, MaxSize)
	case t.Interval != 0 && (t.Interval < MinInterval || t.Interval > MaxInterval):
		return fmt.Errorf("target %q: interval %s outside %s..%s", t.Name, t.Interval, MinInterval, MaxInterval)
	}
	return nil
}

// Outcome classifies one probe.
type Outcome uint8

// Probe outcomes. Every probe ends in exactly one.
const (
	// OK: an echo reply came back, or the TCP handshake completed.
	OK Outcome = iota
	// Refused: the TCP port answered with RST. The path works; the service
	// does not.
	Refused
	// Timeout: nothing came back before the probe's timeout.
	Timeout
	// Unreachable: an ICMP error (host/net unreachable) or EHOSTUNREACH /
	// ENETUNREACH came back.
	Unreachable
	// Error: the probe could not be sent (name does not resolve, no
	// socket, message too long with DF, ...).
	Error
	numOutcomes
)

// Outcomes lists every outcome in order.
var Outcomes = []Outcome{OK, Refused, Timeout, Unreachable, Error}

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Refused:
		return "refused"
	case Timeout:
		return "timeout"
	case Unreachable:
		return "unreachable"
	case Error:
		return "error"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Result is the end of one probe.
type Result struct {
	// Target is the index of the target in the slice given to New.
	Target int
	// Start is when the probe was sent; it decides the aggregation period.
	Start time.Time
	// Addr is the address probed (invalid if the name did not resolve).
	Addr    netip.Addr
	Outcome Outcome
	// Sent counts packets sent for this probe: 1 for ICMP, 1 + SYN
	// retransmissions for TCP. Received counts those answered (0 or 1).
	// Sent-Received packets were lost.
	Sent, Received int
	// RTT is valid when HasRTT. A probe whose answer needed a retransmitted
	// SYN reports the RTT of the answered SYN (from tcp_info), or none.
	RTT    time.Duration
	HasRTT bool
	// Err says why, for Error and Unreachable outcomes.
	Err error
}
