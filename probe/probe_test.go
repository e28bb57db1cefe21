package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestPeriodAdd(t *testing.T) {
	var p Period
	if _, ok := p.Loss(); ok {
		t.Fatal("empty period must have no loss value")
	}
	if _, ok := p.RTTAvg(); ok {
		t.Fatal("empty period must have no RTT")
	}
	ms := time.Millisecond
	for _, r := range []Result{
		{Outcome: OK, Sent: 1, Received: 1, RTT: 10 * ms, HasRTT: true},
		{Outcome: OK, Sent: 1, Received: 1, RTT: 14 * ms, HasRTT: true},
		{Outcome: Timeout, Sent: 1},
		{Outcome: OK, Sent: 2, Received: 1, RTT: 12 * ms, HasRTT: true}, // one SYN retransmitted
		{Outcome: Refused, Sent: 1, Received: 1},
	} {
		p.Add(r)
	}
	loss, _ := p.Loss()
	if p.Sent != 6 || p.Received != 4 || math.Abs(loss-2.0/6) > 1e-9 {
		t.Errorf("sent %d received %d loss %v", p.Sent, p.Received, loss)
	}
	avg, _ := p.RTTAvg()
	if p.RTTMin != 10*ms || p.RTTMax != 14*ms || avg != 12*ms {
		t.Errorf("rtt min %s max %s avg %s", p.RTTMin, p.RTTMax, avg)
	}
	// |14-10| and |12-14|: mean 3 ms.
	if j, _ := p.Jitter(); j != 3*ms {
		t.Errorf("jitter %s, want 3ms", j)
	}
	if p.Outcomes[OK] != 3 || p.Outcomes[Timeout] != 1 || p.Outcomes[Refused] != 1 {
		t.Errorf("outcomes %v", p.Outcomes)
	}
}

func TestDeadTargetHasNoRTT(t *testing.T) {
	var p Period
	for range 30 {
		p.Add(Result{Outcome: Timeout, Sent: 1})
	}
	loss, ok := p.Loss()
	if !ok || loss != 1 {
		t.Fatalf("loss %v ok %v, want 1", loss, ok)
	}
	if _, ok := p.RTTAvg(); ok {
		t.Fatal("a dead target must have no RTT (not 0)")
	}
}

func TestAggregatorPeriods(t *testing.T) {
	a := NewAggregator(30*time.Second, 3*time.Second)
	t0 := time.Unix(1_700_000_010, 0) // 10 s into a 30 s period
	start := t0.Truncate(30 * time.Second)
	if _, ok := a.Last(t0); ok {
		t.Fatal("no period closed yet")
	}
	for i := range 20 {
		a.Add(Result{Start: t0.Add(time.Duration(i) * time.Second), Outcome: OK, Sent: 1, Received: 1, RTT: time.Millisecond, HasRTT: true})
	}
	// Period [start, start+30s) holds i=0..19; probes at 20.. go to the next.
	if _, ok := a.Last(start.Add(32 * time.Second)); ok {
		t.Fatal("period closed before its grace ended")
	}
	p, ok := a.Last(start.Add(33 * time.Second))
	if !ok || p.Sent != 20 || !p.Start.Equal(start) || !p.End.Equal(start.Add(30*time.Second)) {
		t.Fatalf("period %+v ok %v", p, ok)
	}
	// A late result for a published period is not folded in silently.
	a.Add(Result{Start: start.Add(time.Second), Outcome: OK, Sent: 1, Received: 1})
	if a.Late() != 1 {
		t.Errorf("late %d", a.Late())
	}
	// An empty period (nothing sent) leaves the last one published.
	if p2, _ := a.Last(start.Add(100 * time.Second)); !p2.Start.Equal(start) {
		t.Errorf("last period %s", p2.Start)
	}
}

func TestQuantile(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{[]time.Duration{5 * ms}, 0.5, 5 * ms},
		{[]time.Duration{1 * ms, 3 * ms}, 0.5, 2 * ms},
		{[]time.Duration{4 * ms, 1 * ms, 3 * ms, 2 * ms}, 0, 1 * ms},
		{[]time.Duration{4 * ms, 1 * ms, 3 * ms, 2 * ms}, 1, 4 * ms},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 0.9, 10},
	} {
		got, ok := Quantile(append([]time.Duration(nil), tc.in...), tc.q)
		if !ok || got != tc.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tc.in, tc.q, got, tc.want)
		}
	}
	if _, ok := Quantile(nil, 0.5); ok {
		t.Error("quantile of nothing must not be ok")
	}
}

