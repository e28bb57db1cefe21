package store

import (
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
)

// writtenTracker counts the bytes the TSDB wrote to its directory (WAL
// segments and checkpoints, head chunk files, compacted blocks) from file
// growth: at each walk, a file's growth since the previous walk is added; a
// file seen for the first time adds its whole size; a file that shrank
// (truncated, or its inode reused) adds its new size. Files are keyed by
// inode, so a rename (a block's .tmp directory becoming the block) counts
// once. Rewrites in place and files created and deleted between two walks
// (the store walks at least once per ingest round, when its registry is
// gathered) are not counted, so this is a slight undercount of what reached
// the disk, and filesystem metadata is not included.
type writtenTracker struct {
	mu    sync.Mutex
	sizes map[uint64]int64 // inode -> size at the last walk
	total int64
}

// start records what is already in dir (the WAL replayed at open, blocks
// of earlier runs) as the baseline, so the total counts this run's writes.
func (w *writtenTracker) start(dir string) {
	w.walk(dir)
	w.mu.Lock()
	w.total = 0
	w.mu.Unlock()
}

// walk measures dir once: it returns the bytes currently used (the
// netsight_store_disk_bytes gauge) and the running total written.
func (w *writtenTracker) walk(dir string) (used, written int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := make(map[uint64]int64, len(w.sizes))
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		size := fi.Size()
		used += size
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		seen[st.Ino] = size
		prev, known := w.sizes[st.Ino]
		switch {
		case !known || size < prev:
			w.total += size
		default:
			w.total += size - prev
		}
		return nil
	})
	w.sizes = seen
	return used, w.total
}
