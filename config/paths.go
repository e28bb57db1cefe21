package config

import (
	"errors"
	"path/filepath"
)

// Paths are the host filesystem roots the collectors read (the paths
// section). A DaemonSet that mounts the host's /proc at /host/proc sets
// procfs: /host/proc, as node_exporter's --path.procfs.
type Paths struct {
	ProcFS   string `yaml:"procfs"`
	SysFS    string `yaml:"sysfs"`
	CgroupFS string `yaml:"cgroupfs"`
}

// DefaultPaths are the usual mount points.
func DefaultPaths() Paths {
	return Paths{ProcFS: "/proc", SysFS: "/sys", CgroupFS: "/sys/fs/cgroup"}
}

// Validate checks that every root is an absolute path.
func (p Paths) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"procfs", p.ProcFS}, {"sysfs", p.SysFS}, {"cgroupfs", p.CgroupFS}} {
		if !filepath.IsAbs(f.v) {
			errs = append(errs, Errorf(f.name, "must be an absolute path, got %q", f.v))
		}
	}
	return errors.Join(errs...)
}
