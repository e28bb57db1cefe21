package systemd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netsight/netsight/deploy/dist"
	"github.com/netsight/netsight/deploy/internal/agenttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agenttest.Cleanup()
	os.Exit(code)
}

// defaultRootfs is where deploy/systemd/rootfs.sh (run by .ci/run) leaves
// the Debian tree; NETSIGHT_SYSTEMD_ROOTFS overrides it.
const defaultRootfs = "/var/cache/netsight/systemd-rootfs"

// defaultCollectors run without configuration whatever else the agent
// reports (capture and nftables are opt-in; probe idles, up, without
// targets); defaultNames adds every other collector not "disabled".
var defaultCollectors = []string{"conntrack", "flows", "nic", "probe", "sockets"}

// unitCapMask is CAP_NET_ADMIN(12) CAP_NET_RAW(13) CAP_PERFMON(38) CAP_BPF(39),
// the unit's AmbientCapabilities= and CapabilityBoundingSet=.
const unitCapMask = 1<<12 | 1<<13 | 1<<38 | 1<<39

// TestUnitUnderSystemd installs the .rpm (rpm --root, scriptlets run in the
// tree) into a minimal Debian tree, boots it with systemd-nspawn (systemd
// as the container's PID 1), lets systemd start netsight.service as
// packaged (its exact User=, capabilities, SystemCallFilter= and every
// other sandboxing setting), then from the host: every default collector
// is up with the preferred back ends (eBPF flows, BPF socket iterators); the
// agent process runs as netsight with exactly the unit's capabilities, no
// new privileges and seccomp filters of its own. The container shares the
// host's network namespace, so its agent listens on a loopback port of the
// host; nspawn's own limits are widened to bpf/perf_event_open and the
// unit's capabilities so that only the unit's restrictions apply. Then the
// package is erased (rpm -e) and must leave nothing behind.
func TestUnitUnderSystemd(t *testing.T) {
	agenttest.RequireRoot(t)
	nspawn := agenttest.RequireTool(t, "systemd-nspawn")
	rpmBin := agenttest.RequireTool(t, "rpm")
	base := os.Getenv("NETSIGHT_SYSTEMD_ROOTFS")
	if base == "" {
		base = defaultRootfs
	}
	if _, err := os.Stat(filepath.Join(base, ".netsight-rootfs-ok")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Debian tree at %s: run deploy/systemd/rootfs.sh (.ci/run does)", base)
		}
		t.Skipf("no Debian tree at %s: run deploy/systemd/rootfs.sh", base)
	}

	// A private copy of the tree (the cached one stays pristine).
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	run(t, "cp", "-a", base, root)

	pkg, err := dist.Build(dist.Options{Config: "../package/nfpm.yaml", Binary: agenttest.Binary(t), Arch: runtime.GOARCH,
		Version: "v0.0.1", Format: "rpm", OutDir: parent})
	if err != nil {
		t.Fatal(err)
	}
	rpm := func(args ...string) string { return run(t, rpmBin, append([]string{"--root", root}, args...)...) }
	// --nodeps: the tree has no rpm database of its own packages (/bin/sh
	// is there, from dpkg).
	rpm("-i", "--nodeps", pkg)
	if out := rpm("-q", "netsight"); !strings.HasPrefix(out, "netsight-0.0.1-1") {
		t.Errorf("rpm -q netsight: %s", out)
	}
	uid := passwdUID(t, root, "netsight")
	st, err := os.Stat(filepath.Join(root, "var/lib/netsight"))
	if err != nil || st.Mode().Perm() != 0o750 || st.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Errorf("/var/lib/netsight after the post-install script: %v %v", st, err)
	}
	bin := filepath.Join(root, "usr/bin/netsight")
	if out := run(t, bin, "version"); !strings.Contains(out, "netsight") {
		t.Errorf("netsight version from the rpm: %s", out)
	}
	var rep struct {
		CanRun bool `json:"can_run"`
	}
	if out := run(t, bin, "check", "--json"); json.Unmarshal([]byte(out), &rep) != nil || !rep.CanRun {
		t.Errorf("netsight check --json from the rpm: %s", out)
	}

	// Listen on a free loopback port and turn IMDS off (the only edits to
	// the packaged config); enable the unit; mask the timers that would reach the
	// network (apt) and keep a journal on disk to read it afterwards.
	port := agenttest.FreePort(t)
	cfgPath := filepath.Join(root, "etc/netsight/netsight.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const listen = "\n  listen: 127.0.0.1:19977\n"
	if !strings.Contains(string(cfg), listen) {
		t.Fatalf("packaged config has no %q line", strings.TrimSpace(listen))
	}
	cfg = []byte(strings.Replace(string(cfg), listen, fmt.Sprintf("\n  listen: 127.0.0.1:%d\n", port), 1))
	// The unit does not inherit NETSIGHT_NO_METADATA: on an EC2 CI host
	// imds: auto would ask the real metadata service. Off, in the config.
	const imds = "\n  imds: auto\n"
	if !strings.Contains(string(cfg), imds) {
		t.Fatalf("packaged config has no %q line", strings.TrimSpace(imds))
	}
	cfg = []byte(strings.Replace(string(cfg), imds, "\n  imds: \"off\"\n", 1))
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	controlPort := writeControlUnit(t, root)
	run(t, "systemctl", "--root", root, "enable", "netsight.service", "netsight-control.service")
	run(t, "systemctl", "--root", root, "mask", "apt-daily.timer", "apt-daily-upgrade.timer",
		"systemd-networkd.service", "systemd-timesyncd.service", "getty@tty1.service")
	if err := os.MkdirAll(filepath.Join(root, "var/log/journal"), 0o755); err != nil {
		t.Fatal(err)
	}

	args := []string{"-D", root, "--boot", "--quiet", "--console=pipe", "--machine=netsight-unit-test",
		"--capability=CAP_NET_ADMIN,CAP_NET_RAW,CAP_BPF,CAP_PERFMON",
		"--system-call-filter=bpf perf_event_open"}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		// The host's PID 1 is not systemd (this CI VM): no machined, no
		// scope units; the container stays in the test's own cgroup.
		args = append(args, "--register=no", "--keep-unit")
	}
	boot := exec.Command(nspawn, args...)
	console, err := os.Create(filepath.Join(parent, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	boot.Stdout, boot.Stderr = console, console
	booted := time.Now()
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- boot.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		// SIGTERM: nspawn asks the container's systemd to halt (the unit's
		// stop path runs); SIGKILL after 60 s.
		boot.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			boot.Process.Kill()
			<-done
			t.Errorf("container did not halt within 60s of SIGTERM")
		}
	}
	t.Cleanup(stop)

	status := waitCollectors(t, port, done, console.Name())
	t.Logf("boot to every default collector reporting: %s", time.Since(booted).Round(100*time.Millisecond))
	t.Logf("default collectors under the unit: %v", defaultNames(status))
	for _, name := range defaultNames(status) {
		s, ok := status[name]
		if !ok || !s.Up {
			t.Errorf("collector %s under the unit: %+v (reported %v)", name, s, ok)
		}
	}
	checkProcess(t, uid)
	// The control unit runs: its flows and sockets collectors stay up on
	// sock_diag (the filter degrades them, it does not stop the agent).
	control := waitCollectors(t, controlPort, done, console.Name())
	for _, name := range []string{"flows", "sockets"} {
		if s := control[name]; !s.Up {
			t.Errorf("control unit: collector %s %+v, want up on sock_diag", name, s)
		}
	}

	halt := time.Now()
	stop()
	t.Logf("container halted in %s", time.Since(halt).Round(100*time.Millisecond))
	journal := run(t, "journalctl", "--directory", filepath.Join(root, "var/log/journal"), "--no-pager", "-o", "cat",
		"-u", "netsight.service")
	for _, want := range []string{"eBPF back end attached", "backend=bpf_iter", "netsight is serving"} {
		if !strings.Contains(journal, want) {
			t.Errorf("journal of netsight.service lacks %q: preferred back end not used under the unit", want)
		}
	}
	for _, bad := range []string{"operation not permitted", "bad system call", "panic"} {
		if strings.Contains(strings.ToLower(journal), bad) {
			t.Errorf("journal of netsight.service has %q", bad)
		}
	}
	if t.Failed() {
		t.Logf("journal of netsight.service:\n%s", journal)
	}
	// The control: the same unit minus bpf/perf_event_open must lose eBPF
	// (so the checks above can fail, and the filter is what systemd
	// enforces), and say so.
	cj := run(t, "journalctl", "--directory", filepath.Join(root, "var/log/journal"), "--no-pager", "-o", "cat",
		"-u", "netsight-control.service")
	for _, want := range []string{"falling back to sock_diag", "counting sockets with sock_diag"} {
		if !strings.Contains(cj, want) {
			t.Errorf("control unit (bpf filtered out) journal lacks %q:\n%s", want, cj)
		}
	}
	if strings.Contains(cj, "eBPF back end attached") {
		t.Errorf("control unit attached eBPF although its SystemCallFilter denies bpf():\n%s", cj)
	}

	// rpm -e runs the pre/post-remove scriptlets in the tree: the binary,
	// unit, config and state are gone; the user stays (documented).
	rpm("-e", "netsight")
	if out, err := exec.Command(rpmBin, "--root", root, "-q", "netsight").CombinedOutput(); err == nil {
		t.Errorf("rpm -q after rpm -e: %s", out)
	}
	for _, f := range []string{"usr/bin/netsight", "lib/systemd/system/netsight.service", "etc/netsight/netsight.yaml", "var/lib/netsight"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			t.Errorf("/%s left after rpm -e", f)
		}
	}
	passwdUID(t, root, "netsight")
}

