package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ConntrackProc reads the connection-tracking files of procfs below Root
// ("/proc" when empty). Every read reflects the network namespace of the
// calling OS thread: sysctls under /proc/sys/net are per namespace, and the
// per-CPU statistics are read through /proc/thread-self/net (not
// /proc/self/net, which follows the thread-group leader's namespace).
type ConntrackProc struct {
	Root string
}

func (p ConntrackProc) root() string {
	if p.Root == "" {
		return "/proc"
	}
	return p.Root
}

// ErrNoConntrack is returned when the nf_conntrack module is not loaded (its
// procfs files are missing).
var ErrNoConntrack = errors.New("nf_conntrack not loaded (no /proc/sys/net/netfilter/nf_conntrack_count)")

// Count returns nf_conntrack_count: entries in this namespace's table.
func (p ConntrackProc) Count() (uint64, error) {
	return p.readSysctl("nf_conntrack_count")
}

// Max returns nf_conntrack_max. On kernels where the limit is global it is
// read-only inside non-initial namespaces but still readable, and the value
// is the global limit that applies to each namespace's count.
func (p ConntrackProc) Max() (uint64, error) {
	return p.readSysctl("nf_conntrack_max")
}

// Buckets returns nf_conntrack_buckets (hash table size).
func (p ConntrackProc) Buckets() (uint64, error) {
	return p.readSysctl("nf_conntrack_buckets")
}

func (p ConntrackProc) readSysctl(name string) (uint64, error) {
	path := filepath.Join(p.root(), "sys/net/netfilter", name)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("read %s: %w", path, ErrNoConntrack)
		}
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

// ConntrackCPUStats is the content of /proc/net/stat/nf_conntrack: one row
// per possible CPU, columns named by the header line (the kernel has added
// and removed columns over time, so they are never assumed by position).
type ConntrackCPUStats struct {
	Columns []string
	// Rows[cpu][column] holds the raw 32-bit per-CPU value.
	Rows [][]uint32
}

// Sum returns the sum over CPUs of the named column and whether it exists.
func (s ConntrackCPUStats) Sum(column string) (uint64, bool) {
	for i, c := range s.Columns {
		if c == column {
			var t uint64
			for _, r := range s.Rows {
				t += uint64(r[i])
			}
			return t, true
		}
	}
	return 0, false
}

// CPUStats reads and parses the per-CPU statistics.
func (p ConntrackProc) CPUStats() (ConntrackCPUStats, error) {
	path := filepath.Join(p.root(), "thread-self/net/stat/nf_conntrack")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Very old kernels lack thread-self; self is right outside tests.
		alt := filepath.Join(p.root(), "self/net/stat/nf_conntrack")
		if b2, err2 := os.ReadFile(alt); err2 == nil {
			b, err, path = b2, nil, alt
		} else if _, e := os.Stat(filepath.Join(p.root(), "thread-self")); e == nil {
			return ConntrackCPUStats{}, fmt.Errorf("read %s: %w", path, ErrNoConntrack)
		}
	}
	if err != nil {
		return ConntrackCPUStats{}, fmt.Errorf("read %s: %w", path, err)
	}
	s, err := ParseConntrackCPUStats(b)
	if err != nil {
		return s, fmt.Errorf("parse %s: %w", path, err)
	}
	return s, nil
}

// maxConntrackStatRows bounds the rows accepted (CPUs); more is a parse error.
const maxConntrackStatRows = 8192

// ParseConntrackCPUStats parses the text of /proc/net/stat/nf_conntrack: a
// header of column names, then one row of hexadecimal 32-bit values per CPU.
// Errors name the line and column.
func ParseConntrackCPUStats(b []byte) (ConntrackCPUStats, error) {
	var s ConntrackCPUStats
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return s, errors.New("empty input: want a header line")
	}
	s.Columns = strings.Fields(lines[0])
	seen := map[string]bool{}
	for i, c := range s.Columns {
		if seen[c] {
			return s, fmt.Errorf("line 1: duplicate column %q", c)
		}
		seen[c] = true
		for _, r := range c {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				return s, fmt.Errorf("line 1: column %d %q: want [a-z0-9_]", i+1, c)
			}
		}
	}
	if len(lines)-1 > maxConntrackStatRows {
		return s, fmt.Errorf("%d rows: more than %d CPUs", len(lines)-1, maxConntrackStatRows)
	}
	for ln, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != len(s.Columns) {
			return s, fmt.Errorf("line %d: %d values, header has %d columns", ln+2, len(f), len(s.Columns))
		}
		row := make([]uint32, len(f))
		for i, v := range f {
			n, err := strconv.ParseUint(v, 16, 32)
			if err != nil {
				return s, fmt.Errorf("line %d column %q: %q is not a 32-bit hex number", ln+2, s.Columns[i], v)
			}
			row[i] = uint32(n)
		}
		s.Rows = append(s.Rows, row)
	}
	return s, nil
}
