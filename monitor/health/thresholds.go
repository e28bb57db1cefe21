package health

import "time"

// Level is an entry threshold and the exit threshold a held verdict is
// judged by (below the entry one).
type Level struct{ Enter, Exit float64 }

// at returns the threshold in force: Exit while the verdict is held.
func (l Level) at(held bool) float64 {
	if held {
		return l.Exit
	}
	return l.Enter
}

// Thresholds are the rules' numbers (docs/health.md explains each).
type Thresholds struct {
	// Activity gate: a remote counts as active for loss when it sent at
	// least MinSegments data segments in the window, for connect outcomes
	// when it saw at least MinConnects connects (or SYN retransmissions).
	// A monitor with no active remote and no host signal is
	// insufficient_data.
	MinSegments uint64
	MinConnects uint64

	// LossRatio is retransmissions minus DSACK-confirmed spurious ones
	// over data segments; LossMin the least such retransmissions.
	LossRatio Level
	LossMin   uint64
	// RTOs in the window that mark a remote lossy on their own.
	RTOs Level
	// ConnectFail is (SYN retransmissions + connect timeouts) over
	// connects attempted.
	ConnectFail Level
	// Latency inflation: current handshake / min RTT at least
	// LatencyRatio times the learned baseline and LatencyAbs above it.
	LatencyRatio Level
	LatencyAbs   time.Duration
	// BaselineSpan is how long the per-remote baseline (the lowest
	// latency seen, kept in one-minute slots) remembers; BaselineAfter how
	// long a remote must have been seen before its latency is judged.
	BaselineSpan, BaselineAfter time.Duration
	// PathShare is the share of the active remotes in a scope that must
	// be affected for path_degraded (with at least two affected).
	PathShare float64

	// Refused connects, resets of established connections, zero windows
	// received from the peer (remote_application).
	Refused, Resets, PeerZeroWindow Level
	// RwndLimited is the share of busy time limited by the peer's
	// receive window, with at least MinBusy busy time.
	RwndLimited Level
	MinBusy     time.Duration
	// ZeroWindowSent are zero-window adverts of this host
	// (local_application), ListenOverflows the netstat
	// ListenOverflows/ListenDrops delta.
	ZeroWindowSent, ListenOverflows Level
	// SndbufLimited share of busy time (a finding only).
	SndbufLimited float64

	// HostDrops are kernel drops inside this host (hostDropReasons);
	// ConntrackDrops conntrack drop + early_drop + insert_failed;
	// ConntrackFill the entries/limit ratio that counts as full.
	HostDrops, ConntrackDrops, ConntrackFill Level
	// NICExceeded is the allowance-exceeded delta over the window.
	NICExceeded Level
}

// DefaultThresholds are the tuned defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MinSegments:     100,
		MinConnects:     3,
		LossRatio:       Level{Enter: 0.01, Exit: 0.004},
		LossMin:         5,
		RTOs:            Level{Enter: 3, Exit: 1},
		ConnectFail:     Level{Enter: 0.2, Exit: 0.1},
		LatencyRatio:    Level{Enter: 1.5, Exit: 1.25},
		LatencyAbs:      5 * time.Millisecond,
		BaselineSpan:    15 * time.Minute,
		BaselineAfter:   20 * time.Second,
		PathShare:       2.0 / 3,
		Refused:         Level{Enter: 3, Exit: 1},
		Resets:          Level{Enter: 3, Exit: 1},
		PeerZeroWindow:  Level{Enter: 3, Exit: 1},
		RwndLimited:     Level{Enter: 0.5, Exit: 0.25},
		MinBusy:         time.Second,
		ZeroWindowSent:  Level{Enter: 2, Exit: 1},
		ListenOverflows: Level{Enter: 3, Exit: 1},
		SndbufLimited:   0.8,
		HostDrops:       Level{Enter: 10, Exit: 3},
		ConntrackDrops:  Level{Enter: 3, Exit: 1},
		ConntrackFill:   Level{Enter: 0.98, Exit: 0.95},
		NICExceeded:     Level{Enter: 1, Exit: 1},
	}
}

// Config is the engine's configuration.
type Config struct {
	Thresholds Thresholds
	// EnterAfter consecutive evaluations make a degraded verdict current;
	// LeaveAfter consecutive healthy ones end it.
	EnterAfter, LeaveAfter int
	// MaxTransitions kept per monitor for the timeline.
	MaxTransitions int
	// MaxBaselines bounds the per-remote latency baselines (least
	// recently seen evicted).
	MaxBaselines int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Thresholds: DefaultThresholds(), EnterAfter: 2, LeaveAfter: 5, MaxTransitions: 64, MaxBaselines: 4096}
}
