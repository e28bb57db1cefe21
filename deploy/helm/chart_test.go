package helm

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/netsight/netsight/deploy/internal/agenttest"
)

var update = flag.Bool("update", false, "copy deploy/grafana and deploy/prometheus into the chart's files/")

const chartDir = "netsight"

// wantCaps is the documented capability set (docs/install.md).
var wantCaps = []string{"NET_ADMIN", "NET_RAW", "BPF", "PERFMON"}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	agenttest.Cleanup()
	os.Exit(code)
}

// objects is one rendering, decoded.
type objects struct {
	daemonSets      []appsv1.DaemonSet
	configMaps      []corev1.ConfigMap
	services        []corev1.Service
	serviceAccounts []corev1.ServiceAccount
	serviceMonitors []monitoringv1.ServiceMonitor
	podMonitors     []monitoringv1.PodMonitor
	prometheusRules []monitoringv1.PrometheusRule
	clusterRoles    []rbacv1.ClusterRole
	roleBindings    []rbacv1.ClusterRoleBinding
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// render renders the chart with values as `helm template` would, with the
// Prometheus Operator CRDs present when withCRDs.
func render(t *testing.T, ch *chart.Chart, vals map[string]any, withCRDs bool) (map[string]string, error) {
	t.Helper()
	caps := chartutil.DefaultCapabilities.Copy()
	if withCRDs {
		caps.APIVersions = append(caps.APIVersions,
			"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor",
			"monitoring.coreos.com/v1/PodMonitor", "monitoring.coreos.com/v1/PrometheusRule")
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: "netsight", Namespace: "monitoring", IsInstall: true, Revision: 1,
	}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// decode splits every rendered manifest into documents and decodes each
// strictly (unknown fields are errors) into its type.
func decode(t *testing.T, files map[string]string) objects {
	t.Helper()
	var o objects
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for i, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s[%d]: %v", name, i, err)
			}
			where := fmt.Sprintf("%s[%d] %s", name, i, meta.Kind)
			switch meta.APIVersion + "/" + meta.Kind {
			case "apps/v1/DaemonSet":
				o.daemonSets = append(o.daemonSets, strict[appsv1.DaemonSet](t, where, doc))
			case "v1/ConfigMap":
				o.configMaps = append(o.configMaps, strict[corev1.ConfigMap](t, where, doc))
			case "v1/Service":
				o.services = append(o.services, strict[corev1.Service](t, where, doc))
			case "v1/ServiceAccount":
				o.serviceAccounts = append(o.serviceAccounts, strict[corev1.ServiceAccount](t, where, doc))
			case "monitoring.coreos.com/v1/ServiceMonitor":
				o.serviceMonitors = append(o.serviceMonitors, strict[monitoringv1.ServiceMonitor](t, where, doc))
			case "monitoring.coreos.com/v1/PodMonitor":
				o.podMonitors = append(o.podMonitors, strict[monitoringv1.PodMonitor](t, where, doc))
			case "rbac.authorization.k8s.io/v1/ClusterRole":
				o.clusterRoles = append(o.clusterRoles, strict[rbacv1.ClusterRole](t, where, doc))
			case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
				o.roleBindings = append(o.roleBindings, strict[rbacv1.ClusterRoleBinding](t, where, doc))
			case "monitoring.coreos.com/v1/PrometheusRule":
				o.prometheusRules = append(o.prometheusRules, strict[monitoringv1.PrometheusRule](t, where, doc))
			default:
				t.Errorf("%s: unexpected object %s %s", where, meta.APIVersion, meta.Kind)
			}
		}
	}
	return o
}

func strict[T any](t *testing.T, where, doc string) T {
	t.Helper()
	var v T
	if err := yaml.UnmarshalStrict([]byte(doc), &v); err != nil {
		t.Fatalf("%s: strict decode: %v\n%s", where, err, doc)
	}
	return v
}

func ciValues(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci values files: %v", err)
	}
	return files
}

func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v.AsMap()
}

// TestRenderCIValues renders every ci/*-values.yaml with and without the
// Prometheus Operator CRDs and checks every object.
func TestRenderCIValues(t *testing.T) {
	ch := loadChart(t)
	for _, file := range ciValues(t) {
		for _, withCRDs := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/crds=%v", filepath.Base(file), withCRDs), func(t *testing.T) {
				vals := readValues(t, file)
				files, err := render(t, ch, vals, withCRDs)
				if err != nil {
					t.Fatalf("render: %v", err)
				}
				o := decode(t, files)
				merged := mergedValues(t, ch, vals)
				checkDaemonSet(t, o, merged)
				checkConfig(t, o)
				checkMonitoring(t, o, merged, withCRDs)
				checkRBAC(t, o, merged)
			})
		}
	}
}

