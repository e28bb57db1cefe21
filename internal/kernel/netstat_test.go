package kernel

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files in testdata")

// TestReadNetStatGolden parses /proc/net/{netstat,snmp} captured on the
// 6.18 CI kernel (testdata/netstat, laid out as <procfs>/net and
// <procfs>/<pid>/net) and compares every counter with the golden JSON.
func TestReadNetStatGolden(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"net", "42/net"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range NetStatFiles {
			b, err := os.ReadFile(filepath.Join("testdata/netstat", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	own, err := ReadNetStat(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	byPid, err := ReadNetStat(root, 42)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(own, "", "  ")
	if b, _ := json.MarshalIndent(byPid, "", "  "); string(b) != string(got) {
		t.Error("pid 42 and own namespace fixtures differ")
	}
	golden := "testdata/netstat/golden.json"
	if *updateGolden {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("counters differ from %s (run with -update after checking)", golden)
	}
	for _, k := range []string{"TcpExt.ListenOverflows", "TcpExt.TCPRcvQDrop", "Tcp.RetransSegs", "IpExt.InOctets", "Udp.InErrors"} {
		if _, ok := own[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if _, ok := own["Tcp.MaxConn"]; ok {
		t.Error("Tcp.MaxConn (-1) kept")
	}
	if _, err := ReadNetStat(root, 7); err == nil || !strings.Contains(err.Error(), "7/net/netstat") {
		t.Errorf("missing pid: %v", err)
	}
}

func TestParseNetStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     NetStat
		wantErr  string
	}{
		{name: "two groups", in: "TcpExt: A B\nTcpExt: 1 2\nIpExt: C\nIpExt: 18446744073709551615\n",
			want: NetStat{"TcpExt.A": 1, "TcpExt.B": 2, "IpExt.C": 1<<64 - 1}},
		{name: "negative skipped, blank lines", in: "\nTcp: RtoMin MaxConn\n\nTcp: 200 -1",
			want: NetStat{"Tcp.RtoMin": 200}},
		{name: "empty", in: "", want: NetStat{}},
		{name: "odd line count", in: "TcpExt: A\nTcpExt: 1\nIpExt: C\n", wantErr: "line 3: header without a line of values"},
		{name: "count mismatch", in: "TcpExt: A B\nTcpExt: 1\n", wantErr: "line 2: 1 values for 2 names of TcpExt:"},
		{name: "prefix mismatch", in: "TcpExt: A\nIpExt: 1\n", wantErr: `line 2: values of "IpExt:" follow header "TcpExt:"`},
		{name: "no colon", in: "TcpExt A\nTcpExt 1\n", wantErr: `line 1: want "Group:" first`},
		{name: "not a number", in: "TcpExt: A\nTcpExt: x1\n", wantErr: `line 2: TcpExt.A: value "x1" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NetStat{}
			err := ParseNetStat([]byte(tc.in), got)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %d, want %d", k, got[k], v)
				}
			}
		})
	}
}

func FuzzParseNetStat(f *testing.F) {
	for _, name := range NetStatFiles {
		b, err := os.ReadFile(filepath.Join("testdata/netstat", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("TcpExt: A\nTcpExt: -1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns := NetStat{}
		if err := ParseNetStat(b, ns); err == nil {
			for k := range ns {
				if !strings.Contains(k, ".") {
					t.Fatalf("key %q without group", k)
				}
			}
		}
	})
}
