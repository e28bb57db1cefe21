package testlab

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CgroupRoot is where the cgroup hierarchies are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// CgroupPrefix starts the directory name of every cgroup this package
// creates ("netsight-test-<pid>-<random>").
const CgroupPrefix = "netsight-test-"

// Cgroup is a memory-limited control group created for a test or a bench
// run, so that a process that runs away with memory is OOM-killed inside it
// instead of taking the machine down. It uses the cgroup v2 memory
// controller (memory.max) where it is available and the v1 memory hierarchy
// (memory.limit_in_bytes) on hybrid hosts where memory is still a v1
// controller. Swap is not limited: the lab hosts have none.
type Cgroup struct {
	// Path is the cgroup directory.
	Path  string
	v2    bool
	limit int64
}

// CgroupMemory is a cgroup's memory accounting.
type CgroupMemory struct {
	Limit   int64 // bytes (memory.max / memory.limit_in_bytes)
	Current int64 // bytes charged now: anonymous memory, page cache, kernel
	Peak    int64 // highest Current since creation (0 if the kernel does not say)
	// LimitHits counts the times usage hit the limit (v2 memory.events
	// "max", v1 memory.failcnt): reclaim ran; not necessarily a failure.
	LimitHits uint64
	// OOMKills counts processes killed by the OOM killer in this cgroup.
	OOMKills uint64
}

// NewCgroup creates a cgroup limited to memMax bytes and removes it in
// tb.Cleanup (killing whatever still runs in it). It needs root; a host
// without a memory controller skips the test (fails it in CI).
func NewCgroup(tb testing.TB, memMax int64) *Cgroup {
	tb.Helper()
	RequireRoot(tb)
	_, _, err := memoryHierarchy()
	Require(tb, err == nil, fmt.Sprintf("cgroup memory controller: %v", err))
	cg, err := CreateCgroup(memMax)
	if err != nil {
		tb.Fatalf("testlab: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		if err := cg.Close(); err != nil {
			tb.Errorf("testlab: %v", err)
		}
	})
	return cg
}

// CreateCgroup is NewCgroup without a testing.TB: the caller calls Close.
func CreateCgroup(memMax int64) (*Cgroup, error) {
	if memMax <= 0 {
		return nil, fmt.Errorf("create cgroup: memory limit %d: must be positive", memMax)
	}
	root, v2, err := memoryHierarchy()
	if err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(root, fmt.Sprintf("%s%d-%s", CgroupPrefix, os.Getpid(), hex.EncodeToString(b[:])))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	cg := &Cgroup{Path: dir, v2: v2, limit: memMax}
	file := "memory.limit_in_bytes"
	if v2 {
		file = "memory.max"
	}
	if err := cg.write(file, strconv.FormatInt(memMax, 10)); err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	if v2 {
		// No swap here, but keep the limit meaningful where there is.
		_ = cg.write("memory.swap.max", "0")
	}
	return cg, nil
}

// memoryHierarchy finds where memory cgroups can be made: the v2 root if
// its memory controller is enabled (enabling it for children if needed),
// else the v1 memory hierarchy.
func memoryHierarchy() (root string, v2 bool, err error) {
	for _, r := range []string{CgroupRoot, filepath.Join(CgroupRoot, "unified")} {
		ctrl, err := os.ReadFile(filepath.Join(r, "cgroup.controllers"))
		if err != nil || !hasWord(string(ctrl), "memory") {
			continue
		}
		sub, err := os.ReadFile(filepath.Join(r, "cgroup.subtree_control"))
		if err == nil && !hasWord(string(sub), "memory") {
			if err := os.WriteFile(filepath.Join(r, "cgroup.subtree_control"), []byte("+memory"), 0o644); err != nil {
				continue
			}
		}
		return r, true, nil
	}
	v1 := filepath.Join(CgroupRoot, "memory")
	if _, err := os.Stat(filepath.Join(v1, "memory.limit_in_bytes")); err == nil {
		return v1, false, nil
	}
	return "", false, errors.New("no cgroup v2 memory controller and no v1 memory hierarchy under " + CgroupRoot)
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func (c *Cgroup) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(c.Path, file), []byte(value), 0o644); err != nil {
		return fmt.Errorf("write %s to %s: %w", value, filepath.Join(c.Path, file), err)
	}
	return nil
}

// Limit is the memory limit in bytes.
func (c *Cgroup) Limit() int64 { return c.limit }

// V2 reports whether the cgroup is a cgroup v2 one.
func (c *Cgroup) V2() bool { return c.v2 }