func TestBuildParseEcho(t *testing.T) {
	buf := make([]byte, icmpHeaderLen+MaxSize)
	for _, tc := range []struct {
		name    string
		v6, raw bool
		size    int
	}{
		{"v4 datagram", false, false, 56},
		{"v4 raw", false, true, 56},
		{"v6 datagram", true, false, 1000},
		{"v6 raw", true, true, MaxSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := buildEcho(buf[:icmpHeaderLen+tc.size], tc.v6, tc.raw, 0x1234, 77, 0xdeadbeefcafef00d, 99)
			if len(pkt) != 8+tc.size {
				t.Fatalf("len %d", len(pkt))
			}
			if !tc.v6 && tc.raw && checksum(pkt) != 0 {
				t.Fatal("bad IPv4 ICMP checksum")
			}
			// Turn it into the reply the peer would send.
			rep := append([]byte(nil), pkt...)
			if tc.v6 {
				rep[0] = 129
			} else {
				rep[0] = 0
			}
			in := rep
			if !tc.v6 && tc.raw {
				ip := make([]byte, 20, 20+len(rep))
				ip[0] = 0x45
				ip[9] = 1
				in = append(ip, rep...)
			}
			r, ok := parseReply(in, tc.v6, !tc.v6 && tc.raw)
			if !ok || r.unreachable || r.id != 0x1234 || r.seq != 77 || r.token != 0xdeadbeefcafef00d || r.serial != 99 {
				t.Fatalf("parse: %+v ok %v", r, ok)
			}
			// Our own echo request is not a reply.
			if _, ok := parseReply(pkt, tc.v6, false); ok {
				t.Fatal("echo request parsed as a reply")
			}
		})
	}
}

func TestParseUnreachable(t *testing.T) {
	buf := make([]byte, 64)
	echo := buildEcho(buf[:8+56], false, true, 7, 8, 42, 43)
	inner := make([]byte, 20, 20+len(echo))
	inner[0], inner[9] = 0x45, 1
	inner = append(inner, echo...)
	msg := append([]byte{3, 1, 0, 0, 0, 0, 0, 0}, inner...) // host unreachable
	binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	r, ok := parseReply(msg, false, false)
	if !ok || !r.unreachable || r.id != 7 || r.seq != 8 || r.token != 42 || r.serial != 43 {
		t.Fatalf("%+v ok %v", r, ok)
	}
}

func FuzzParseReply(f *testing.F) {
	buf := make([]byte, 128)
	f.Add(buildEcho(buf[:64], false, true, 1, 2, 3, 4), false, false)
	f.Add(append([]byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}, buf[:64]...), false, true)
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 0x45}, false, false)
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 0}, true, false)
	f.Fuzz(func(t *testing.T, b []byte, v6, raw4 bool) {
		r, ok := parseReply(b, v6, raw4)
		if !ok && (r != reply{}) {
			t.Fatal("non-zero reply without ok")
		}
	})
}

func TestKernelTimestamp(t *testing.T) {
	oob := make([]byte, unix.CmsgSpace(16))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS
	h.SetLen(unix.CmsgLen(16))
	binary.NativeEndian.PutUint64(oob[unix.CmsgLen(0):], 1_700_000_000)
	binary.NativeEndian.PutUint64(oob[unix.CmsgLen(0)+8:], 123)
	ts, ok := kernelTimestamp(oob)
	if !ok || !ts.Equal(time.Unix(1_700_000_000, 123)) {
		t.Fatalf("%v %v", ts, ok)
	}
	if _, ok := kernelTimestamp(oob[:10]); ok {
		t.Fatal("truncated control message accepted")
	}
}

// hosts is a hosts-file-like resolver: no real DNS in tests.
type hosts struct {
	mu sync.Mutex
	m  map[string][]netip.Addr
	n  int
}

func (h *hosts) set(name string, a ...netip.Addr) {
	h.mu.Lock()
	h.m[name] = a
	h.mu.Unlock()
}

