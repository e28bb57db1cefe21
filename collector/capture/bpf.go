package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// maxFilterPorts bounds the port list so every jump fits in 8 bits.
const maxFilterPorts = 32

const packetOutgoing = 4 // PACKET_OUTGOING in skb->pkt_type

// asm is a tiny classic-BPF assembler with forward labels.
type asm struct {
	ins    []bpf.Instruction
	fixups []fixup
	labels map[string]int
}

type fixup struct {
	at          int
	true, false string // label names; "" means fall through
}

func (a *asm) emit(i bpf.Instruction) { a.ins = append(a.ins, i) }

// jump emits a conditional jump to labels (empty label: next instruction).
func (a *asm) jump(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), true: ifTrue, false: ifFalse})
	a.ins = append(a.ins, bpf.JumpIf{Cond: cond, Val: val})
}

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	for _, f := range a.fixups {
		j := a.ins[f.at].(bpf.JumpIf)
		for _, x := range []struct {
			name string
			dst  *uint8
		}{{f.true, &j.SkipTrue}, {f.false, &j.SkipFalse}} {
			if x.name == "" {
				continue
			}
			to, ok := a.labels[x.name]
			if !ok {
				return nil, fmt.Errorf("bpf: undefined label %q", x.name)
			}
			skip := to - f.at - 1
			if skip < 0 || skip > 255 {
				return nil, fmt.Errorf("bpf: jump to %q out of range (%d)", x.name, skip)
			}
			*x.dst = uint8(skip)
		}
		a.ins[f.at] = j
	}
	return bpf.Assemble(a.ins)
}

// tunnelUDPPorts are the UDP ports of the tunnels tcpanalysis.Decode
// decodes (VXLAN, VXLAN as Linux/Flannel, Geneve, GRE-in-UDP).
var tunnelUDPPorts = []uint32{4789, 8472, 6081, 4754}

// buildFilter returns a socket filter that accepts TCP over IPv4 and IPv6
// (IPv6 without extension headers before TCP), optionally only segments
// whose source or destination port is in ports, truncated to snaplen bytes.
// It also accepts what may carry TCP in a tunnel (IP in IP, GRE, UDP to a
// tunnel port, MPLS, PPPoE, VLAN tags left in the frame); the port list is
// applied to those after decoding (ring.run).
// linkHdr is the link-header length (14 for Ethernet and Linux loopback, 0
// for raw-IP devices such as WireGuard or tun). dropOutgoing drops the
// PACKET_OUTGOING copy, used on loopback where every packet is seen twice.
func buildFilter(linkHdr uint32, ports []uint16, snaplen uint32, dropOutgoing bool) ([]bpf.RawInstruction, error) {
	if len(ports) > maxFilterPorts {
		return nil, fmt.Errorf("at most %d ports in the capture filter, got %d", maxFilterPorts, len(ports))
	}
	var a asm
	if dropOutgoing {
		a.emit(bpf.LoadExtension{Num: bpf.ExtType})
		a.jump(bpf.JumpEqual, packetOutgoing, "drop", "")
	}
	L := linkHdr
	if L >= 14 {
		a.emit(bpf.LoadAbsolute{Off: L - 2, Size: 2}) // EtherType
		a.jump(bpf.JumpEqual, 0x0800, "v4", "")
		a.jump(bpf.JumpEqual, 0x86dd, "v6", "")
		for _, et := range []uint32{0x8847, 0x8864, 0x8100, 0x88a8} { // MPLS, PPPoE, VLAN
			a.jump(bpf.JumpEqual, et, "accept", "")
		}
		a.emit(bpf.RetConstant{Val: 0})
	} else {
		a.emit(bpf.LoadAbsolute{Off: L, Size: 1})
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		a.jump(bpf.JumpEqual, 4, "v4", "")
		a.jump(bpf.JumpEqual, 6, "v6", "drop")
	}
	// IPv4: protocol TCP, not a non-first fragment.
	a.label("v4")
	a.emit(bpf.LoadAbsolute{Off: L + 9, Size: 1})
	a.jump(bpf.JumpNotEqual, 6, "tun4", "")
	if len(ports) == 0 {
		a.emit(bpf.RetConstant{Val: snaplen})
	} else {
		a.emit(bpf.LoadAbsolute{Off: L + 6, Size: 2})
		a.jump(bpf.JumpBitsSet, 0x1fff, "drop", "")
		a.emit(bpf.LoadMemShift{Off: L}) // X = IPv4 header length
		a.emit(bpf.LoadIndirect{Off: L, Size: 2})
		for _, p := range ports {
			a.jump(bpf.JumpEqual, uint32(p), "accept", "")
		}
		a.emit(bpf.LoadIndirect{Off: L + 2, Size: 2})
		for _, p := range ports {
			a.jump(bpf.JumpEqual, uint32(p), "accept", "")
		}
		a.emit(bpf.RetConstant{Val: 0})
	}
	// IPv6: next header TCP.
	a.label("v6")
	a.emit(bpf.LoadAbsolute{Off: L + 6, Size: 1})
	a.jump(bpf.JumpNotEqual, 6, "tun6", "")
	if len(ports) == 0 {
		a.emit(bpf.RetConstant{Val: snaplen})
	} else {
		a.emit(bpf.LoadAbsolute{Off: L + 40, Size: 2})
		for _, p := range ports {
			a.jump(bpf.JumpEqual, uint32(p), "accept", "")
		}
		a.emit(bpf.LoadAbsolute{Off: L + 42, Size: 2})
		for _, p := range ports {
			a.jump(bpf.JumpEqual, uint32(p), "accept", "")
		}
		a.emit(bpf.RetConstant{Val: 0})
	}
	// Tunnels over IPv4: IP in IP, GRE, UDP to a tunnel port (first
	// fragments only). A holds the protocol.
	a.label("tun4")
	for _, proto := range []uint32{4, 41, 47} {
		a.jump(bpf.JumpEqual, proto, "accept", "")
	}
	a.jump(bpf.JumpNotEqual, 17, "drop", "")
	a.emit(bpf.LoadAbsolute{Off: L + 6, Size: 2})
	a.jump(bpf.JumpBitsSet, 0x1fff, "drop", "")
	a.emit(bpf.LoadMemShift{Off: L})
	a.emit(bpf.LoadIndirect{Off: L + 2, Size: 2})
	for _, p := range tunnelUDPPorts {
		a.jump(bpf.JumpEqual, p, "accept", "")
	}
	a.emit(bpf.LoadIndirect{Off: L, Size: 2})
	for _, p := range tunnelUDPPorts {
		a.jump(bpf.JumpEqual, p, "accept", "")
	}
	a.emit(bpf.RetConstant{Val: 0})
	// Tunnels over IPv6 (no extension headers), likewise.
	a.label("tun6")
	for _, proto := range []uint32{4, 41, 47} {
		a.jump(bpf.JumpEqual, proto, "accept", "")
	}
	a.jump(bpf.JumpNotEqual, 17, "drop", "")
	a.emit(bpf.LoadAbsolute{Off: L + 42, Size: 2})
	for _, p := range tunnelUDPPorts {
		a.jump(bpf.JumpEqual, p, "accept", "")
	}
	a.emit(bpf.LoadAbsolute{Off: L + 40, Size: 2})
	for _, p := range tunnelUDPPorts {
		a.jump(bpf.JumpEqual, p, "accept", "")
	}
	a.emit(bpf.RetConstant{Val: 0})
	a.label("accept")
	a.emit(bpf.RetConstant{Val: snaplen})
	a.label("drop")
	a.emit(bpf.RetConstant{Val: 0})
	return a.assemble()
}