// writeControlUnit installs netsight-control.service: netsight.service with
// its own port and state directory and bpf() and perf_event_open() taken
// out of its SystemCallFilter. It returns the control's port.
func writeControlUnit(t *testing.T, root string) int {
	t.Helper()
	raw, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	port := agenttest.FreePort(t)
	const exec = "ExecStart=/usr/bin/netsight run --config /etc/netsight/netsight.yaml --data-dir /var/lib/netsight\n"
	text := string(raw)
	for old, repl := range map[string]string{
		exec:                            fmt.Sprintf("ExecStart=/usr/bin/netsight run --config /etc/netsight/netsight.yaml --data-dir /var/lib/netsight-control --listen 127.0.0.1:%d\n", port),
		"StateDirectory=netsight\n":     "StateDirectory=netsight-control\n",
		"SystemCallErrorNumber=EPERM\n": "SystemCallErrorNumber=EPERM\nSystemCallFilter=~bpf perf_event_open\n",
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("unit has no %q line", strings.TrimSpace(old))
		}
		text = strings.Replace(text, old, repl, 1)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/netsight-control.service"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return port
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// passwdUID is user's uid in root's /etc/passwd.
func passwdUID(t *testing.T, root, user string) int {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) > 2 && fields[0] == user {
			uid, err := strconv.Atoi(fields[2])
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatalf("no user %s in the tree's /etc/passwd", user)
	return 0
}

// waitCollectors polls the agent's status API until every default
// collector has left its starting state (90 s for boot and start).
func waitCollectors(t *testing.T, port int, done <-chan error, console string) map[string]agenttest.Status {
	t.Helper()
	a := &agenttest.Agent{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		list, err := a.Collectors(ctx)
		if err == nil {
			m := map[string]agenttest.Status{}
			settled := true
			for _, s := range list {
				m[s.Name] = s
				if isDefault(s) && !s.Up && s.Reason == "" {
					settled = false
				}
			}
			if settled && len(m) > 0 {
				return m
			}
		}
		select {
		case err := <-done:
			t.Fatalf("container exited: %v\n%s", err, readFile(console))
		case <-ctx.Done():
			t.Fatalf("agent in the container not serving on 127.0.0.1:%d after 90s (%v)\n%s", port, err, readFile(console))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkProcess finds the unit's `netsight run` among the host's processes
// and checks its credentials: uid netsight, exactly the unit's capabilities
// (effective, permitted, ambient, bounding), no_new_privs, and seccomp
// filters beyond those nspawn gave the container's PID 1.
func checkProcess(t *testing.T, uid int) {
	t.Helper()
	pids, _ := filepath.Glob("/proc/[0-9]*")
	var agent, init map[string]string
	for _, p := range pids {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err == nil && string(cmdline) == "/usr/bin/netsight\x00run\x00--config\x00/etc/netsight/netsight.yaml\x00--data-dir\x00/var/lib/netsight\x00" {
			agent = procStatus(p)
			break
		}
	}
	if agent == nil {
		t.Fatal("no /usr/bin/netsight run process on the host")
	}
	if f := strings.Fields(agent["Uid"]); len(f) != 4 || slices.ContainsFunc(f, func(s string) bool { return s != strconv.Itoa(uid) }) {
		t.Errorf("agent Uid %q, want %d (netsight) for real, effective, saved and fs", agent["Uid"], uid)
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapAmb", "CapBnd"} {
		v, err := strconv.ParseUint(agent[k], 16, 64)
		if err != nil || v != unitCapMask {
			t.Errorf("agent %s %s, want %x (CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON)", k, agent[k], uint64(unitCapMask))
		}
	}
	if agent["NoNewPrivs"] != "1" || agent["Seccomp"] != "2" {
		t.Errorf("agent NoNewPrivs %q Seccomp %q, want 1 and 2 (filter mode)", agent["NoNewPrivs"], agent["Seccomp"])
	}
	// The agent's parent is the container's systemd (PID 1 inside).
	if init = procStatus("/proc/" + agent["PPid"]); init != nil && strings.HasSuffix(init["NSpid"], "\t1") {
		a, _ := strconv.Atoi(agent["Seccomp_filters"])
		i, _ := strconv.Atoi(init["Seccomp_filters"])
		t.Logf("seccomp filters: agent %d, container init %d", a, i)
		if a <= i {
			t.Errorf("agent has %d seccomp filters, container init %d: the unit installed none", a, i)
		}
	} else {
		t.Errorf("the agent's parent %v is not the container's PID 1", init)
	}
}

func readFile(name string) string {
	raw, _ := os.ReadFile(name)
	return string(raw)
}

func procStatus(p string) map[string]string {
	raw, err := os.ReadFile(filepath.Join(p, "status"))
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// isDefault: the collector runs without configuration (opt-in ones report
// state "disabled").
func isDefault(s agenttest.Status) bool {
	return slices.Contains(defaultCollectors, s.Name) || s.State != "disabled"
}

// defaultNames lists the known default collectors and every other one the
// agent runs without configuration (collectors added later count too).
func defaultNames(status map[string]agenttest.Status) []string {
	names := slices.Clone(defaultCollectors)
	for n, s := range status {
		if isDefault(s) && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}
