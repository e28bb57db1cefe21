package sockdiag

import (
	"os"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/kernel"
)

func TestBackendNetNSOwn(t *testing.T) {
	self := flow.NetNSInode("/proc/self/ns/net")
	if self == 0 {
		t.Fatal("cannot stat /proc/self/ns/net")
	}
	if got := New(Options{}).NetNS(); got != self {
		t.Errorf("own namespace inode %d, want %d", got, self)
	}
	// An explicit descriptor is looked up with fstat.
	f, err := os.Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := New(Options{NetNS: int(f.Fd())}).NetNS(); got != self {
		t.Errorf("namespace inode via fd %d, want %d", got, self)
	}
	// fill stamps it on every record.
	b := New(Options{})
	k := &known{}
	b.fill(k, &kernel.Socket{Cookie: 1, State: 1, HasInfo: true}, nil)
	if k.rec.NetNS != self {
		t.Errorf("record netns %d, want %d", k.rec.NetNS, self)
	}
}

// TestFillSignals: the per-connection signals go from tcp_info to the
// record; zero windows are counted per sample in synchronized states only,
// and only when the kernel sent the window fields.
func TestFillSignals(t *testing.T) {
	full := kernel.TCPInfo{State: 1, BytesAcked: 1000, SegsIn: 3, Unacked: 2, NotsentBytes: 4096,
		DeliveryRate: 1_000_000, BusyTime: 2_000_000, RwndLimited: 1_500_000, SndbufLimited: 1_000, HasChrono: true,
		DSACKDups: 4, SndWnd: 0, HasSndWnd: true, RcvWnd: 0, HasRcvWnd: true}
	for _, tc := range []struct {
		name   string
		state  uint8
		info   kernel.TCPInfo
		rqueue uint32
		polls  int
		want   func(r flow.Record) bool
	}{
		{name: "established, both windows zero, 3 polls", state: 1, info: full, rqueue: 5000, polls: 3,
			want: func(r flow.Record) bool {
				return r.BusyTime == 2*time.Second && r.RwndLimited == 1500*time.Millisecond && r.SndbufLimited == time.Millisecond &&
					r.DeliveryRate == 1_000_000 && r.DSACKDups == 4 && r.RecvQueue == 5000 &&
					r.ZeroWindowSent == 3 && r.ZeroWindowReceived == 3
			}},
		{name: "peer window zero but nothing to send", state: 1, polls: 2,
			info: kernel.TCPInfo{State: 1, SndWnd: 0, HasSndWnd: true, RcvWnd: 1000, HasRcvWnd: true},
			want: func(r flow.Record) bool {
				return r.ZeroWindowReceived == 0 && r.ZeroWindowSent == 0 && r.RcvWnd == 1000
			}},
		{name: "old kernel: no window fields", state: 1, polls: 2,
			info: kernel.TCPInfo{State: 1, NotsentBytes: 10},
			want: func(r flow.Record) bool { return r.ZeroWindowReceived == 0 && r.ZeroWindowSent == 0 && r.BusyTime == 0 }},
		{name: "syn_sent does not count", state: 2, polls: 2, info: full,
			want: func(r flow.Record) bool { return r.ZeroWindowReceived == 0 && r.ZeroWindowSent == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Options{})
			k := &known{}
			for range tc.polls {
				b.fill(k, &kernel.Socket{Cookie: 1, State: tc.state, RQueue: tc.rqueue, HasInfo: true, Info: tc.info}, nil)
			}
			if !tc.want(k.rec) {
				t.Errorf("record %+v", k.rec)
			}
		})
	}
	if connectResult(1) != "refused" || connectResult(0) != "timeout" {
		t.Error("connectResult")
	}
}
