// Package docs_test keeps docs/metrics.md honest: it is generated from the
// per-collector tables in docs/metrics/*.md, and every metric family the
// code names must be documented there.
package docs_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate docs/metrics.md")

// order puts the agent's own metrics first, then collectors alphabetically.
func sources(t *testing.T) []string {
	files, err := filepath.Glob("metrics/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/metrics/*.md: %v", err)
	}
	sort.Slice(files, func(i, j int) bool {
		ai, aj := strings.HasSuffix(files[i], "/agent.md"), strings.HasSuffix(files[j], "/agent.md")
		if ai != aj {
			return ai
		}
		return files[i] < files[j]
	})
	return files
}

func generate(t *testing.T) string {
	var b strings.Builder
	b.WriteString("# netsight metrics reference\n\n")
	b.WriteString("<!-- Generated from docs/metrics/*.md by `go test ./docs -update`. Do not edit. -->\n\n")
	b.WriteString("Every metric family netsight exports, by collector: type, labels, the worst-case number of series\n")
	b.WriteString("and the node_exporter (or Prometheus) family that measures the same thing, where one exists.\n")
	b.WriteString("Names follow `netsight_<subsystem>_<name>_<unit>`; counters end in `_total`; units are seconds and bytes.\n")
	b.WriteString("Per-connection 5-tuples never become labels: they are served by `/api/v1/flows`.\n\n")
	for _, f := range sources(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.TrimSpace(string(data))
		s = regexp.MustCompile(`(?m)^<!--.*-->\n?`).ReplaceAllString(s, "")
		name := strings.TrimSuffix(filepath.Base(f), ".md")
		if !strings.HasPrefix(s, "# ") {
			s = "# " + name + " collector metrics\n\n" + s
		}
		// Demote headings one level under the document title.
		s = regexp.MustCompile(`(?m)^(#+) `).ReplaceAllString(s, "#$1 ")
		b.WriteString(s + "\n\n")
	}
	return b.String()
}

func TestMetricsDocGenerated(t *testing.T) {
	want := generate(t)
	if *update {
		if err := os.WriteFile("metrics.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/metrics.md is stale: run `go test ./docs -update`")
	}
}

var braceRE = regexp.MustCompile(`\{([a-z0-9_,]+)\}`)

// expand turns netsight_x_{a,b}_total into netsight_x_a_total, netsight_x_b_total.
func expand(s string) []string {
	m := braceRE.FindStringSubmatchIndex(s)
	if m == nil {
		return []string{s}
	}
	var out []string
	for _, alt := range strings.Split(s[m[2]:m[3]], ",") {
		out = append(out, expand(s[:m[0]]+alt+s[m[1]:])...)
	}
	return out
}

// Documented returns every family name documented in docs/metrics.md.
func documented(t *testing.T) map[string]bool {
	data, err := os.ReadFile("metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:netsight|go|promhttp)_[a-z0-9_{},]*)`").FindAllStringSubmatch(string(data), -1) {
		for _, n := range expand(m[1]) {
			out[n] = true
		}
	}
	return out
}

// TestEveryLiteralFamilyDocumented checks the metric names spelled out in
// the code. Families built from a prefix at run time are checked by the
// end-to-end test in cmd/netsight against a live agent.
func TestEveryLiteralFamilyDocumented(t *testing.T) {
	docs := documented(t)
	nameRE := regexp.MustCompile(`"(netsight_[a-z0-9_]*[a-z0-9])"`)
	missing := map[string][]string{}
	err := filepath.Walk("..", func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && (info.Name() == "testdata" || info.Name() == "bench" || strings.HasPrefix(info.Name(), ".")) && p != ".." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.Contains(p, "_bpfel") || strings.Contains(p, "_bpfeb") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range nameRE.FindAllStringSubmatch(string(data), -1) {
			if !docs[m[1]] && !docs[strings.TrimSuffix(m[1], "_bucket")] {
				missing[m[1]] = append(missing[m[1]], p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for n, files := range missing {
		t.Errorf("%s (named in %s) is not documented in docs/metrics.md", n, strings.Join(files, ", "))
	}
}

// Documented families are exported by name; this guards the check itself.
func TestExpand(t *testing.T) {
	got := expand("netsight_a_{x,y}_{1,2}")
	if strings.Join(got, " ") != "netsight_a_x_1 netsight_a_x_2 netsight_a_y_1 netsight_a_y_2" {
		t.Fatal(got)
	}
}
