package kernel

import "path/filepath"

// Paths are the host filesystem roots netsight reads. A DaemonSet mounts
// the host's /proc at /host/proc; node_exporter's --path.procfs plays the
// same role. Zero fields mean the usual mount points.
type Paths struct {
	ProcFS   string // default /proc
	SysFS    string // default /sys
	CgroupFS string // default /sys/fs/cgroup
}

// DefaultPaths are the usual mount points.
func DefaultPaths() Paths {
	return Paths{ProcFS: "/proc", SysFS: "/sys", CgroupFS: "/sys/fs/cgroup"}
}

// WithDefaults fills empty fields from DefaultPaths.
func (p Paths) WithDefaults() Paths {
	d := DefaultPaths()
	if p.ProcFS == "" {
		p.ProcFS = d.ProcFS
	}
	if p.SysFS == "" {
		p.SysFS = d.SysFS
	}
	if p.CgroupFS == "" {
		p.CgroupFS = d.CgroupFS
	}
	return p
}

// Proc joins elem below the procfs root.
func (p Paths) Proc(elem ...string) string {
	return filepath.Join(append([]string{p.WithDefaults().ProcFS}, elem...)...)
}

// Sys joins elem below the sysfs root.
func (p Paths) Sys(elem ...string) string {
	return filepath.Join(append([]string{p.WithDefaults().SysFS}, elem...)...)
}
