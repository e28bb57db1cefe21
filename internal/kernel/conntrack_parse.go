package kernel

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// nlenc is netlink's host byte order (little endian on every platform Go
// netsight supports: amd64, arm64).
var nlenc = binary.LittleEndian

// ConntrackEntry is the part of a conntrack entry a per-state count uses.
type ConntrackEntry struct {
	Family uint8 // AF_INET or AF_INET6 (nfgenmsg family)
	Proto  uint8 // L4 protocol number of the original tuple
	// HasState is true when the entry carries a protocol state (TCP, SCTP,
	// DCCP); State is then the kernel's enum value for that protocol.
	HasState bool
	State    uint8
	Status   uint32 // IPS_* bits
}

// Conntrack status bits (linux/netfilter/nf_conntrack_common.h).
const (
	IPSSeenReply uint32 = 1 << 1
	IPSAssured   uint32 = 1 << 2
)

// Attribute types (linux/netfilter/nfnetlink_conntrack.h).
const (
	ctaTupleOrig = 1
	ctaStatus    = 3
	ctaProtoinfo = 4

	ctaTupleProto = 2
	ctaProtoNum   = 1

	ctaProtoinfoTCP   = 1
	ctaProtoinfoDCCP  = 2
	ctaProtoinfoSCTP  = 3
	ctaProtoinfoState = 1 // first attribute of each protoinfo nest is its state

	nlaTypeMask = 0x3fff
)

// ParseConntrackMessages decodes a buffer of netlink messages as received
// from a ctnetlink dump, calling fn for each entry. It returns done when an
// NLMSG_DONE was seen and the number of entries. Errors name the byte offset.
func ParseConntrackMessages(b []byte, fn func(*ConntrackEntry) bool) (done bool, n int, err error) {
	var e ConntrackEntry
	done, _, n, err = walkConntrackMessages(b, &e, fn)
	return done, n, err
}

func walkConntrackMessages(b []byte, e *ConntrackEntry, fn func(*ConntrackEntry) bool) (done, stop bool, n int, err error) {
	off := 0
	for off < len(b) {
		if len(b)-off < 16 {
			return false, false, n, fmt.Errorf("offset %d: truncated netlink header (%d bytes left)", off, len(b)-off)
		}
		l := int(nlenc.Uint32(b[off:]))
		typ := nlenc.Uint16(b[off+4:])
		if l < 16 || l > len(b)-off {
			return false, false, n, fmt.Errorf("offset %d: netlink message length %d out of range (%d bytes left)", off, l, len(b)-off)
		}
		msg := b[off+16 : off+l]
		switch typ {
		case 3: // NLMSG_DONE
			return true, false, n, nil
		case 2: // NLMSG_ERROR
			if len(msg) < 4 {
				return false, false, n, fmt.Errorf("offset %d: truncated netlink error", off)
			}
			code := int32(nlenc.Uint32(msg))
			if code != 0 {
				return false, false, n, fmt.Errorf("kernel error: %w", syscall.Errno(-code))
			}
		case 1: // NLMSG_NOOP
		default:
			if err := decodeConntrack(msg, off+16, e); err != nil {
				return false, false, n, err
			}
			n++
			if !fn(e) {
				return false, true, n, nil
			}
		}
		off += align4(l)
	}
	return false, false, n, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// decodeConntrack fills e from one ctnetlink message payload (nfgenmsg +
// attributes).
func decodeConntrack(p []byte, base int, e *ConntrackEntry) error {
	if len(p) < 4 {
		return fmt.Errorf("offset %d: truncated nfgenmsg", base)
	}
	*e = ConntrackEntry{Family: p[0]}
	return walkAttrs(p[4:], base+4, func(typ uint16, v []byte, at int) error {
		switch typ {
		case ctaTupleOrig:
			return walkAttrs(v, at, func(typ uint16, v []byte, at int) error {
				if typ != ctaTupleProto {
					return nil
				}
				return walkAttrs(v, at, func(typ uint16, v []byte, at int) error {
					if typ == ctaProtoNum {
						if len(v) < 1 {
							return fmt.Errorf("offset %d: empty CTA_PROTO_NUM", at)
						}
						e.Proto = v[0]
					}
					return nil
				})
			})
		case ctaStatus:
			if len(v) < 4 {
				return fmt.Errorf("offset %d: CTA_STATUS of %d bytes, want 4", at, len(v))
			}
			e.Status = binary.BigEndian.Uint32(v)
		case ctaProtoinfo:
			return walkAttrs(v, at, func(typ uint16, v []byte, at int) error {
				if typ != ctaProtoinfoTCP && typ != ctaProtoinfoSCTP && typ != ctaProtoinfoDCCP {
					return nil
				}
				return walkAttrs(v, at, func(typ uint16, v []byte, at int) error {
					if typ == ctaProtoinfoState && len(v) >= 1 {
						e.HasState, e.State = true, v[0]
					}
					return nil
				})
			})
		}
		return nil
	})
}

// walkAttrs iterates netlink attributes in b; base is b's offset in the
// message, for error messages.
func walkAttrs(b []byte, base int, fn func(typ uint16, v []byte, at int) error) error {
	off := 0
	for len(b)-off >= 4 {
		l := int(nlenc.Uint16(b[off:]))
		typ := nlenc.Uint16(b[off+2:]) & nlaTypeMask
		if l < 4 || l > len(b)-off {
			return fmt.Errorf("offset %d: attribute length %d out of range (%d bytes left)", base+off, l, len(b)-off)
		}
		if err := fn(typ, b[off+4:off+l], base+off+4); err != nil {
			return err
		}
		off += align4(l)
	}
	return nil
}
