package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/receiver"
	"github.com/netsight/netsight/internal/testlab"
)

// seed003 are the 18 identifiers seed 003's script printed (plugin
// instance: netsight's table instead of the user's conntrack_stats).
func seed003() []string {
	var out []string
	for _, p := range []string{"tcp", "udp"} {
		for _, h := range []string{"fwd", "input", "output"} {
			for _, s := range []string{"new", "established", "invalid"} {
				out = append(out, fmt.Sprintf("nftables-netsight/packets-%s_conntrack_%s_%s", p, h, s))
			}
		}
	}
	return out
}

// nobodyBinary copies the netsight binary where uid nobody can run it and,
// with caps, gives it file capabilities.
func nobodyBinary(t *testing.T, caps string) (bin, dir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "netsight-collectd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(buildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "netsight")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if caps != "" {
		if out, err := exec.Command(testlab.RequireBinary(t, "setcap"), caps, bin).CombinedOutput(); err != nil {
			t.Fatalf("setcap: %v %s", err, out)
		}
	}
	cfg := "data_dir: " + filepath.Join(dir, "data") + "\ncollectors:\n"
	for _, c := range []string{"flows", "capture", "probe", "nic", "sockets", "conntrack"} {
		cfg += "  " + c + ": {enabled: false}\n"
	}
	cfg += "  nftables: {enabled: true}\n"
	if err := os.WriteFile(filepath.Join(dir, "collectd.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return bin, dir
}

// TestCollectdExecNonRoot: collectd's real Exec plugin runs `netsight
// collectd` as nobody (with file capabilities) in a fresh
// network namespace; the csv plugin receives seed 003's 18 nftables
// conntrack-state counters under the seed's identifiers.
func TestCollectdExecNonRoot(t *testing.T) {
	testlab.RequireRoot(t)
	ns := testlab.NewNetNS(t)
	// CAP_NET_ADMIN only: the nftables collector needs nothing more (it
	// pins its namespace with setns, which needs CAP_SYS_ADMIN, only when
	// built from a thread in another namespace than the process's).
	bin, dir := nobodyBinary(t, "cap_net_admin=ep")
	extra := fmt.Sprintf("LoadPlugin exec\n<Plugin exec>\n  Exec \"nobody:nogroup\" %q \"collectd\" \"--config\" %q\n</Plugin>\n",
		bin, filepath.Join(dir, "collectd.yaml"))
	cd := receiver.Collectd(t, receiver.CollectdOptions{Extra: extra, Wrap: []string{"ip", "netns", "exec", ns.Name}})
	want := seed003()
	var missing []string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		got, err := cd.CSV("collectd-lab")
		if err != nil {
			t.Fatal(err)
		}
		missing = missing[:0]
		for _, id := range want {
			if len(got[id]) == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			var ids []string
			for id := range got {
				if strings.HasPrefix(id, "nftables-") {
					ids = append(ids, id)
				}
			}
			sort.Strings(ids)
			t.Logf("%d nftables identifiers, e.g. %s", len(ids), ids[0])
			return
		}
	}
	t.Fatalf("missing %d of 18 identifiers, e.g. %v\ncollectd log:\n%s", len(missing), missing[0], cd.Logs())
}

// TestCollectdNamesMissingCapability: without the file capability, as
// nobody, the subcommand says which capability the nftables collector lacks.
func TestCollectdNamesMissingCapability(t *testing.T) {
	testlab.RequireRoot(t)
	bin, dir := nobodyBinary(t, "")
	cmd := exec.Command(bin, "collectd", "--once", "--config", filepath.Join(dir, "collectd.yaml"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Env = []string{"COLLECTD_INTERVAL=60,000", "COLLECTD_HOSTNAME=router"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("netsight collectd: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "collector nftables does not run as uid 65534") || !strings.Contains(string(out), "CAP_NET_ADMIN") {
		t.Errorf("output does not name the missing capability:\n%s", out)
	}
	if !strings.Contains(string(out), `PUTVAL "router/netsight-collector_up/gauge-nftables" interval=60.000 N:0`) {
		t.Errorf("no PUTVAL line for the collector's state with host and interval from the environment:\n%s", out)
	}
}