// mergedValues is values.yaml with the file's values over it.
func mergedValues(t *testing.T, ch *chart.Chart, vals map[string]any) chartutil.Values {
	t.Helper()
	v, err := chartutil.CoalesceValues(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func checkDaemonSet(t *testing.T, o objects, vals chartutil.Values) {
	t.Helper()
	if len(o.daemonSets) != 1 {
		t.Fatalf("want 1 DaemonSet, got %d", len(o.daemonSets))
	}
	ds := o.daemonSets[0]
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("hostNetwork=%v hostPID=%v hostIPC=%v; want true, false, false", spec.HostNetwork, spec.HostPID, spec.HostIPC)
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", spec.PriorityClassName)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Operator == corev1.TolerationOpExists && tl.Key == "" && tl.Effect == ""
	}) {
		t.Errorf("no toleration for every taint: %+v", spec.Tolerations)
	}
	api := kubernetesAPI(vals)
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken != api {
		t.Errorf("pod automountServiceAccountToken %v, want %v (topology.kubernetes: api)", ptrStr(spec.AutomountServiceAccountToken), api)
	}
	if len(spec.InitContainers) != 0 || len(spec.Containers) != 1 {
		t.Fatalf("want exactly one container, got %d (+%d init)", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("container has no securityContext.capabilities")
	}
	if sc.Privileged == nil || *sc.Privileged {
		t.Error("privileged must be set to false")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem must be true")
	}
	if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
		t.Errorf("procMount %q", *sc.ProcMount)
	}
	if got := capNames(sc.Capabilities.Drop); !slices.Equal(got, []string{"ALL"}) {
		t.Errorf("drop %v, want exactly [ALL]", got)
	}
	want := slices.Clone(wantCaps)
	if b, _ := vals.PathValue("capabilities.sysAdmin"); b == true {
		want = append(want, "SYS_ADMIN")
	}
	if got := capNames(sc.Capabilities.Add); !slices.Equal(got, want) {
		t.Errorf("add %v, want exactly %v", got, want)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("no memory limit")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want GET /healthz", c.LivenessProbe)
	}
	port, _ := vals.PathValue("port")
	if !slices.Contains(c.Args, fmt.Sprintf("--listen=[$(NETSIGHT_HOST_IP)]:%v", port)) {
		t.Errorf("args %v do not listen on the node IP", c.Args)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NETSIGHT_HOST_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "status.hostIP"
	}) {
		t.Error("NETSIGHT_HOST_IP is not status.hostIP")
	}

	// Host paths: every one mounted read-only; only the data volume is
	// writable and it is not a host system path.
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	wantHost := map[string]string{"/host/proc": "/proc", "/host/sys": "/sys", "/host/sys/fs/cgroup": "/sys/fs/cgroup"}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("mount %s: no volume %q", m.MountPath, m.Name)
			continue
		}
		if m.MountPath == "/var/lib/netsight" {
			if v.HostPath != nil && !strings.HasPrefix(v.HostPath.Path, "/var/lib/") {
				t.Errorf("data volume on host path %q", v.HostPath.Path)
			}
			continue
		}
		if !m.ReadOnly {
			t.Errorf("mount %s is writable", m.MountPath)
		}
		if src, ok := wantHost[m.MountPath]; ok {
			if v.HostPath == nil || v.HostPath.Path != src {
				t.Errorf("mount %s: volume %+v, want host path %s", m.MountPath, v.VolumeSource, src)
			}
			delete(wantHost, m.MountPath)
		} else if v.HostPath != nil {
			t.Errorf("unexpected host path mount %s <- %s", m.MountPath, v.HostPath.Path)
		}
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			t.Errorf("mount %s: bidirectional propagation", m.MountPath)
		}
	}
	for mp, src := range wantHost {
		t.Errorf("host %s not mounted at %s", src, mp)
	}
}

// kubernetesAPI: the values ask for nodes from the API server.
func kubernetesAPI(vals chartutil.Values) bool {
	v, _ := vals.PathValue("config.topology.kubernetes")
	return v == "api"
}

func ptrStr(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}

