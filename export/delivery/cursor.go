package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// cursor is the persisted "acknowledged up to" timestamp of one output.
type cursor struct {
	path string
}

type cursorFile struct {
	Output string `json:"output"`
	// AckedMs: every sample with a timestamp <= AckedMs is delivered (or dropped and counted).
	AckedMs int64  `json:"acked_ms"`
	Acked   string `json:"acked"`
}

// load returns the saved timestamp, or ok=false when there is none yet.
func (c cursor) load() (int64, bool, error) {
	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read cursor: %w", err)
	}
	var f cursorFile
	if err := json.Unmarshal(data, &f); err != nil {
		return 0, false, fmt.Errorf("parse cursor %s: %w", c.path, err)
	}
	return f.AckedMs, true, nil
}

// save writes t atomically and durably: temp file, fsync, rename, fsync dir.
func (c cursor) save(output string, t int64) error {
	data, err := json.Marshal(cursorFile{Output: output, AckedMs: t, Acked: time.UnixMilli(t).UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	dir := filepath.Dir(c.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(c.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save cursor: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save cursor: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save cursor: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save cursor: fsync dir: %w", err)
	}
	return nil
}
