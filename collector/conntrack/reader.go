package conntrack

import (
	"context"
	"math"
	"time"

	"github.com/netsight/netsight/internal/kernel"
)

// Over-limit behaviours of the per-state dump.
const (
	OverLimitSkip   = "skip"
	OverLimitSample = "sample"
)

// StateCount is one (family, protocol, state) cell of the per-state breakdown.
type StateCount struct {
	Family   string  `json:"family"`
	Protocol string  `json:"protocol"`
	State    string  `json:"state"`
	Entries  float64 `json:"entries"`
}

// DumpResult describes the last per-state dump.
type DumpResult struct {
	// Mode is "full", "sampled" (the first MaxEntries entries were read and
	// scaled up to the table size), "skipped" (the table held more than
	// MaxEntries), "disabled", or (netsight conntrack only) "unavailable"
	// when the dump failed.
	Mode     string        `json:"mode"`
	Seen     int           `json:"entries_read"`
	Duration time.Duration `json:"-"`
	// DurationSeconds is Duration for JSON.
	DurationSeconds float64      `json:"duration_seconds"`
	States          []StateCount `json:"states,omitempty"`
}

// Reader reads the conntrack table of the calling thread's namespace.
type Reader struct {
	Proc kernel.ConntrackProc
	// MaxDumpEntries bounds the per-state dump; 0 disables it.
	MaxDumpEntries int
	// OverLimit is OverLimitSkip or OverLimitSample.
	OverLimit string

	dumper kernel.ConntrackDumper
	counts [nFam][nProto][nState]uint64
}

// CountAndMax reads nf_conntrack_count and nf_conntrack_max.
func (r *Reader) CountAndMax() (count, max uint64, err error) {
	count, err = r.Proc.Count()
	if err != nil {
		return 0, 0, err
	}
	max, err = r.Proc.Max()
	if err != nil {
		return count, 0, err
	}
	return count, max, nil
}

// DumpStates counts entries per family, protocol and state. count is the
// current table size (from CountAndMax) used to decide on the ceiling.
func (r *Reader) DumpStates(ctx context.Context, count uint64) (DumpResult, error) {
	if r.MaxDumpEntries <= 0 {
		return DumpResult{Mode: "disabled"}, nil
	}
	res := DumpResult{Mode: "full"}
	limit := r.MaxDumpEntries
	if count > uint64(limit) {
		if r.OverLimit != OverLimitSample {
			res.Mode = "skipped"
			return res, nil
		}
		res.Mode = "sampled"
	}
	clear(r.counts[:])
	start := time.Now()
	seen, complete, err := r.dumper.Dump(ctx, entryFunc(func(e *kernel.ConntrackEntry) bool {
		pi := protoIndex(e.Proto)
		r.counts[famIndex(e.Family)][pi][stateIndex(pi, e.HasState, e.State, e.Status)]++
		return true
	}).limitTo(limit))
	res.Duration = time.Since(start)
	res.DurationSeconds = res.Duration.Seconds()
	res.Seen = min(seen, limit)
	if err != nil {
		return res, err
	}
	if !complete && res.Mode == "full" {
		// The table grew past the ceiling while we read it.
		res.Mode = "sampled"
	}
	scale := 1.0
	if res.Mode == "sampled" && seen > 0 {
		// Kernel hash order is effectively random, so the first entries are
		// a uniform sample; scale them to the table size.
		c, err := r.Proc.Count()
		if err != nil {
			c = count
		}
		scale = math.Max(1, float64(c)/float64(seen))
	}
	for f := range r.counts {
		for p := range r.counts[f] {
			for s, n := range r.counts[f][p] {
				if n == 0 {
					continue
				}
				res.States = append(res.States, StateCount{Family: famNames[f], Protocol: protoNames[p],
					State: stateName(p, s), Entries: math.Round(float64(n) * scale)})
			}
		}
	}
	return res, nil
}

type entryFunc func(e *kernel.ConntrackEntry) bool

// limitTo stops the dump once n entries were passed.
func (f entryFunc) limitTo(n int) func(*kernel.ConntrackEntry) bool {
	seen := 0
	return func(e *kernel.ConntrackEntry) bool {
		seen++
		if seen > n {
			return false // the (n+1)th entry is not counted
		}
		return f(e)
	}
}

// CPUStats accumulates the per-CPU statistics into monotonic totals: the
// kernel keeps 32-bit per-CPU values that wrap, so each CPU's delta is taken
// modulo 2^32 and added, and a wrap on one CPU never makes the sum go down.
type CPUStats struct {
	last   map[string][]uint32
	totals map[string]uint64
	order  []string
}

// Observe folds one reading in and returns the totals by column (the
// "entries" gauge column is left out).
func (c *CPUStats) Observe(s kernel.ConntrackCPUStats) (map[string]uint64, []string) {
	if c.last == nil {
		c.last, c.totals = map[string][]uint32{}, map[string]uint64{}
	}
	c.order = c.order[:0]
	for i, col := range s.Columns {
		if col == "entries" {
			continue
		}
		c.order = append(c.order, col)
		prev, ok := c.last[col]
		cur := make([]uint32, len(s.Rows))
		for r, row := range s.Rows {
			cur[r] = row[i]
		}
		if !ok || len(prev) != len(cur) {
			var sum uint64
			for _, v := range cur {
				sum += uint64(v)
			}
			if !ok {
				c.totals[col] = sum
			} else if sum > c.totals[col] { // CPU set changed: never go down
				c.totals[col] = sum
			}
		} else {
			for r := range cur {
				c.totals[col] += uint64(cur[r] - prev[r]) // modulo 2^32
			}
		}
		c.last[col] = cur
	}
	return c.totals, c.order
}