// checkRBAC: with topology.kubernetes: api exactly one ClusterRole whose
// only rule is get/list/watch on core nodes, bound to the chart's
// ServiceAccount and nothing else, and the token mounted; otherwise no RBAC
// object at all and no token.
func checkRBAC(t *testing.T, o objects, vals chartutil.Values) {
	t.Helper()
	api := kubernetesAPI(vals)
	if len(o.serviceAccounts) != 1 {
		t.Fatalf("want 1 ServiceAccount, got %d", len(o.serviceAccounts))
	}
	sa := o.serviceAccounts[0]
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken != api {
		t.Errorf("ServiceAccount automountServiceAccountToken %s, want %v", ptrStr(sa.AutomountServiceAccountToken), api)
	}
	if ds := o.daemonSets; len(ds) == 1 && ds[0].Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("DaemonSet runs as ServiceAccount %q, chart's is %q", ds[0].Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	if !api {
		if len(o.clusterRoles)+len(o.roleBindings) != 0 {
			t.Errorf("topology.kubernetes is not api but %d ClusterRoles and %d ClusterRoleBindings", len(o.clusterRoles), len(o.roleBindings))
		}
		return
	}
	if len(o.clusterRoles) != 1 || len(o.roleBindings) != 1 {
		t.Fatalf("topology.kubernetes: api: %d ClusterRoles and %d ClusterRoleBindings, want 1 and 1", len(o.clusterRoles), len(o.roleBindings))
	}
	if err := readOnlyNodes(o.clusterRoles[0]); err != nil {
		t.Error(err)
	}
	b := o.roleBindings[0]
	if b.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: o.clusterRoles[0].Name}) {
		t.Errorf("ClusterRoleBinding roleRef %+v, want the chart's ClusterRole %s", b.RoleRef, o.clusterRoles[0].Name)
	}
	want := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: "monitoring"}}
	if !slices.Equal(b.Subjects, want) {
		t.Errorf("ClusterRoleBinding subjects %+v, want exactly %+v", b.Subjects, want)
	}
}

// readOnlyNodes: one rule, core group, resource nodes, verbs exactly get,
// list, watch; no resource names, URLs or aggregation.
func readOnlyNodes(cr rbacv1.ClusterRole) error {
	if cr.AggregationRule != nil {
		return fmt.Errorf("ClusterRole %s aggregates other roles", cr.Name)
	}
	if len(cr.Rules) != 1 {
		return fmt.Errorf("ClusterRole %s has %d rules, want exactly 1", cr.Name, len(cr.Rules))
	}
	r := cr.Rules[0]
	verbs := slices.Sorted(slices.Values(r.Verbs))
	if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"nodes"}) ||
		!slices.Equal(verbs, []string{"get", "list", "watch"}) || len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 {
		return fmt.Errorf("ClusterRole %s rule %+v, want exactly get/list/watch on core nodes", cr.Name, r)
	}
	return nil
}

func capNames(cs []corev1.Capability) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// checkConfig: the agent config is in a ConfigMap and carries the host paths.
func checkConfig(t *testing.T, o objects) {
	t.Helper()
	for _, cm := range o.configMaps {
		data, ok := cm.Data["netsight.yaml"]
		if !ok {
			continue
		}
		var cfg struct {
			DataDir string            `json:"data_dir"`
			Paths   map[string]string `json:"paths"`
		}
		if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
			t.Fatalf("config map: %v", err)
		}
		want := map[string]string{"procfs": "/host/proc", "sysfs": "/host/sys", "cgroupfs": "/host/sys/fs/cgroup"}
		if fmt.Sprint(cfg.Paths) != fmt.Sprint(want) || cfg.DataDir != "/var/lib/netsight" {
			t.Errorf("config paths %v data_dir %q; want %v and /var/lib/netsight", cfg.Paths, cfg.DataDir, want)
		}
		return
	}
	t.Error("no ConfigMap with netsight.yaml")
}

func checkMonitoring(t *testing.T, o objects, vals chartutil.Values, withCRDs bool) {
	t.Helper()
	enabled := func(key string) bool {
		v, _ := vals.PathValue(key + ".enabled")
		return v == true
	}
	svc := enabled("service")
	if n := len(o.services); (n == 1) != svc {
		t.Errorf("service.enabled=%v but %d Services", svc, n)
	}
	for _, tc := range []struct {
		key  string
		n    int
		want bool
	}{
		{"serviceMonitor", len(o.serviceMonitors), enabled("serviceMonitor") && svc && withCRDs},
		{"podMonitor", len(o.podMonitors), enabled("podMonitor") && withCRDs},
		{"prometheusRule", len(o.prometheusRules), enabled("prometheusRule") && withCRDs},
	} {
		if (tc.n == 1) != tc.want || tc.n > 1 {
			t.Errorf("%s: %d objects, want present=%v (enabled and CRDs=%v)", tc.key, tc.n, tc.want, withCRDs)
		}
	}
	for _, sm := range o.serviceMonitors {
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" {
			t.Errorf("ServiceMonitor endpoints %+v", sm.Spec.Endpoints)
		}
	}
	for _, pr := range o.prometheusRules {
		rules := 0
		for _, g := range pr.Spec.Groups {
			rules += len(g.Rules)
		}
		if len(pr.Spec.Groups) == 0 || rules == 0 {
			t.Error("PrometheusRule has no rules")
		}
	}
	dash := false
	for _, cm := range o.configMaps {
		if cm.Labels["grafana_dashboard"] == "1" {
			dash = true
			if len(cm.Data) == 0 {
				t.Error("dashboards ConfigMap is empty")
			}
		}
	}
	if dash != enabled("dashboards") {
		t.Errorf("dashboards ConfigMap present=%v, dashboards.enabled=%v", dash, enabled("dashboards"))
	}
}

