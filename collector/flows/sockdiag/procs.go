package sockdiag

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Owner is the process holding a socket.
type Owner struct {
	PID  uint32
	Comm string
}

// ScanOwners walks <procRoot>/*/fd and returns the owner of each socket
// inode in want (the first process found; a socket shared after fork is
// attributed to one of its holders). It stops early once every inode is
// found. Processes that vanish or deny access are skipped.
func ScanOwners(procRoot string, want map[uint32]bool) map[uint32]Owner {
	out := make(map[uint32]Owner, len(want))
	if len(want) == 0 {
		return out
	}
	procs, err := os.ReadDir(procRoot)
	if err != nil {
		return out
	}
	for _, p := range procs {
		pid, err := strconv.ParseUint(p.Name(), 10, 32)
		if err != nil {
			continue
		}
		fdDir := filepath.Join(procRoot, p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		var comm string
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil {
				continue
			}
			rest, ok := strings.CutPrefix(l, "socket:[")
			if !ok {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 32)
			if err != nil || !want[uint32(ino)] {
				continue
			}
			if _, dup := out[uint32(ino)]; dup {
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile(filepath.Join(procRoot, p.Name(), "comm"))
				comm = strings.TrimSpace(string(b))
			}
			out[uint32(ino)] = Owner{PID: uint32(pid), Comm: comm}
			if len(out) == len(want) {
				return out
			}
		}
	}
	return out
}
