package agent

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/netsight/netsight/config"
)

// userDataDir picks the data directory. When data_dir is the default
// (/var/lib/netsight), was not given with --data-dir, and this process may
// not write there (an unprivileged `netsight run`), it uses the per-user
// state directory instead: $XDG_STATE_HOME/netsight, else
// ~/.local/state/netsight. It returns the directory and, when it moved
// away from the configured one, why (for the log). It never fails: a data
// directory that cannot be used only takes the store down.
func userDataDir(dir string, overrides map[string]string) (string, string) {
	if _, set := overrides["data_dir"]; set || dir != config.DefaultDataDir || os.Geteuid() == 0 {
		return dir, ""
	}
	if writable(dir) {
		return dir, ""
	}
	state := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(state) {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return dir, ""
		}
		state = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(state, "netsight"), "not running as root and " + dir + " is not writable: using the per-user state directory (set --data-dir to choose another)"
}

func writable(dir string) bool {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false
	}
	return syscall.Access(dir, 2 /* W_OK */) == nil
}