// Wrap rewrites cmd (not yet started) so that its process enters the cgroup
// before it executes the program: it runs through /bin/sh, which writes its
// own pid to cgroup.procs and then execs the original command, keeping the
// pid. So no allocation of the program escapes the limit (as it could if
// the pid were moved in after Start).
func (c *Cgroup) Wrap(cmd *exec.Cmd) error {
	if cmd.Process != nil {
		return errors.New("cgroup wrap: command already started")
	}
	if cmd.Err != nil {
		return fmt.Errorf("cgroup wrap: %w", cmd.Err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return fmt.Errorf("cgroup wrap: %w", err)
	}
	args := append([]string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(c.Path, "cgroup.procs"), cmd.Path}, cmd.Args[1:]...)
	cmd.Path, cmd.Args = sh, args
	return nil
}

// Start wraps cmd (see Wrap) and starts it.
func (c *Cgroup) Start(cmd *exec.Cmd) error {
	if err := c.Wrap(cmd); err != nil {
		return err
	}
	return cmd.Start()
}

// AddProcess moves a running process into the cgroup.
func (c *Cgroup) AddProcess(pid int) error {
	return c.write("cgroup.procs", strconv.Itoa(pid))
}

// Pids lists the processes in the cgroup.
func (c *Cgroup) Pids() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.Path, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup procs: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Memory reads the cgroup's memory accounting.
func (c *Cgroup) Memory() (CgroupMemory, error) {
	m := CgroupMemory{Limit: c.limit}
	var err error
	if c.v2 {
		if m.Current, err = c.readInt("memory.current"); err != nil {
			return m, err
		}
		m.Peak, _ = c.readInt("memory.peak") // kernel >= 5.19
		ev, err := c.readKeyed("memory.events")
		if err != nil {
			return m, err
		}
		m.LimitHits, m.OOMKills = ev["max"], ev["oom_kill"]
		return m, nil
	}
	if m.Current, err = c.readInt("memory.usage_in_bytes"); err != nil {
		return m, err
	}
	if m.Peak, err = c.readInt("memory.max_usage_in_bytes"); err != nil {
		return m, err
	}
	fc, err := c.readInt("memory.failcnt")
	if err != nil {
		return m, err
	}
	m.LimitHits = uint64(fc)
	oc, err := c.readKeyed("memory.oom_control")
	if err != nil {
		return m, err
	}
	m.OOMKills = oc["oom_kill"]
	return m, nil
}

func (c *Cgroup) readInt(file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(c.Path, file))
	if err != nil {
		return 0, fmt.Errorf("read cgroup %s: %w", file, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read cgroup %s: %w", file, err)
	}
	return v, nil
}

func (c *Cgroup) readKeyed(file string) (map[string]uint64, error) {
	b, err := os.ReadFile(filepath.Join(c.Path, file))
	if err != nil {
		return nil, fmt.Errorf("read cgroup %s: %w", file, err)
	}
	return parseKeyed(b), nil
}

// parseKeyed parses "key value" lines (memory.events, memory.oom_control).
func parseKeyed(b []byte) map[string]uint64 {
	m := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			m[f[0]] = v
		}
	}
	return m
}

// Close kills every process still in the cgroup, waits for them to leave
// and removes the directory. It is safe to call twice.
func (c *Cgroup) Close() error {
	if _, err := os.Stat(c.Path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := c.Pids()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: processes %v did not exit", c.Path, pids)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var err error
	for range 100 { // rmdir can be EBUSY for a moment after the last exit
		if err = os.Remove(c.Path); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup: %w", err)
}

// ProcStats is what /proc says about one process.
type ProcStats struct {
	RSS     int64 // VmRSS, bytes
	RSSAnon int64 // RssAnon: heap, stacks, anonymous mappings
	RSSFile int64 // RssFile: mapped files (binary, mmapped store chunks)
	PeakRSS int64 // VmHWM, bytes
	FDs     int   // open file descriptors
	Threads int
}

// ReadProcStats reads /proc/PID/status and counts /proc/PID/fd.
func ReadProcStats(pid int) (ProcStats, error) {
	var s ProcStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("proc stats: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSS = n << 10
		case "RssAnon":
			s.RSSAnon = n << 10
		case "RssFile":
			s.RSSFile = n << 10
		case "VmHWM":
			s.PeakRSS = n << 10
		case "Threads":
			s.Threads = int(n)
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, fmt.Errorf("proc stats: %w", err)
	}
	s.FDs = len(ents)
	return s, nil
}

// MiB formats a byte count in MiB with one decimal.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
