package kernel

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// diagMsg builds an inet_diag_msg with attributes, as the kernel sends it.
func diagMsg(family, state uint8, src, dst netip.AddrPort, cookie uint64, inode uint32, info []byte, cgroup uint64) []byte {
	b := make([]byte, inetDiagMsgLen)
	b[0], b[1] = family, state
	binary.BigEndian.PutUint16(b[4:], src.Port())
	binary.BigEndian.PutUint16(b[6:], dst.Port())
	s16, d16 := src.Addr().As16(), dst.Addr().As16()
	if family == unix.AF_INET {
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(b[8:], s4[:])
		copy(b[24:], d4[:])
	} else {
		copy(b[8:], s16[:])
		copy(b[24:], d16[:])
	}
	binary.NativeEndian.PutUint32(b[44:], uint32(cookie))
	binary.NativeEndian.PutUint32(b[48:], uint32(cookie>>32))
	binary.NativeEndian.PutUint32(b[68:], inode)
	ae := netlink.NewAttributeEncoder()
	if info != nil {
		ae.Bytes(inetDiagInfo, info)
	}
	if cgroup != 0 {
		ae.Uint64(inetDiagCgroupID, cgroup)
	}
	attrs, _ := ae.Encode()
	return append(b, attrs...)
}

func tcpInfo(n int) []byte {
	b := make([]byte, n)
	b[0] = 1
	ne := binary.NativeEndian
	ne.PutUint32(b[offUnacked:], 4)
	ne.PutUint32(b[offRTT:], 1500)
	ne.PutUint32(b[offTotalRetrans:], 2199)
	if n >= offNotsentBytes+4 {
		ne.PutUint32(b[offSegsIn:], 12)
		ne.PutUint32(b[offNotsentBytes:], 100)
	}
	if n >= offDeliveryRate+8 {
		ne.PutUint64(b[offDeliveryRate:], 125_000_000)
	}
	if n >= offSndbufLimited+8 {
		ne.PutUint64(b[offBusyTime:], 1_000_000)
		ne.PutUint64(b[offRwndLimited:], 250_000)
		ne.PutUint64(b[offSndbufLimited:], 5_000)
	}
	if n >= offDSACKDups+4 {
		ne.PutUint32(b[offDSACKDups:], 7)
	}
	if n >= offSndWnd+4 {
		ne.PutUint32(b[offSndWnd:], 65535)
	}
	if n >= offRcvWnd+4 {
		ne.PutUint32(b[offRcvWnd:], 4096)
	}
	if n >= offBytesReceived+8 {
		ne.PutUint64(b[offBytesAcked:], 1<<30)
		ne.PutUint64(b[offBytesReceived:], 37)
	}
	if n >= offDataSegsOut+4 {
		ne.PutUint32(b[offMinRTT:], 900)
		ne.PutUint32(b[offDataSegsIn:], 10)
		ne.PutUint32(b[offDataSegsOut:], 800000)
	}
	if n >= offTotalRTO+2 {
		ne.PutUint16(b[offTotalRTO:], 3)
	}
	return b
}

