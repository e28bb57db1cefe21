package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netsight/netsight/monitor/health"
)

type fixedReport health.Report

func (f fixedReport) Report() health.Report { return health.Report(f) }

func TestDiagnoseAgent(t *testing.T) {
	at := time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)
	mk := func(vs ...health.Verdict) health.Report {
		rep := health.Report{At: at}
		for i, v := range vs {
			rep.Monitors = append(rep.Monitors, health.MonitorVerdict{Name: []string{"all", "to-a", "to-b"}[i], Verdict: v, Since: at,
				Confidence: health.Medium, Summary: "summary of " + string(v), Culprit: "10.2.0.3:8080",
				Evidence: health.Evidence{"refused": 12, "loss_ratio": 0.0123}, Findings: []health.Finding{{Verdict: health.HostStack, Summary: "a finding"}}})
		}
		rep.Verdict = health.Worst(vs)
		return rep
	}
	for _, tc := range []struct {
		name string
		rep  health.Report
		args []string
		code int
		want []string
	}{
		{"healthy", mk(health.Healthy, health.Healthy), nil, 0, []string{"verdict: healthy (worst of 2 monitors)", "all: healthy"}},
		{"degraded", mk(health.RemoteApplication, health.Healthy, health.RemoteApplication), nil, 1,
			[]string{"verdict: remote_application", "culprit: 10.2.0.3:8080", "evidence: loss_ratio=0.0123 refused=12", "also (host_stack): a finding"}},
		{"insufficient", mk(health.InsufficientData), nil, 2, []string{"verdict: insufficient_data"}},
		{"one monitor", mk(health.PathDegraded, health.Healthy), []string{"--monitor", "to-a"}, 0, []string{"verdict: healthy (worst of 1 monitors)", "to-a: healthy"}},
		{"unknown monitor", mk(health.Healthy), []string{"--monitor", "nope"}, 3, nil},
		{"json", mk(health.PathDegraded, health.Healthy), []string{"--json"}, 1, []string{`"verdict": "path_degraded"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(health.Handler(fixedReport(tc.rep)))
			defer srv.Close()
			var out, errb bytes.Buffer
			code := runMain(context.Background(), append([]string{"diagnose", "--agent", srv.URL}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %s stderr %s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tc.name == "json" {
				var rep health.Report
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Verdict != health.PathDegraded {
					t.Errorf("--json is not the API's report: %v %+v", err, rep)
				}
			}
		})
	}
}

func TestDiagnoseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--agent", "127.0.0.1:1"}, "want a base URL"},
		{[]string{"--agent", "http://127.0.0.1:1"}, "ask the agent"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"--for", "2s"}, "at least 5s"},
	} {
		var out, errb bytes.Buffer
		if code := runMain(context.Background(), append([]string{"diagnose"}, tc.args...), &out, &errb); code != 3 {
			t.Errorf("%v: exit %d, want 3 (error)", tc.args, code)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, errb.String(), tc.want)
		}
	}
	var out bytes.Buffer
	if code := runMain(context.Background(), []string{"diagnose", "--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "Exit code: 0 healthy") {
		t.Errorf("--help: %d %s", code, out.String())
	}
}
