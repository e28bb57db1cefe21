package testlab

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MemCgroup is a memory-limited cgroup a test runs a process in, so that a
// memory bug fails the test instead of taking the machine down (see the
// MEMORY RULE in the contributor rules). It works on a pure cgroup v2 host
// (a child of the root with memory.max) and on a hybrid host whose memory
// controller is still v1 (a child of the test's own memory cgroup with
// memory.limit_in_bytes), and is removed in tb.Cleanup after every process
// in it was killed.
type MemCgroup struct {
	Dir   string // the cgroup directory
	V2    bool
	Limit int64
}

// NewMemCgroup creates a cgroup limited to limit bytes (swap included where
// the kernel accounts it), or skips/fails (in CI) without root or a memory
// controller.
func NewMemCgroup(tb testing.TB, limit int64) *MemCgroup {
	tb.Helper()
	RequireRoot(tb)
	cg, err := CreateMemCgroup(limit)
	if err != nil {
		missing(tb, "requirement not met: a memory cgroup: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		if err := cg.Close(); err != nil {
			tb.Errorf("remove cgroup: %v", err)
		}
	})
	return cg
}

// CreateMemCgroup is NewMemCgroup without a testing.TB; the caller calls
// Close.
func CreateMemCgroup(limit int64) (*MemCgroup, error) {
	name := fmt.Sprintf("netsight-test-%d-%08x", os.Getpid(), rand.Uint32())
	if ctrl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(" "+string(ctrl)+" ", " memory ") {
		// Pure v2: the root may hold processes, its children need the
		// memory controller enabled in the root's subtree_control.
		sub, _ := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control")
		if !strings.Contains(" "+strings.TrimSpace(string(sub))+" ", " memory ") {
			if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0); err != nil {
				return nil, fmt.Errorf("enable memory controller: %w", err)
			}
		}
		cg := &MemCgroup{Dir: filepath.Join("/sys/fs/cgroup", name), V2: true, Limit: limit}
		if err := os.Mkdir(cg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		for f, v := range map[string]string{"memory.max": strconv.FormatInt(limit, 10), "memory.swap.max": "0"} {
			if err := os.WriteFile(filepath.Join(cg.Dir, f), []byte(v), 0); err != nil && f == "memory.max" {
				_ = os.Remove(cg.Dir)
				return nil, fmt.Errorf("set %s: %w", f, err)
			}
		}
		return cg, nil
	}
	// Hybrid or v1: nest under this process's own memory cgroup so the
	// child stays inside whatever accounting the test runs under.
	root := "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(root, "memory.limit_in_bytes")); err != nil {
		return nil, errors.New("no cgroup v2 memory controller and no v1 memory hierarchy at " + root)
	}
	parent := root
	if rel, err := v1MemoryPath(); err == nil {
		if _, err := os.Stat(filepath.Join(root, rel, "memory.limit_in_bytes")); err == nil {
			parent = filepath.Join(root, rel)
		}
	}
	cg := &MemCgroup{Dir: filepath.Join(parent, name), Limit: limit}
	if err := os.Mkdir(cg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cg.Dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		_ = os.Remove(cg.Dir)
		return nil, fmt.Errorf("set memory.limit_in_bytes: %w", err)
	}
	// Without swap accounting this file is absent: the machine has no swap
	// to escape into then.
	_ = os.WriteFile(filepath.Join(cg.Dir, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0)
	return cg, nil
}

func v1MemoryPath() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			return parts[2], nil
		}
	}
	return "", errors.New("no memory line in /proc/self/cgroup")
}

// Command returns a command that runs name with args inside the cgroup from
// its first instruction: a shell moves itself into the cgroup, then execs.
func (cg *MemCgroup) Command(name string, args ...string) *exec.Cmd {
	script := `echo $$ > "$0/cgroup.procs" && exec "$@"`
	return exec.Command("/bin/sh", append([]string{"-c", script, cg.Dir, name}, args...)...)
}

// Peak is the highest memory use the cgroup saw (v2 memory.peak, v1
// memory.max_usage_in_bytes), or -1 when the kernel does not report it.
func (cg *MemCgroup) Peak() int64 {
	f := "memory.max_usage_in_bytes"
	if cg.V2 {
		f = "memory.peak"
	}
	return readInt(filepath.Join(cg.Dir, f))
}

// OOMKills is how many processes the kernel killed in the cgroup for lack
// of memory.
func (cg *MemCgroup) OOMKills() int64 {
	if cg.V2 {
		return keyedInt(filepath.Join(cg.Dir, "memory.events"), "oom_kill")
	}
	return keyedInt(filepath.Join(cg.Dir, "memory.oom_control"), "oom_kill")
}

// Close kills what still runs in the cgroup and removes it.
func (cg *MemCgroup) Close() error {
	var err error
	for range 50 {
		data, _ := os.ReadFile(filepath.Join(cg.Dir, "cgroup.procs"))
		pids := strings.Fields(string(data))
		for _, p := range pids {
			if pid, e := strconv.Atoi(p); e == nil {
				if proc, e := os.FindProcess(pid); e == nil {
					_ = proc.Kill()
				}
			}
		}
		if err = os.Remove(cg.Dir); err == nil || os.IsNotExist(err) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func keyedInt(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// ProcRSS returns a process's current and peak resident set size in bytes
// (VmRSS and VmHWM of /proc/PID/status).
func ProcRSS(pid int) (cur, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			cur = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return cur, peak, nil
}
