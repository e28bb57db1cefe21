package monitor

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/flow"
	"github.com/netsight/netsight/internal/testlab"
)

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// churn feeds the engine 100,000 short connections to distinct remotes,
// then the worst case: MaxGroups long-lived connections each updated every
// 10 s for an hour, so every group holds all its slots. It returns the
// engine (kept alive by the caller).
func churn(t testing.TB) *Engine {
	e, tab := newTestEngine(t)
	tab2 := flow.NewTable(flow.Config{MaxEntries: 4096})
	tab2.SetObserver(e.Observe)
	tab.SetObserver(nil)
	now := t0
	for i := range 100_000 {
		r := flow.Record{ID: uint64(i + 1), Local: netip.MustParseAddrPort("10.1.0.2:40000"),
			Remote:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(100 + i>>16), byte(i >> 8), byte(i)}), 443),
			Direction: flow.DirClient, State: "close", Closed: true, BytesSent: 1000, SRTT: time.Millisecond, ConnectLatency: time.Millisecond}
		if i%1000 == 0 {
			now = now.Add(time.Second)
		}
		tab2.Upsert(r, now)
	}
	if g, ev := e.Groups(), e.Evicted(); g != DefaultMaxGroups || ev != 100_000-DefaultMaxGroups {
		t.Fatalf("after 100,000 remotes: %d groups, %d evicted; want %d and %d", g, ev, DefaultMaxGroups, 100_000-DefaultMaxGroups)
	}
	recs := make([]flow.Record, DefaultMaxGroups)
	for i := range recs {
		recs[i] = flow.Record{ID: uint64(1_000_000 + i), Local: netip.MustParseAddrPort("10.1.0.2:30000"),
			Remote:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 3, byte(i >> 8), byte(i)}), 443),
			Direction: flow.DirClient, State: "established", SRTT: time.Millisecond}
	}
	// One update a minute for 55 minutes fills the 1 min slots, then one
	// every 10 s for 5 minutes the 10 s slots.
	for step := range 85 {
		if step < 55 {
			now = now.Add(time.Minute)
		} else {
			now = now.Add(10 * time.Second)
		}
		for i := range recs {
			recs[i].BytesSent += 100
			recs[i].Retransmits += uint64(step & 1)
		}
		tab2.UpsertBatch(recs, now)
	}
	if w := e.Windows(now)[0]; w.Totals.Connections != DefaultMaxGroups || len(w.Remotes) != MaxRemotes {
		t.Fatalf("worst case: all window %d connections, %d remotes", w.Totals.Connections, len(w.Remotes))
	}
	return e
}

// TestChurnMemory: groups stay at 2,048 with 100,000 remotes churning,
// evictions are counted, and the engine's heap stays within MemoryBound.
func TestChurnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of synthetic churn: skipped with -short")
	}
	before := heapAlloc()
	e := churn(t)
	grown := int64(heapAlloc()) - int64(before)
	// The test's own flow table (4096 entries) and records are on the
	// heap too: allow them 4 MiB besides the engine's bound.
	const tableAllowance = 4 << 20
	bound := MemoryBound(0, 3)
	t.Logf("heap after churn and the worst case: %.1f MiB (engine bound %.1f MiB + %d MiB for the test's table)",
		float64(grown)/(1<<20), float64(bound)/(1<<20), tableAllowance>>20)
	if grown > bound+tableAllowance {
		t.Errorf("heap grew %d bytes > MemoryBound %d + %d", grown, bound, tableAllowance)
	}
	runtime.KeepAlive(e)
}

const churnChildEnv = "NETSIGHT_MONITOR_CHURN_CHILD"

// TestChurnCgroup runs the churn in a child process inside a
// memory-limited cgroup: it must finish without an OOM kill and its RSS
// must grow by at most twice MemoryBound (the Go heap's GC headroom).
func TestChurnCgroup(t *testing.T) {
	if os.Getenv(churnChildEnv) != "" {
		churnChild(t)
		return
	}
	if testing.Short() {
		t.Skip("lab test: skipped with -short")
	}
	testlab.RequireRoot(t)
	const limit = 256 << 20
	cg := testlab.NewCgroup(t, limit)
	cmd := exec.Command(os.Args[0], "-test.run=^TestChurnCgroup$", "-test.v")
	cmd.Env = append(os.Environ(), churnChildEnv+"=1")
	if err := cg.Wrap(cmd); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	mem, _ := cg.Memory()
	t.Logf("child: %s\ncgroup peak %.1f MiB of %d MiB, OOM kills %d", strings.TrimSpace(string(out)), float64(mem.Peak)/(1<<20), limit>>20, mem.OOMKills)
	if err != nil || mem.OOMKills > 0 {
		t.Fatalf("churn child failed in a %d MiB cgroup: %v", limit>>20, err)
	}
}

func churnChild(t *testing.T) {
	rss := func() int64 {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
		t.Fatal("no VmRSS")
		return 0
	}
	base := rss()
	e := churn(t)
	grown := rss() - base
	bound := 2 * MemoryBound(0, 3)
	fmt.Printf("RSS grew %.1f MiB (bound 2 x MemoryBound = %.1f MiB), %d groups, %d evicted\n",
		float64(grown)/(1<<20), float64(bound)/(1<<20), e.Groups(), e.Evicted())
	if grown > bound {
		t.Errorf("RSS grew %d bytes > %d", grown, bound)
	}
}
