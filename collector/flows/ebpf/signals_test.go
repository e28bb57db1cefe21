package ebpf

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/flow"
)

func TestParseConfigHZ(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"CONFIG_HZ_250=y\nCONFIG_HZ=250\n", 250},
		{"# CONFIG_HZ_1000 is not set\nCONFIG_HZ=1000", 1000},
		{"CONFIG_HZ_PERIODIC=y\n", 0},
		{"CONFIG_HZ=banana\n", 0},
		{"CONFIG_HZ=0\n", 0},
	} {
		if got := parseConfigHZ(strings.NewReader(tc.in)); got != tc.want {
			t.Errorf("parseConfigHZ(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestConnectResult(t *testing.T) {
	for _, tc := range []struct {
		err, rst uint32
		want     string
	}{
		{uint32(unix.ECONNREFUSED), 1, "refused"},
		{0, 1, "refused"}, // error report not seen, the RST was
		{uint32(unix.ETIMEDOUT), 0, "timeout"},
		{0, 0, "timeout"}, // the application gave up first
		{uint32(unix.ECONNRESET), 0, "reset"},
		{uint32(unix.EHOSTUNREACH), 0, ""},
	} {
		if got := connectResult(tc.err, tc.rst); got != tc.want {
			t.Errorf("connectResult(%d, %d) = %q, want %q", tc.err, tc.rst, got, tc.want)
		}
	}
}

// TestToRecordSignals: the per-connection signals are converted with the
// kernel's jiffy length and copied as they are.
func TestToRecordSignals(t *testing.T) {
	c := testConn(1)
	c.Chrono = [3]uint32{100, 50, 25} // jiffies
	c.DeliveryRate, c.DsackDups, c.SndWnd, c.RcvWnd, c.RecvQueue = 12345, 2, 0, 65535, 4096
	c.ZeroWndSent, c.ZeroWndRecv = 3, 4
	c.Flags = flFailed
	c.SkErr = uint32(unix.ECONNREFUSED)
	clk := clock{wall: time.Unix(100, 0), usJiffy: 4000} // HZ=250
	var r flow.Record
	toRecordInto(&r, &c, clk, nil)
	if r.BusyTime != 700*time.Millisecond || r.RwndLimited != 200*time.Millisecond || r.SndbufLimited != 100*time.Millisecond {
		t.Errorf("chrono times busy %s rwnd %s sndbuf %s", r.BusyTime, r.RwndLimited, r.SndbufLimited)
	}
	if r.DeliveryRate != 12345 || r.DSACKDups != 2 || r.SndWnd != 0 || r.RcvWnd != 65535 || r.RecvQueue != 4096 ||
		r.ZeroWindowSent != 3 || r.ZeroWindowReceived != 4 || !r.ConnectFailed || r.ConnectResult != "refused" {
		t.Errorf("record %+v", r)
	}
	clk.usJiffy = 0 // HZ unknown
	toRecordInto(&r, &c, clk, nil)
	if r.BusyTime != 0 || r.RwndLimited != 0 {
		t.Errorf("unknown HZ: busy %s rwnd %s, want 0", r.BusyTime, r.RwndLimited)
	}
}

func TestUsecPerJiffyHere(t *testing.T) {
	us := usecPerJiffy()
	if us != 0 && us != 1000 && us != 3333 && us != 4000 && us != 10000 {
		t.Errorf("usecPerJiffy() = %d, not one of the kernel's HZ choices", us)
	}
}
