package testlab

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// InCI reports whether the tests run in CI, i.e. the environment variable CI
// holds a true boolean ("true", "1", ...). In CI every requirement checked by
// this package turns a skip into a failure: a privileged test that silently
// skips in CI is a test that never runs.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Require skips the test when cond is false, or fails it when running in CI
// (see InCI). what names the missing requirement, e.g. "CAP_NET_ADMIN" or
// "kernel >= 5.16 (nft netdev egress hook)".
func Require(tb testing.TB, cond bool, what string) {
	tb.Helper()
	if cond {
		return
	}
	missing(tb, "requirement not met: %s", what)
}

// RequireRoot marks a privileged lab test. Under -short (the suite's fast
// unit pass with the race detector) it always skips: the full pass runs it.
// Otherwise it skips (locally) or fails (in CI) unless the test runs with
// effective uid 0. Everything else in this package needs it.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("privileged lab test: runs in the full pass (without -short)")
	}
	Require(tb, os.Geteuid() == 0, "root (euid 0) for network namespaces")
}

// RequireBinary skips (locally) or fails (in CI) unless the external tool name
// is found in $PATH, and returns its path.
func RequireBinary(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(tb, "requirement not met: binary %q in $PATH: %v", name, err)
		return ""
	}
	return p
}

// RequireKernel skips (locally) or fails (in CI) unless the running kernel is
// at least major.minor. what says which feature needs it.
func RequireKernel(tb testing.TB, major, minor int, what string) {
	tb.Helper()
	maj, mnr, err := kernelVersion()
	if err != nil {
		missing(tb, "requirement not met: kernel version for %s: %v", what, err)
		return
	}
	ok := maj > major || (maj == major && mnr >= minor)
	Require(tb, ok, fmt.Sprintf("kernel >= %d.%d for %s (running %d.%d)", major, minor, what, maj, mnr))
}

func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if InCI() {
		tb.Fatalf(format+" (CI=true: failing instead of skipping)", args...)
		return
	}
	tb.Skipf(format, args...)
}

func kernelVersion() (major, minor int, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, 0, fmt.Errorf("uname: %w", err)
	}
	return parseKernelRelease(unix.ByteSliceToString(u.Release[:]))
}

// parseKernelRelease parses the leading "major.minor" of a kernel release
// string such as "6.18.44-fc-v595".
func parseKernelRelease(rel string) (major, minor int, err error) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("parse kernel release %q: want major.minor", rel)
	}
	major, err = strconv.Atoi(parts[0])
	if err != nil {
		return 0, 0, fmt.Errorf("parse kernel release %q: %w", rel, err)
	}
	m := parts[1]
	if i := strings.IndexFunc(m, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		m = m[:i]
	}
	minor, err = strconv.Atoi(m)
	if err != nil {
		return 0, 0, fmt.Errorf("parse kernel release %q: %w", rel, err)
	}
	return major, minor, nil
}