func (h *hosts) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	var out []netip.Addr
	for _, a := range h.m[host] {
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// TestResolveSchedule moves a name from one loopback address to another
// and checks that the probes follow it: TCP to a listener on 127.0.0.1
// (open), then to 127.0.0.2 where nothing listens on that port (refused).
// Loopback only, no root.
func TestResolveSchedule(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptAll(ln)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	h := &hosts{m: map[string][]netip.Addr{}}
	h.set("svc.lab", netip.MustParseAddr("127.0.0.1"))
	var mu sync.Mutex
	var results []Result
	var resolves []netip.Addr
	e, err := New([]Target{{Name: "svc", Host: "svc.lab", Port: port, Protocol: TCP, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond},
		{Name: "nx", Host: "nx.lab", Port: port, Protocol: TCP, Interval: 20 * time.Millisecond}},
		Options{Resolver: h, ResolveInterval: 150 * time.Millisecond, NoSpread: true,
			OnResult: func(r Result) { mu.Lock(); results = append(results, r); mu.Unlock() },
			OnResolve: func(i int, a netip.Addr, err error) {
				if i == 0 && err == nil {
					mu.Lock()
					resolves = append(resolves, a)
					mu.Unlock()
				}
			}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	// Poll instead of sleeping fixed times: CI machines stall.
	waitFor := func(cond func(r Result) bool) {
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			for _, r := range results {
				if cond(r) {
					mu.Unlock()
					return
				}
			}
			mu.Unlock()
		}
	}
	waitFor(func(r Result) bool { return r.Target == 0 && r.Outcome == OK })
	h.set("svc.lab", netip.MustParseAddr("127.0.0.2"))
	waitFor(func(r Result) bool { return r.Target == 0 && r.Outcome == Refused })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var before, after, nx [numOutcomes]int
	for _, r := range results {
		switch {
		case r.Target == 1:
			nx[r.Outcome]++
		case r.Addr == netip.MustParseAddr("127.0.0.1"):
			before[r.Outcome]++
		case r.Addr == netip.MustParseAddr("127.0.0.2"):
			after[r.Outcome]++
		}
	}
	t.Logf("127.0.0.1: %v, 127.0.0.2: %v, unresolvable: %v, resolutions %v", before, after, nx, resolves)
	if before[OK] == 0 || before[Refused] != 0 {
		t.Errorf("before re-resolution: %v, want ok only", before)
	}
	if after[Refused] == 0 || after[OK] != 0 {
		t.Errorf("after re-resolution: %v, want refused only", after)
	}
	if nx[Error] == 0 || nx[OK] != 0 {
		t.Errorf("unresolvable name: %v, want errors", nx)
	}
}

// TestScheduleSpread runs 2000 targets whose names never resolve (so
// nothing is sent) and checks the scheduler: every target gets exactly its
// count of probes, and first probes are spread over the interval rather
// than fired at once. Loose bounds: CI machines stall.
func TestScheduleSpread(t *testing.T) {
	h := &hosts{m: map[string][]netip.Addr{}}
	const n, count = 2000, 5
	const iv = 200 * time.Millisecond
	targets := make([]Target, n)
	for i := range targets {
		targets[i] = Target{Name: "t", Host: "unresolvable.lab", Protocol: ICMP, Interval: iv}
	}
	var mu sync.Mutex
	counts := make([]int, n)
	first := make([]time.Time, n)
	e, err := New(targets, Options{Resolver: h, Count: count, OnResult: func(r Result) {
		mu.Lock()
		if counts[r.Target] == 0 {
			first[r.Target] = r.Start
		}
		counts[r.Target]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	lo, hi := first[0], first[0]
	for i := range counts {
		if counts[i] != count {
			t.Fatalf("target %d: %d probes, want %d", i, counts[i], count)
		}
		if first[i].Before(lo) {
			lo = first[i]
		}
		if first[i].After(hi) {
			hi = first[i]
		}
	}
	// Earlier first probes should not be concentrated on low target
	// indexes: compare the first and the second half of the targets.
	var sumA, sumB time.Duration
	for i := range first {
		if i < n/2 {
			sumA += first[i].Sub(lo)
		} else {
			sumB += first[i].Sub(lo)
		}
	}
	t.Logf("first probes span %s of a %s interval; mean offsets %s / %s", hi.Sub(lo), iv, sumA/(n/2), sumB/(n/2))
	if hi.Sub(lo) < iv*3/10 {
		t.Errorf("first probes span only %s of %s: not spread", hi.Sub(lo), iv)
	}
}

func TestTargetValidate(t *testing.T) {
	for _, tc := range []struct {
		t   Target
		err bool
	}{
		{Target{Host: "10.0.0.1", Protocol: ICMP}, false},
		{Target{Host: "10.0.0.1", Protocol: TCP}, true},
		{Target{Host: "", Protocol: ICMP}, true},
		{Target{Host: "x", Protocol: "udp"}, true},
		{Target{Host: "x", Protocol: ICMP, Size: 55}, true},
		{Target{Host: "x", Protocol: ICMP, Size: 8501}, true},
		{Target{Host: "x", Protocol: ICMP, Interval: time.Millisecond}, true},
	} {
		if err := tc.t.Validate(); (err != nil) != tc.err {
			t.Errorf("%+v: err %v", tc.t, err)
		}
	}
	if _, err := New([]Target{{Host: "x", Protocol: TCP}}, Options{}); err == nil {
		t.Error("New accepted a bad target")
	}
	if _, err := New(nil, Options{ICMPMode: "magic"}); err == nil || errors.Is(err, nil) {
		t.Error("New accepted a bad mode")
	}
}

func BenchmarkBuildEcho(b *testing.B) {
	buf := make([]byte, 8+56)
	for i := 0; b.Loop(); i++ {
		buildEcho(buf, false, true, 1, uint16(i), 2, uint64(i))
	}
}

func BenchmarkParseReply(b *testing.B) {
	buf := make([]byte, 8+56)
	pkt := buildEcho(buf, false, false, 1, 2, 3, 4)
	pkt[0] = 0
	for b.Loop() {
		parseReply(pkt, false, false)
	}
}

func BenchmarkAggregatorAdd(b *testing.B) {
	a := NewAggregator(30*time.Second, 3*time.Second)
	now := time.Now()
	for i := 0; b.Loop(); i++ {
		a.Add(Result{Start: now.Add(time.Duration(i) * time.Millisecond), Outcome: OK, Sent: 1, Received: 1, RTT: time.Millisecond, HasRTT: true})
	}
}

func FuzzParseErrQueue(f *testing.F) {
	oob := make([]byte, unix.CmsgSpace(sizeofSockExtendedErr+16))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_RECVERR
	h.SetLen(unix.CmsgLen(sizeofSockExtendedErr + 16))
	d := oob[unix.CmsgLen(0):]
	binary.NativeEndian.PutUint32(d, uint32(unix.EHOSTUNREACH))
	d[4], d[5], d[6] = eeOriginICMP, 3, 1
	binary.NativeEndian.PutUint16(d[sizeofSockExtendedErr:], unix.AF_INET)
	copy(d[sizeofSockExtendedErr+4:], []byte{10, 0, 0, 1})
	buf := make([]byte, 64)
	f.Add(oob, buildEcho(buf, false, false, 1, 2, 3, 4), false)
	f.Add([]byte{}, []byte{128, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, oob, data []byte, v6 bool) {
		ee, _, ok := parseRecvErr(oob)
		r, rok := parseEchoRequest(data, v6)
		if ok && rok {
			res := classifyRecvErr(&pend{serial: r.serial, seq: r.seq}, ee, netip.Addr{})
			if res.Outcome == OK || res.Received != 0 || res.Err == nil {
				t.Fatalf("an ICMP error became %+v", res)
			}
		}
	})
}

func TestParseErrQueue(t *testing.T) {
	oob := make([]byte, unix.CmsgSpace(sizeofSockExtendedErr+16))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_RECVERR
	h.SetLen(unix.CmsgLen(sizeofSockExtendedErr + 16))
	d := oob[unix.CmsgLen(0):]
	binary.NativeEndian.PutUint32(d, uint32(unix.EHOSTUNREACH))
	d[4], d[5], d[6] = eeOriginICMP, 3, 1
	binary.NativeEndian.PutUint16(d[sizeofSockExtendedErr:], unix.AF_INET)
	copy(d[sizeofSockExtendedErr+4:], []byte{10, 0, 0, 1})
	ee, from, ok := parseRecvErr(oob)
	if !ok || ee.Errno != uint32(unix.EHOSTUNREACH) || from != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("%+v %v %v", ee, from, ok)
	}
	buf := make([]byte, 64)
	r, ok := parseEchoRequest(buildEcho(buf, false, false, 1, 2, 3, 4), false)
	if !ok || r.seq != 2 || r.token != 3 || r.serial != 4 {
		t.Fatalf("%+v %v", r, ok)
	}
	for _, tc := range []struct {
		ee   unix.SockExtendedErr
		want Outcome
	}{
		{unix.SockExtendedErr{Errno: uint32(unix.EHOSTUNREACH), Origin: eeOriginICMP, Type: 3, Code: 1}, Unreachable},
		{unix.SockExtendedErr{Errno: uint32(unix.EMSGSIZE), Origin: eeOriginICMP, Type: 3, Code: 4, Info: 1400}, Error},
		{unix.SockExtendedErr{Errno: uint32(unix.ENOBUFS), Origin: eeOriginLocal}, Error},
		{unix.SockExtendedErr{Errno: uint32(unix.ETIMEDOUT), Origin: eeOriginICMP, Type: 11, Code: 1}, Timeout},
		{unix.SockExtendedErr{Errno: uint32(unix.EHOSTUNREACH), Origin: eeOriginICMP, Type: 11, Code: 0}, Unreachable},
	} {
		if got := classifyRecvErr(&pend{}, tc.ee, netip.Addr{}); got.Outcome != tc.want || got.Sent != 1 || got.Received != 0 {
			t.Errorf("%+v: %+v, want %s", tc.ee, got, tc.want)
		}
	}
}
