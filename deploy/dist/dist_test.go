package dist

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netsight/netsight/deploy/internal/agenttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agenttest.Cleanup()
	os.Exit(code)
}

func TestPackageVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":            "1.2.3",
		"1.2.3":             "1.2.3",
		"23d7841":           "0.0.0~git23d7841",
		"v0.1.0-3-g23d7841": "0.0.0~git0.1.0.3.g23d7841",
		"23d7841-dirty":     "0.0.0~git23d7841.dirty",
		"v1.2.3-rc.1-dirty": "0.0.0~git1.2.3.rc.1.dirty",
	} {
		if got := PackageVersion(in); got != want {
			t.Errorf("PackageVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBuildAll builds both formats for both architectures (a stand-in
// binary: packaging does not look inside it) and checks the names.
func TestBuildAll(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "netsight")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		for _, format := range Formats {
			p, err := Build(Options{Config: "../package/nfpm.yaml", Binary: bin, Arch: arch, Version: "v1.2.3", Format: format, OutDir: dir})
			if err != nil {
				t.Fatalf("%s %s: %v", arch, format, err)
			}
			name := filepath.Base(p)
			if !strings.HasPrefix(name, "netsight") || !strings.Contains(name, "1.2.3") || !strings.HasSuffix(name, "."+format) {
				t.Errorf("%s %s: package name %s", arch, format, name)
			}
		}
	}
}

// TestDebInstall builds the .deb of the host architecture with the real
// binary, installs it with dpkg -i, runs `netsight version` and `netsight
// check` from it, checks the files, the user and the conffile, then purges
// it and checks that nothing but the documented netsight user is left.
func TestDebInstall(t *testing.T) {
	agenttest.RequireRoot(t)
	agenttest.RequireTool(t, "dpkg")
	if out, err := exec.Command("dpkg-query", "-W", "netsight").CombinedOutput(); err == nil {
		t.Fatalf("a netsight package is already installed on this host; refusing to touch it: %s", out)
	}
	if _, err := os.Stat("/usr/bin/netsight"); err == nil {
		t.Fatal("/usr/bin/netsight exists outside dpkg; refusing to overwrite it")
	}
	_, userExisted := exec.Command("getent", "passwd", "netsight").Output()

	dir := t.TempDir()
	deb, err := Build(Options{Config: "../package/nfpm.yaml", Binary: agenttest.Binary(t), Arch: runtime.GOARCH,
		Version: "v0.0.1", Format: "deb", OutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		// Whatever failed above: leave the host as it was.
		exec.Command("dpkg", "--purge", "netsight").Run()
		if userExisted != nil {
			exec.Command("userdel", "netsight").Run()
			exec.Command("groupdel", "netsight").Run()
		}
	})
	run("dpkg", "-i", deb)

	if out := run("/usr/bin/netsight", "version"); !strings.Contains(out, "netsight") {
		t.Errorf("netsight version: %s", out)
	}
	out := run("/usr/bin/netsight", "check", "--json")
	var rep struct {
		CanRun bool `json:"can_run"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.CanRun {
		t.Errorf("netsight check --json from the package: can_run=%v err=%v\n%s", rep.CanRun, err, out)
	}
	for _, f := range []string{"/usr/bin/netsight", "/lib/systemd/system/netsight.service", "/etc/netsight/netsight.yaml"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("installed file: %v", err)
		}
	}
	if conf := run("dpkg-query", "-W", "-f=${Conffiles}", "netsight"); !strings.Contains(conf, "/etc/netsight/netsight.yaml") {
		t.Errorf("config is not a conffile: %q", conf)
	}
	run("getent", "passwd", "netsight")
	if st, err := os.Stat("/var/lib/netsight"); err != nil || !st.IsDir() || st.Mode().Perm() != 0o750 {
		t.Errorf("/var/lib/netsight: %v %v", st, err)
	}
	// The shipped config is valid: the installed agent starts with it and
	// is still running after 3 s (stopped with SIGTERM).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/netsight", "run", "--config", "/etc/netsight/netsight.yaml",
		"--listen", fmt.Sprintf("127.0.0.1:%d", agenttest.FreePort(t)), "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "NETSIGHT_NO_METADATA=1") // never the real EC2 metadata service
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if out, err := cmd.CombinedOutput(); ctx.Err() == nil {
		t.Errorf("agent with the packaged config exited early: %v\n%s", err, out)
	}

	run("dpkg", "--purge", "netsight")
	if out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", "netsight").CombinedOutput(); err == nil &&
		strings.TrimSpace(string(out)) != "not-installed" {
		t.Errorf("after purge dpkg status %q", out)
	}
	for _, f := range []string{"/usr/bin/netsight", "/lib/systemd/system/netsight.service", "/etc/netsight", "/var/lib/netsight"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s left after purge", f)
		}
	}
	// Documented: the system user stays after purge (Debian policy).
	run("getent", "passwd", "netsight")
}
