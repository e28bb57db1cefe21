package kernel

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// inetDiagMsgLen is sizeof(struct inet_diag_msg).
const inetDiagMsgLen = 72

// ParseInetDiagMessages decodes a buffer of netlink messages holding
// inet_diag_msg replies, calling fn for each socket (sk is reused). It
// returns done at NLMSG_DONE. Errors name the byte offset.
func ParseInetDiagMessages(b []byte, sk *InetSocket, fn func(*InetSocket)) (done bool, err error) {
	off := 0
	for off < len(b) {
		if len(b)-off < 16 {
			return false, fmt.Errorf("offset %d: truncated netlink header (%d bytes left)", off, len(b)-off)
		}
		l := int(nlenc.Uint32(b[off:]))
		typ := nlenc.Uint16(b[off+4:])
		if l < 16 || l > len(b)-off {
			return false, fmt.Errorf("offset %d: netlink message length %d out of range (%d bytes left)", off, l, len(b)-off)
		}
		msg := b[off+16 : off+l]
		switch typ {
		case 3: // NLMSG_DONE
			return true, nil
		case 2: // NLMSG_ERROR
			if len(msg) < 4 {
				return false, fmt.Errorf("offset %d: truncated netlink error", off)
			}
			if code := int32(nlenc.Uint32(msg)); code != 0 {
				return false, fmt.Errorf("kernel error: %w", syscall.Errno(-code))
			}
		case 1:
		default:
			if len(msg) < inetDiagMsgLen {
				return false, fmt.Errorf("offset %d: inet_diag_msg of %d bytes, want %d", off+16, len(msg), inetDiagMsgLen)
			}
			sk.Family = msg[0]
			sk.State = msg[1]
			// id starts at 4: sport(be16) dport(be16) src[16] dst[16] if cookie.
			sk.SPort = binary.BigEndian.Uint16(msg[4:])
			sk.DPort = binary.BigEndian.Uint16(msg[6:])
			copy(sk.Dst[:], msg[24:40])
			fn(sk)
		}
		off += align4(l)
	}
	return false, nil
}
