package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/netsight/netsight/internal/testlab"
	"github.com/netsight/netsight/probe"
)

func TestParseProbeTarget(t *testing.T) {
	for _, tc := range []struct {
		in    string
		tcp   bool
		host  string
		port  uint16
		proto probe.Protocol
		err   bool
	}{
		{"10.0.0.1", false, "10.0.0.1", 0, probe.ICMP, false},
		{"10.0.0.1:443", false, "10.0.0.1", 443, probe.TCP, false},
		{"2001:db8::1", false, "2001:db8::1", 0, probe.ICMP, false},
		{"[2001:db8::1]:22", false, "2001:db8::1", 22, probe.TCP, false},
		{"host.lab", false, "host.lab", 0, probe.ICMP, false},
		{"host.lab:8080", true, "host.lab", 8080, probe.TCP, false},
		{"host.lab", true, "", 0, "", true},
		{"host.lab:0", false, "", 0, "", true},
		{"host.lab:99999", false, "", 0, "", true},
		{":80", false, "", 0, "", true},
		{"[::1", false, "", 0, "", true},
	} {
		got, err := parseProbeTarget(tc.in, tc.tcp)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if err == nil && (got.Host != tc.host || got.Port != tc.port || got.Protocol != tc.proto) {
			t.Errorf("%q: %+v", tc.in, got)
		}
	}
}

func listenLoopback(t *testing.T) (open, closed int) {
	srv := (*testlab.NetNS)(nil).StartSinkServer(t, "127.0.0.1:0")
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed = cl.Addr().(*net.TCPAddr).Port
	cl.Close()
	return int(srv.Addr().Port()), closed
}

func TestProbeCommandJSON(t *testing.T) {
	open, closed := listenLoopback(t)
	var out, errb bytes.Buffer
	// One target: one object.
	code := runMain(context.Background(), []string{"probe", "--json", "--count", "3", "--interval", "10ms",
		fmt.Sprintf("127.0.0.1:%d", open)}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var one map[string]any
	if err := json.Unmarshal(out.Bytes(), &one); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for _, k := range []string{"target", "sent", "received", "loss_ratio", "refused", "timeouts", "rtt_seconds"} {
		if _, ok := one[k]; !ok {
			t.Errorf("field %q missing: %s", k, out.String())
		}
	}
	rtt, _ := one["rtt_seconds"].(map[string]any)
	for _, k := range []string{"min", "p50", "avg", "p90", "p99", "max"} {
		if v, ok := rtt[k].(float64); !ok || v <= 0 {
			t.Errorf("rtt_seconds.%s = %v", k, rtt[k])
		}
	}
	if one["sent"].(float64) != 3 || one["received"].(float64) != 3 || one["loss_ratio"].(float64) != 0 {
		t.Errorf("open port: %s", out.String())
	}

	// Several targets: an array; a closed port is refused and fails the run.
	out.Reset()
	code = runMain(context.Background(), []string{"probe", "--json", "--count", "2", "--interval", "10ms",
		fmt.Sprintf("127.0.0.1:%d", open), fmt.Sprintf("127.0.0.1:%d", closed)}, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d with a refused port, want 1", code)
	}
	var many []map[string]any
	if err := json.Unmarshal(out.Bytes(), &many); err != nil || len(many) != 2 {
		t.Fatalf("%v: %s", err, out.String())
	}
	if many[1]["refused"].(float64) != 2 || many[1]["ok"].(float64) != 0 {
		t.Errorf("closed port: %v", many[1])
	}
}

// A target that never answered: loss 1 and rtt_seconds null, never 0.
func TestProbeJSONDeadTarget(t *testing.T) {
	var s probe.Summary
	for range 5 {
		s.Add(probe.Result{Outcome: probe.Timeout, Sent: 1})
	}
	b, err := json.Marshal(summaryJSON(probe.Target{Name: "dead", Protocol: probe.ICMP}, netip.Addr{}, &s, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"target":"dead","protocol":"icmp","sent":5,"received":0,"loss_ratio":1,"ok":0,"refused":0,"timeouts":5,"unreachable":0,"errors":0,"rtt_seconds":null}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestProbeCommandText(t *testing.T) {
	open, _ := listenLoopback(t)
	var out, errb bytes.Buffer
	code := runMain(context.Background(), []string{"probe", "--count", "2", "--interval", "10ms", "--tcp",
		fmt.Sprintf("127.0.0.1:%d", open)}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "P50 ms") || !strings.Contains(out.String(), "probe 2 ok rtt=") {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
	for _, bad := range [][]string{{"probe"}, {"probe", "--tcp", "10.0.0.1"}, {"probe", "--size", "10", "10.0.0.1"}, {"probe", "--interval", "1ms", "10.0.0.1"}} {
		if code := runMain(context.Background(), bad, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
