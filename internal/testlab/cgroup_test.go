package testlab

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseKeyed(t *testing.T) {
	got := parseKeyed([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nbad line here\nx notanumber\n"))
	if got["oom_kill"] != 3 || got["under_oom"] != 0 || len(got) != 3 {
		t.Errorf("parseKeyed = %v", got)
	}
}

// TestCgroupLimitsMemory: a process started in the cgroup is in it from its
// first instruction, one that allocates past the limit is OOM-killed there
// (and counted), and Close removes the cgroup with what still runs in it.
func TestCgroupLimitsMemory(t *testing.T) {
	cg := NewCgroup(t, 32<<20)
	// In the cgroup from the start: the process reads its own cgroup.
	out, err := cgroupOutput(cg, "cat", "/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, filepath.Base(cg.Path)) {
		t.Fatalf("/proc/self/cgroup of a wrapped process does not name %s:\n%s", cg.Path, out)
	}
	// 100 MB in a shell variable: killed by the 32 MiB limit.
	cmd := exec.Command("sh", "-c", `x=$(head -c 100000000 /dev/zero | tr '\0' a); echo ${#x}`)
	if err := cg.Start(cmd); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("allocation past the limit ended with %v, want a kill", err)
	}
	m, err := cg.Memory()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the kill: %+v", m)
	if m.OOMKills == 0 || m.Limit != 32<<20 || m.Peak == 0 || m.Peak > 33<<20 {
		t.Errorf("memory %+v: want an OOM kill, limit 32 MiB and a peak at most the limit", m)
	}
	// Close kills what is left and removes the directory.
	sleeper := exec.Command("sleep", "60")
	if err := cg.Start(sleeper); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pids, err := cg.Pids()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 1 && pids[0] == sleeper.Process.Pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup holds %v, want the sleeper %d", pids, sleeper.Process.Pid)
		}
	}
	if err := cg.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if ws, ok := sleeper.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("sleeper ended with %v, want SIGKILL", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleeper still running after Close")
	}
	if _, err := os.Stat(cg.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup directory still there: %v", err)
	}
}

func cgroupOutput(cg *Cgroup, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	if err := cg.Wrap(cmd); err != nil {
		return "", err
	}
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// TestSYNFlood: every SYN arrives at the peer with a valid checksum
// (counted by the peer's TCP MIB: no checksum errors), paced and bounded.
func TestSYNFlood(t *testing.T) {
	pair := NewPair(t)
	ln, err := pair.B.ListenTCP(netip.AddrPortFrom(pair.Link.B.Addr4(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	before := tcpMIB(t, pair.B)
	const count = 3000
	res, err := pair.A.SYNFlood(context.Background(), SYNFloodConfig{Src: pair.Link.A.Addr4(), Dst: pair.Link.B.Addr4(),
		DstPort: port, Count: count, Rate: 10000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != count || res.Ports != count {
		t.Fatalf("result %+v, want %d SYNs from %d ports", res, count, count)
	}
	// At 10,000/s: 3,000 take about 300 ms, never much less.
	if res.Duration < 250*time.Millisecond {
		t.Errorf("%d SYNs took %s: not paced", count, res.Duration)
	}
	time.Sleep(200 * time.Millisecond)
	after := tcpMIB(t, pair.B)
	// The peer got the SYNs (and the sender's RSTs for its SYN-ACKs).
	if in := after["InSegs"] - before["InSegs"]; in < count {
		t.Errorf("peer received %d TCP segments, want at least %d", in, count)
	}
	if e := after["InCsumErrors"] - before["InCsumErrors"]; e != 0 {
		t.Errorf("%d checksum errors at the peer", e)
	}
	if _, err := pair.A.SYNFlood(context.Background(), SYNFloodConfig{Src: pair.Link.A.Addr4(), Dst: pair.Link.B.Addr6(), DstPort: 1, Count: 1}); err == nil {
		t.Error("mixed address families accepted")
	}
}

// tcpMIB reads the Tcp counters of /proc/net/snmp in ns.
func tcpMIB(t *testing.T, ns *NetNS) map[string]uint64 {
	t.Helper()
	out, err := ns.Run(context.Background(), "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	m := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				n, _ := strconv.ParseUint(v, 10, 64)
				m[names[i]] = n
			}
		}
	}
	if len(m) == 0 {
		t.Fatalf("no Tcp counters in /proc/net/snmp:\n%s", out)
	}
	return m
}
