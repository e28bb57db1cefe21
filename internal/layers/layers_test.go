package layers

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestCheckSynthetic(t *testing.T) {
	for _, tc := range []struct {
		name string
		from string
		to   string
		want string // "" when allowed
	}{
		{name: "cmd to agent", from: "cmd/netsight", to: "agent"},
		{name: "agent to store", from: "agent", to: "store"},
		{name: "agent to a collector", from: "agent", to: "collector/flows"},
		{name: "source to seam", from: "collector/flows", to: "collector"},
		{name: "source to its back end", from: "collector/flows", to: "collector/flows/ebpf"},
		{name: "source to flow", from: "collector/capture", to: "flow"},
		{name: "core to kernel", from: "tcpanalysis", to: "internal/kernel"},
		{name: "core sibling", from: "tcpanalysis/pcapfile", to: "tcpanalysis"},
		{name: "web to flow", from: "web", to: "flow"},
		{name: "collector imports web", from: "collector/flows", to: "web", want: "a source imports no other source"},
		{name: "source imports source", from: "collector/nic", to: "collector/sockets", want: "a source imports no other source"},
		{name: "source imports store", from: "collector/capture", to: "store", want: "a source imports no other source"},
		{name: "source imports monitor", from: "collector/conntrack", to: "monitor", want: "a source imports no other source"},
		{name: "source imports output", from: "collector/probe", to: "export/remotewrite", want: "a source imports no other source"},
		{name: "output imports agent", from: "store", to: "agent", want: "nothing but cmd imports agent"},
		{name: "web imports agent", from: "web/dashboard", to: "agent", want: "nothing but cmd imports agent"},
		{name: "store imports web", from: "store", to: "web", want: "sibling"},
		{name: "flow imports collector", from: "flow", to: "collector", want: "upward"},
		{name: "kernel imports flow", from: "internal/kernel", to: "flow", want: "upward"},
		{name: "config imports kernel", from: "config", to: "internal/kernel", want: "upward"},
		{name: "agent imports testlab", from: "agent", to: "internal/testlab", want: "tests only"},
		{name: "unplaced package", from: "gadgets", to: "flow", want: "not placed in a layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(map[string][]string{tc.from: {tc.to}})
			if tc.want == "" {
				if len(got) != 0 {
					t.Errorf("want allowed, got %q", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Errorf("got %q, want one violation containing %q", got, tc.want)
			}
		})
	}
}

// TestTree checks every package of the module (non-test imports).
func TestTree(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", Module+"/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v: %s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			if to, ok := rel(imp); ok {
				graph[from] = append(graph[from], to)
			}
		}
		if _, ok := graph[from]; !ok {
			graph[from] = nil
		}
	}
	if len(graph) < 20 || !slices.Contains(graph["agent"], "store") {
		t.Fatalf("implausible package graph (%d packages): %v", len(graph), graph)
	}
	for _, v := range Check(graph) {
		t.Error(v)
	}
}

func rel(p string) (string, bool) {
	if p == Module {
		return "", false
	}
	r, ok := strings.CutPrefix(p, Module+"/")
	return r, ok
}
