package kernel

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/testlab"
)

// TestParseInetDiag decodes a recorded sock_diag TCP/IPv4 dump of a lab
// namespace with a listener on 10.79.0.1:7000 and 2 established connections
// to it (re-record with -record as root).
func TestParseInetDiag(t *testing.T) {
	if *record {
		recordInetDiag(t)
	}
	b, err := os.ReadFile("testdata/inet_diag_tcp4.bin")
	if err != nil {
		t.Fatal(err)
	}
	states := map[uint8]int{}
	toListener := 0
	var sk InetSocket
	done, err := ParseInetDiagMessages(b, &sk, func(s *InetSocket) {
		states[s.State]++
		if s.Family != unix.AF_INET {
			t.Errorf("family %d", s.Family)
		}
		if s.DPort == 7000 && [4]byte(s.Dst[:4]) == [4]byte{10, 79, 0, 1} {
			toListener++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !done {
		t.Error("no NLMSG_DONE")
	}
	if states[10] != 1 || states[1] != 4 || toListener != 2 {
		t.Errorf("states %v, %d sockets to the listener; want 1 listen, 4 established, 2 to 10.79.0.1:7000", states, toListener)
	}
}

func TestParseInetDiagErrors(t *testing.T) {
	b, err := os.ReadFile("testdata/inet_diag_tcp4.bin")
	if err != nil {
		t.Fatal(err)
	}
	short := bytes.Clone(b[:16+40])
	nlenc.PutUint32(short, 16+40)
	errMsg := make([]byte, 20)
	nlenc.PutUint32(errMsg, 20)
	nlenc.PutUint16(errMsg[4:], 2)
	nlenc.PutUint32(errMsg[16:], uint32(0x100000000-int64(unix.EPERM)))
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated header", b[:7], "offset 0: truncated netlink header"},
		{"short message", short, "offset 16: inet_diag_msg of 40 bytes, want 72"},
		{"kernel error", errMsg, "kernel error: operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sk InetSocket
			_, err := ParseInetDiagMessages(tc.in, &sk, func(*InetSocket) {})
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseInetDiagMessages(f *testing.F) {
	if b, err := os.ReadFile("testdata/inet_diag_tcp4.bin"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var sk InetSocket
		_, _ = ParseInetDiagMessages(b, &sk, func(*InetSocket) {})
	})
}

func recordInetDiag(t *testing.T) {
	testlab.RequireRoot(t)
	ns := testlab.NewNetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := ns.Run(ctx, "ip", "addr", "add", "10.79.0.1/32", "dev", "lo"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	ln, err := ns.ListenTCP("10.79.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i := 0; i < 2; i++ {
		c, err := ns.Dial(ctx, "tcp4", "10.79.0.1:7000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	var all []byte
	err = ns.Do(func() error {
		d := &SockDiag{tap: func(b []byte) { all = append(all, b...) }}
		return d.Dump(ctx, SockDiagRequest{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: SockDiagStatesAll}, func(*InetSocket) {})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "inet_diag_tcp4.bin"), all, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeIterRecord(t *testing.T) {
	rec := make([]byte, iterRecLen)
	nlenc.PutUint16(rec[0:], unix.AF_INET)
	rec[2] = 6                  // TIME_WAIT
	rec[4], rec[5] = 0x1f, 0x90 // port 8080, network order
	copy(rec[8:12], []byte{10, 0, 0, 7})
	copy(rec[12:28], bytes.Repeat([]byte{0xee}, 16)) // v6 field: ignored for AF_INET
	var sk InetSocket
	sk.Dst[15] = 0xaa // stale data must be cleared
	decodeIterRecord(rec, &sk)
	if sk.Family != unix.AF_INET || sk.State != 6 || sk.DPort != 8080 || [4]byte(sk.Dst[:4]) != [4]byte{10, 0, 0, 7} || sk.Dst[15] != 0 {
		t.Errorf("v4 record decoded as %+v", sk)
	}
	nlenc.PutUint16(rec[0:], unix.AF_INET6)
	v6 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	copy(rec[12:28], v6[:])
	decodeIterRecord(rec, &sk)
	if sk.Family != unix.AF_INET6 || sk.Dst != v6 {
		t.Errorf("v6 record decoded as %+v", sk)
	}
}
