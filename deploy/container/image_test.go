package container

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/deploy/internal/agenttest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agenttest.Cleanup()
	os.Exit(code)
}

// podmanArgs are the global flags: runc, because Debian's crun refuses a
// hybrid cgroup host (this lab: "cgroups in hybrid mode not supported").
var podmanArgs = []string{"--runtime", "runc"}

// runArgs run the container as the Helm chart does.
var runArgs = []string{
	"--network", "host", "--read-only", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN,NET_RAW,BPF,PERFMON",
	// The lab's hard RLIMIT_NOFILE (20000) is below podman's default.
	"--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096",
}

func podman(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("podman", append(podmanArgs, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// TestImage builds the image from the static binary, runs `netsight check
// --json` in it and a short `netsight run` whose default collectors must all
// be up.
func TestImage(t *testing.T) {
	agenttest.RequireRoot(t)
	agenttest.RequireTool(t, "podman")
	agenttest.RequireTool(t, "runc")
	ctxDir := t.TempDir()
	raw, err := os.ReadFile(agenttest.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "netsight"), raw, 0o755); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("localhost/netsight-test:%d", os.Getpid())
	if _, err := podman(t, "build", "-q", "-f", "Dockerfile", "-t", tag, ctxDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { podman(t, "rmi", "-f", tag) })

	out, err := podman(t, append(append([]string{"run", "--rm"}, runArgs...), tag, "check", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		CanRun  bool `json:"can_run"`
		Results []struct{ Check, Verdict, Detail string }
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	if !rep.CanRun {
		t.Fatalf("netsight check in the container: cannot run\n%s", out)
	}
	for _, r := range rep.Results {
		if r.Check == "capabilities" && !strings.Contains(r.Detail, "held: CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON") {
			t.Errorf("capabilities in the container: %s", r.Detail)
		}
		if r.Verdict != "ok" {
			t.Logf("container check: %s %s: %s", r.Verdict, r.Check, r.Detail)
		}
	}

	port := agenttest.FreePort(t)
	name := fmt.Sprintf("netsight-test-%d", os.Getpid())
	// -e NETSIGHT_NO_METADATA: never the real EC2 metadata service (the
	// container shares the host's network).
	args := append(append([]string{"run", "-d", "--name", name, "--tmpfs", "/var/lib/netsight",
		"-e", "NETSIGHT_NO_METADATA=1"}, runArgs...),
		tag, "run", fmt.Sprintf("--listen=127.0.0.1:%d", port), "--data-dir=/var/lib/netsight")
	if _, err := podman(t, args...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { podman(t, "rm", "-f", "-t", "5", name) })
	url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/status/collectors", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status []agenttest.Status
		resp, err := http.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&status)
			resp.Body.Close()
		}
		settled, up := err == nil && len(status) > 0, map[string]bool{}
		for _, s := range status {
			up[s.Name] = s.Up
			if !s.Up && s.Reason == "" {
				settled = false
			}
		}
		if settled {
			for _, c := range []string{"conntrack", "flows", "nic", "probe", "sockets"} {
				if !up[c] {
					t.Errorf("collector %s is not up in the container: %+v", c, status)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			logs, _ := podman(t, "logs", name)
			t.Fatalf("agent in the container did not settle (%v)\n%s", err, logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
