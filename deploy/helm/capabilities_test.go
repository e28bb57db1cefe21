package helm

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/deploy/internal/agenttest"
)

// chartCaps returns the capabilities the chart's DaemonSet adds with its
// default values.
func chartCaps(t *testing.T) agenttest.Caps {
	t.Helper()
	files, err := render(t, loadChart(t), map[string]any{}, false)
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, files)
	return agenttest.Caps(capNames(o.daemonSets[0].Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add))
}

// unitCaps returns the unit's AmbientCapabilities, checking that the
// bounding set is the same.
func unitCaps(t *testing.T) agenttest.Caps {
	t.Helper()
	f, err := os.Open("../systemd/netsight.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sets := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && (k == "AmbientCapabilities" || k == "CapabilityBoundingSet") {
			for c := range strings.FieldsSeq(v) {
				sets[k] = append(sets[k], strings.TrimPrefix(c, "CAP_"))
			}
		}
	}
	if !slices.Equal(sets["AmbientCapabilities"], sets["CapabilityBoundingSet"]) {
		t.Fatalf("unit: AmbientCapabilities %v != CapabilityBoundingSet %v", sets["AmbientCapabilities"], sets["CapabilityBoundingSet"])
	}
	return agenttest.Caps(sets["AmbientCapabilities"])
}

// TestCapabilitySets: the chart and the unit grant exactly the documented set.
func TestCapabilitySets(t *testing.T) {
	if got := chartCaps(t); !slices.Equal(got, wantCaps) {
		t.Errorf("chart adds %v, want %v", got, wantCaps)
	}
	if got := unitCaps(t); !slices.Equal(got, wantCaps) {
		t.Errorf("unit grants %v, want %v", got, wantCaps)
	}
}

// defaultCollectors run without configuration whatever else the agent
// reports; capture and nftables are opt-in, probe has no targets by default
// (then it idles, up); defaultNames adds every other collector not
// "disabled".
var defaultCollectors = []string{"conntrack", "flows", "nic", "probe", "sockets"}

// checkReport is the part of `netsight check --json` the test reads.
type checkReport struct {
	CanRun  bool `json:"can_run"`
	Results []struct {
		Check   string `json:"check"`
		Verdict string `json:"verdict"`
		Detail  string `json:"detail"`
	} `json:"results"`
}

var capName = regexp.MustCompile(`CAP_[A-Z_]+`)

// TestSetprivCheckAndRun runs the agent as the chart (uid 0, bounding set
// limited to the chart's capabilities) and as the unit (user nobody,
// ambient capabilities) would: `netsight check --json` can run and reports
// the capabilities held, and in `netsight run` every default collector is up
// with the preferred back ends. With no capabilities at all every collector
// that is not up names the capability it lacks.
func TestSetprivCheckAndRun(t *testing.T) {
	agenttest.RequireRoot(t)
	agenttest.RequireTool(t, "setpriv")
	bin := agenttest.Binary(t)
	for _, tc := range []struct {
		name   string
		caps   agenttest.Caps
		asRoot bool
	}{
		{"chart", chartCaps(t), true},
		{"unit", unitCaps(t), false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := agenttest.Setpriv(tc.caps, tc.asRoot, bin, "check", "--json")
			out, err := exec.Command(argv[0], argv[1:]...).Output()
			if err != nil {
				t.Fatalf("%v: %v\n%s", argv, err, out)
			}
			var rep checkReport
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("check --json: %v\n%s", err, out)
			}
			if !rep.CanRun {
				t.Fatalf("check says netsight cannot run:\n%s", out)
			}
			for _, r := range rep.Results {
				if r.Check == "capabilities" {
					for _, c := range tc.caps {
						if !strings.Contains(r.Detail, "held: ") || !strings.Contains(after(r.Detail, "held: "), "CAP_"+c) {
							t.Errorf("check capabilities %q does not list CAP_%s as held", r.Detail, c)
						}
					}
				}
			}

			prefix := agenttest.Setpriv(tc.caps, tc.asRoot)
			uid := agenttest.Nobody
			if tc.asRoot {
				uid = 0
			}
			a := agenttest.Start(t, agenttest.Options{Prefix: prefix, UID: uid})
			status := waitFirstUpdates(t, a)
			for _, name := range defaultNames(status) {
				s, ok := status[name]
				switch {
				case !ok:
					t.Errorf("collector %s not reported", name)
				case s.Up:
				case tc.caps == nil && capName.MatchString(s.Reason):
					t.Logf("%s without capabilities: %s", name, s.Reason)
				default:
					t.Errorf("collector %s: state %s up=%v reason %q; want up or a named capability", name, s.State, s.Up, s.Reason)
				}
			}
			log := a.Log()
			if tc.caps != nil {
				for _, want := range []string{"eBPF back end attached", "backend=bpf_iter"} {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q: preferred back end not used with %v\n%s", want, tc.caps, log)
					}
				}
			} else if !strings.Contains(log, "falling back to sock_diag") || !capName.MatchString(log) {
				t.Errorf("without capabilities flows must fall back naming the capability\n%s", log)
			}
		})
	}
}

func after(s, sep string) string {
	_, a, _ := strings.Cut(s, sep)
	return a
}

// waitFirstUpdates polls the status API until every default collector has
// left its starting state (10 s at most).
func waitFirstUpdates(t *testing.T, a *agenttest.Agent) map[string]agenttest.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		list, err := a.Collectors(ctx)
		if err != nil {
			t.Fatalf("status: %v\n%s", err, a.Log())
		}
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
		select {
		case <-ctx.Done():
			t.Fatalf("collectors did not settle: %+v\n%s", list, a.Log())
		case <-time.After(200 * time.Millisecond):
		}
	}
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
