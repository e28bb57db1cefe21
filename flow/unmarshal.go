package flow

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// UnmarshalJSON reads the API shape MarshalJSON writes (GET /api/v1/flows),
// so clients of a remote agent (`netsight top --agent`) get Records back.
// HostNetNS and DurationSeconds are derived fields and are not read.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	local, err := addrPort(j.LocalAddr, j.LocalPort)
	if err != nil {
		return fmt.Errorf("local_addr: %w", err)
	}
	remote, err := addrPort(j.RemoteAddr, j.RemotePort)
	if err != nil {
		return fmt.Errorf("remote_addr: %w", err)
	}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	*r = Record{
		ID: j.ID, Local: local, Remote: remote, Direction: j.Direction,
		PID: j.PID, Comm: j.Comm, CgroupID: j.CgroupID, NetNS: j.NetNS,
		State: j.State, Closed: j.Closed, Start: j.Start, End: j.End,
		Retransmits: j.Retransmissions, SynRetransmits: j.SynRetransmissions, RTOs: j.RTOs,
		BytesSent: j.BytesSent, BytesReceived: j.BytesReceived, SegsOut: j.SegsOut, SegsIn: j.SegsIn,
		SRTT: sec(j.SRTTSeconds), MinRTT: sec(j.MinRTTSeconds), MaxRTT: sec(j.MaxRTTSeconds),
		RSTSent: j.RSTSent, RSTReceived: j.RSTReceived,
		ConnectLatency: sec(j.ConnectLatency), ConnectFailed: j.ConnectFailed, ConnectResult: j.ConnectResult,
		BusyTime: sec(j.BusySeconds), RwndLimited: sec(j.RwndLimitedSeconds), SndbufLimited: sec(j.SndbufLimitedSecs),
		DeliveryRate: j.DeliveryRateBytes, DSACKDups: j.DSACKDups,
		SndWnd: j.SndWndBytes, RcvWnd: j.RcvWndBytes, RecvQueue: j.RecvQueueBytes,
		ZeroWindowSent: j.ZeroWindowSent, ZeroWindowReceived: j.ZeroWindowReceived,
	}
	return nil
}

// UnmarshalText parses a Direction's JSON string.
func (d *Direction) UnmarshalText(b []byte) error {
	v, err := ParseDirection(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func addrPort(addr string, port uint16) (netip.AddrPort, error) {
	if addr == "" {
		return netip.AddrPort{}, nil
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, port), nil
}