func TestParseMessage(t *testing.T) {
	v4src, v4dst := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:5201")
	v6src, v6dst := netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[::ffff:10.0.0.2]:443")
	k49 := TCPInfo{State: 1, Unacked: 4, RTT: 1500, MinRTT: 900, TotalRetrans: 2199, BytesAcked: 1 << 30, BytesReceived: 37,
		SegsIn: 12, NotsentBytes: 100, DataSegsIn: 10, DataSegsOut: 800000, DeliveryRate: 125_000_000}
	k54 := k49
	k54.BusyTime, k54.RwndLimited, k54.SndbufLimited, k54.HasChrono = 1_000_000, 250_000, 5_000, true
	k54.DSACKDups, k54.SndWnd, k54.HasSndWnd = 7, 65535, true
	full := k54
	full.RcvWnd, full.HasRcvWnd, full.TotalRTO, full.HasTotalRTO = 4096, true, 3, true
	for _, tc := range []struct {
		name    string
		msg     []byte
		want    Socket
		wantErr string
	}{
		{name: "v4 full tcp_info (6.18: 248 bytes)", msg: diagMsg(unix.AF_INET, 1, v4src, v4dst, 0x1_0000_0002, 77, tcpInfo(248), 9),
			want: Socket{Family: unix.AF_INET, State: 1, Local: v4src, Remote: v4dst, Cookie: 0x1_0000_0002, Inode: 77, CgroupID: 9, HasInfo: true,
				Info: full}},
		{name: "5.4 tcp_info (232 bytes): no rcv_wnd", msg: diagMsg(unix.AF_INET, 1, v4src, v4dst, 3, 0, tcpInfo(232), 0),
			want: Socket{Family: unix.AF_INET, State: 1, Local: v4src, Remote: v4dst, Cookie: 3, HasInfo: true, Info: k54}},
		{name: "4.9 tcp_info (168 bytes): delivery rate, no chrono", msg: diagMsg(unix.AF_INET, 1, v4src, v4dst, 3, 0, tcpInfo(168), 0),
			want: Socket{Family: unix.AF_INET, State: 1, Local: v4src, Remote: v4dst, Cookie: 3, HasInfo: true, Info: k49}},
		{name: "v6 mapped, old kernel tcp_info (104 bytes)", msg: diagMsg(unix.AF_INET6, 2, v6src, v6dst, 5, 0, tcpInfo(104), 0),
			want: Socket{Family: unix.AF_INET6, State: 2, Local: v6src, Remote: netip.MustParseAddrPort("10.0.0.2:443"), Cookie: 5, HasInfo: true,
				Info: TCPInfo{State: 1, Unacked: 4, RTT: 1500, TotalRetrans: 2199}}},
		{name: "no tcp_info", msg: diagMsg(unix.AF_INET, 10, v4src, netip.AddrPortFrom(netip.IPv4Unspecified(), 0), 1, 1, nil, 0),
			want: Socket{Family: unix.AF_INET, State: 10, Local: v4src, Remote: netip.AddrPortFrom(netip.IPv4Unspecified(), 0), Cookie: 1, Inode: 1}},
		{name: "short header", msg: make([]byte, 71), wantErr: "inet_diag_msg: 71 bytes, want at least 72"},
		{name: "bad family", msg: append([]byte{7}, make([]byte, 71)...), wantErr: "family 7 at byte 0"},
		{name: "short tcp_info", msg: diagMsg(unix.AF_INET, 1, v4src, v4dst, 1, 1, make([]byte, 50), 0), wantErr: "tcp_info: 50 bytes"},
		{name: "truncated attribute", msg: diagMsg(unix.AF_INET, 1, v4src, v4dst, 1, 1, tcpInfo(248), 0)[:100], wantErr: "inet_diag attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMessage(tc.msg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add(diagMsg(unix.AF_INET, 1, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), 1, 1, tcpInfo(248), 3))
	f.Add(diagMsg(unix.AF_INET6, 1, netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::1]:2"), 1, 1, tcpInfo(160), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseMessage(b)
		if err == nil && s.Family != unix.AF_INET && s.Family != unix.AF_INET6 {
			t.Fatalf("accepted family %d", s.Family)
		}
	})
}

func nlmsg(typ uint16, payload []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN, align4(unix.NLMSG_HDRLEN+len(payload)))
	binary.NativeEndian.PutUint32(b, uint32(unix.NLMSG_HDRLEN+len(payload)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	b = append(b, payload...)
	return b[:cap(b)]
}

func TestParseDestroyDatagram(t *testing.T) {
	a := diagMsg(unix.AF_INET, 7, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), 11, 1, tcpInfo(248), 0)
	b := diagMsg(unix.AF_INET, 7, netip.MustParseAddrPort("10.0.0.1:3"), netip.MustParseAddrPort("10.0.0.2:4"), 12, 1, tcpInfo(248), 0)
	dgram := append(append(append(nlmsg(sockDiagByFamily, a), nlmsg(unix.NLMSG_NOOP, nil)...), nlmsg(sockDiagByFamily, b)...), 1, 2, 3)
	var cookies []uint64
	ParseDestroyDatagram(dgram, func(s Socket) { cookies = append(cookies, s.Cookie) })
	if len(cookies) != 2 || cookies[0] != 11 || cookies[1] != 12 {
		t.Errorf("cookies %v, want [11 12]", cookies)
	}
	// A length running past the datagram stops the walk.
	bad := nlmsg(sockDiagByFamily, a)
	binary.NativeEndian.PutUint32(bad, uint32(len(bad)+100))
	ParseDestroyDatagram(bad, func(Socket) { t.Error("parsed a truncated message") })
}

func FuzzParseDestroyDatagram(f *testing.F) {
	f.Add(nlmsg(sockDiagByFamily, diagMsg(unix.AF_INET6, 1, netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::1]:2"), 1, 1, tcpInfo(248), 0)))
	f.Fuzz(func(t *testing.T, b []byte) { ParseDestroyDatagram(b, func(Socket) {}) })
}
