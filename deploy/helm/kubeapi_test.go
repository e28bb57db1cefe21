package helm

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/netsight/netsight/deploy/internal/agenttest"
)

// fakeAPIServer is a loopback Kubernetes API server that serves a node
// list and authorizes every request against the chart's ClusterRole rules
// the way RBAC does for core resources (GET on the collection = list,
// ?watch=true = watch, GET on /nodes/NAME = get); anything else is 403.
type fakeAPIServer struct {
	rules []rbacv1.PolicyRule
	token string
	nodes corev1.NodeList

	mu      sync.Mutex
	allowed []string
	denied  []string
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	verb, resource, name := requestInfo(r)
	what := fmt.Sprintf("%s %s (%s %s)", r.Method, r.URL.RequestURI(), verb, resource)
	ok := slices.ContainsFunc(f.rules, func(rule rbacv1.PolicyRule) bool {
		return slices.Contains(rule.APIGroups, "") && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb)
	})
	f.mu.Lock()
	if ok {
		f.allowed = append(f.allowed, what)
	} else {
		f.denied = append(f.denied, what)
	}
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"kind":"Status","status":"Failure","reason":"Forbidden","code":403}`, http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if verb == "get" {
		for _, n := range f.nodes.Items {
			if n.Name == name {
				json.NewEncoder(w).Encode(n)
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	json.NewEncoder(w).Encode(f.nodes)
}

// requestInfo maps a core-group request to its RBAC verb and resource.
func requestInfo(r *http.Request) (verb, resource, name string) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
	if !ok {
		return strings.ToLower(r.Method), "nonresource:" + r.URL.Path, ""
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	resource = parts[0]
	if len(parts) > 1 {
		name = parts[1]
		resource = strings.Join(append([]string{parts[0]}, parts[2:]...), "/")
	}
	switch {
	case r.Method != http.MethodGet:
		verb = map[string]string{"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[r.Method]
	case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
		verb = "watch"
	case name != "":
		verb = "get"
	default:
		verb = "list"
	}
	return verb, resource, name
}

func testNode(name, zone, podCIDR, ip string) corev1.Node {
	return corev1.Node{
		TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "us-east-1"}},
		Spec:   corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}},
	}
}

// TestKubernetesAPIWithChartRBAC runs the agent with the chart's default
// config (topology.kubernetes: api) against a loopback API server that
// allows exactly the rules of the chart's ClusterRole: the agent must load
// every node (its topology source ok with both nodes) and make no request
// the role does not allow. The agent runs in a private mount namespace
// where /run (so /var/run) is a tmpfs holding the service account files
// a pod would get.
func TestKubernetesAPIWithChartRBAC(t *testing.T) {
	agenttest.RequireRoot(t)
	agenttest.RequireTool(t, "unshare")
	files, err := render(t, loadChart(t), map[string]any{}, false)
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, files)
	if len(o.clusterRoles) != 1 {
		t.Fatalf("default values: %d ClusterRoles, want 1 (topology.kubernetes: api)", len(o.clusterRoles))
	}
	var cfg map[string]any
	for _, cm := range o.configMaps {
		if data, ok := cm.Data["netsight.yaml"]; ok {
			if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg["paths"] = map[string]any{"procfs": "/proc", "sysfs": "/sys", "cgroupfs": "/sys/fs/cgroup"}
	delete(cfg, "data_dir")
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}

	fake := &fakeAPIServer{rules: o.clusterRoles[0].Rules, token: "netsight-test-token",
		nodes: corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, Items: []corev1.Node{
			testNode("node-a", "us-east-1a", "10.244.1.0/24", "10.0.1.10"),
			testNode("node-b", "us-east-1b", "10.244.2.0/24", "10.0.2.10"),
		}}}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}

	sa := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for name, data := range map[string][]byte{"token": []byte(fake.token), "ca.crt": ca, "namespace": []byte("monitoring")} {
		if err := os.WriteFile(filepath.Join(sa, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const dir = "/run/secrets/kubernetes.io/serviceaccount"
	script := fmt.Sprintf(`mount -t tmpfs -o size=1m tmpfs /run && mkdir -p %[1]s && cp %[2]s/* %[1]s/ && exec "$0" "$@"`, dir, sa)
	a := agenttest.Start(t, agenttest.Options{Config: string(raw), Prefix: []string{
		"env", "KUBERNETES_SERVICE_HOST=" + host, "KUBERNETES_SERVICE_PORT=" + port,
		"unshare", "--mount", "--propagation", "private", "sh", "-c", script}})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var kube struct {
		Source   string `json:"source"`
		State    string `json:"state"`
		Detail   string `json:"detail"`
		Networks int    `json:"networks"`
	}
	for kube.State == "" || kube.State == "off" {
		var resp struct {
			Topology []struct {
				Source   string `json:"source"`
				State    string `json:"state"`
				Detail   string `json:"detail"`
				Networks int    `json:"networks"`
			} `json:"topology"`
		}
		if err := a.GetJSON(ctx, "/api/v1/monitors", &resp); err != nil {
			t.Fatalf("%v\n%s", err, a.Log())
		}
		for _, s := range resp.Topology {
			if s.Source == "kubernetes" {
				kube = s
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kubernetes topology source never asked\n%s", a.Log())
		case <-time.After(200 * time.Millisecond):
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	t.Logf("kubernetes source: %s, %d networks %s; requests allowed by the chart's role: %v", kube.State, kube.Networks, kube.Detail, fake.allowed)
	if kube.State != "ok" || kube.Networks != len(fake.nodes.Items) {
		t.Errorf("kubernetes source %+v, want ok with %d node networks\n%s", kube, len(fake.nodes.Items), a.Log())
	}
	if len(fake.denied) > 0 {
		t.Errorf("the agent made requests the chart's ClusterRole does not allow: %v", fake.denied)
	}
	if len(fake.allowed) == 0 {
		t.Error("the agent made no request to the API server")
	}
}