// TestSchemaRejectsInvalidValues: every testdata/invalid-*.yaml fails
// values.schema.json with the error named in its first line ("# want: ...").
func TestSchemaRejectsInvalidValues(t *testing.T) {
	ch := loadChart(t)
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/invalid-*.yaml")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := bytes.Cut(raw, []byte("\n"))
			want, ok := strings.CutPrefix(string(first), "# want: ")
			if !ok {
				t.Fatalf("first line must be '# want: <error substring>'")
			}
			_, err = render(t, ch, readValues(t, file), true)
			if err == nil {
				t.Fatal("invalid values rendered without error")
			}
			t.Logf("%v", err)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		})
	}
}

// TestChartFiles: the chart carries copies of deploy/grafana/*.json and
// deploy/prometheus/*.rules.yml (a chart cannot read files outside its
// directory). -update refreshes them.
func TestChartFiles(t *testing.T) {
	for _, set := range []struct{ src, dst string }{
		{"../grafana/dashboards/*.json", "netsight/files/dashboards"},
		{"../prometheus/*.rules.yml", "netsight/files/rules"},
	} {
		srcs, _ := filepath.Glob(set.src)
		if len(srcs) == 0 {
			t.Fatalf("nothing matches %s", set.src)
		}
		var names []string
		for _, src := range srcs {
			want, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(set.dst, filepath.Base(src))
			names = append(names, filepath.Base(src))
			if *update {
				if err := os.MkdirAll(set.dst, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dst, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(dst)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s: run go test ./helm -run TestChartFiles -update", dst, src)
			}
		}
		have, _ := filepath.Glob(filepath.Join(set.dst, "*"))
		for _, h := range have {
			if !slices.Contains(names, filepath.Base(h)) {
				t.Errorf("%s has no source in %s", h, filepath.Dir(set.src))
			}
		}
	}
}

// TestReadOnlyNodesRejects: the RBAC check does reject any widening.
func TestReadOnlyNodesRejects(t *testing.T) {
	nodes := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "get", "watch"}}
	if err := readOnlyNodes(rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{nodes}}); err != nil {
		t.Fatalf("the chart's rule is rejected: %v", err)
	}
	for name, edit := range map[string]func(cr *rbacv1.ClusterRole){
		"write verb":    func(cr *rbacv1.ClusterRole) { cr.Rules[0].Verbs = append(cr.Rules[0].Verbs, "patch") },
		"wildcard verb": func(cr *rbacv1.ClusterRole) { cr.Rules[0].Verbs = []string{"*"} },
		"secrets":       func(cr *rbacv1.ClusterRole) { cr.Rules[0].Resources = append(cr.Rules[0].Resources, "secrets") },
		"nodes/proxy":   func(cr *rbacv1.ClusterRole) { cr.Rules[0].Resources = []string{"nodes/proxy"} },
		"any group":     func(cr *rbacv1.ClusterRole) { cr.Rules[0].APIGroups = []string{"*"} },
		"second rule": func(cr *rbacv1.ClusterRole) {
			cr.Rules = append(cr.Rules, rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics"}})
		},
		"url":            func(cr *rbacv1.ClusterRole) { cr.Rules[0].NonResourceURLs = []string{"/healthz"} },
		"aggregation":    func(cr *rbacv1.ClusterRole) { cr.AggregationRule = &rbacv1.AggregationRule{} },
		"missing watch":  func(cr *rbacv1.ClusterRole) { cr.Rules[0].Verbs = []string{"get", "list"} },
		"resource names": func(cr *rbacv1.ClusterRole) { cr.Rules[0].ResourceNames = []string{"n1"} },
	} {
		cr := rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{*nodes.DeepCopy()}}
		edit(&cr)
		if readOnlyNodes(cr) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
