// Package pcapfile reads pcap and pcapng capture files, optionally gzip
// compressed, one packet at a time without allocating per packet.
//
// It exists beside gopacket's pcapgo (which the tests use as the reference
// for differential testing) because `netsight analyze` must name the byte
// offset of a malformed or truncated record, and pcapgo reads through an
// internal bufio.Reader whose position is not observable. Every error this
// package returns for bad input is a *FormatError carrying that offset.
package pcapfile

import (
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/netsight/netsight/tcpanalysis"
)

// MaxRecordLen bounds one record (pcap) or block (pcapng); larger ones are
// reported as malformed rather than allocated.
const MaxRecordLen = 16 << 20

const bufSize = 1 << 20

// Format of a capture file.
type Format int

// Formats.
const (
	FormatPcap Format = iota + 1
	FormatPcapNG
)

func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapNG:
		return "pcapng"
	}
	return "unknown"
}

// CaptureInfo describes one packet record.
type CaptureInfo struct {
	// TimestampNanos is the capture time in Unix nanoseconds.
	TimestampNanos int64
	// CaptureLen is the number of bytes in the record, WireLen the length
	// of the packet on the wire.
	CaptureLen, WireLen int
	// LinkType of this packet (pcapng files may mix interfaces).
	LinkType tcpanalysis.LinkType
	// Interface is the pcapng interface index (0 for pcap).
	Interface int
	// Offset is the byte offset of the record in the (uncompressed) stream.
	Offset int64
}

// FormatError reports malformed or truncated input at a byte offset of the
// (uncompressed) stream.
type FormatError struct {
	Offset     int64
	Msg        string
	Compressed bool
	// Truncated is true when the input ended in the middle of a record.
	Truncated bool
}

func (e *FormatError) Error() string {
	where := "byte offset"
	if e.Compressed {
		where = "uncompressed byte offset"
	}
	return fmt.Sprintf("%s %d: %s", where, e.Offset, e.Msg)
}

// Reader reads packets from a pcap or pcapng stream.
type Reader struct {
	br     *rbuf
	gz     *gzip.Reader
	off    int64
	format Format
	err    error

	// pcap
	order    binary.ByteOrder
	bigEnd   bool
	nanoRes  bool
	linkType tcpanalysis.LinkType

	// pcapng
	ifaces []ngIface
	// Stats from pcapng Interface Statistics Blocks: packets dropped by
	// the capturing interface, when the file records them.
	ifDrops uint64
}

type ngIface struct {
	linkType tcpanalysis.LinkType
	snaplen  uint32
	units    uint64 // timestamp units per second
	offset   int64  // seconds added to timestamps
}

// NewReader detects the format (gzip-compressed or not) and reads the file
// header. A *FormatError names what is wrong and where.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{br: newRbuf(r)}
	magic, err := rd.br.Peek(4)
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, gerr := gzip.NewReader(rd.br)
		if gerr != nil {
			return nil, &FormatError{Offset: 0, Msg: "gzip header: " + gerr.Error()}
		}
		rd.gz = gz
		rd.br = newRbuf(gz)
		magic, err = rd.br.Peek(4)
	}
	if len(magic) < 4 {
		if err == nil || err == io.EOF {
			if len(magic) == 0 {
				return nil, rd.ferr(0, true, "empty file: no pcap or pcapng header")
			}
			return nil, rd.ferr(0, true, "file too short for a pcap or pcapng header")
		}
		return nil, rd.readErr(0, err)
	}
	switch {
	case binary.LittleEndian.Uint32(magic) == 0x0A0D0D0A:
		rd.format = FormatPcapNG
		if err := rd.ngFirstSection(); err != nil {
			return nil, err
		}
	default:
		rd.format = FormatPcap
		if err := rd.pcapHeader(); err != nil {
			return nil, err
		}
	}
	return rd, nil
}

// Format returns the detected file format.
func (r *Reader) Format() Format { return r.format }

// Compressed reports whether the file is gzip-compressed.
func (r *Reader) Compressed() bool { return r.gz != nil }

// Offset is the number of (uncompressed) bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// InterfaceDrops returns the sum of packets dropped as recorded in pcapng
// Interface Statistics Blocks read so far (0 for pcap).
func (r *Reader) InterfaceDrops() uint64 { return r.ifDrops }

// Next returns the next packet. The data is valid until the next call. At
// the clean end of the input it returns io.EOF; malformed or truncated
// input returns a *FormatError, and every later call returns it again.
func (r *Reader) Next() ([]byte, CaptureInfo, error) {
	if r.err != nil {
		return nil, CaptureInfo{}, r.err
	}
	var (
		data []byte
		ci   CaptureInfo
		err  error
	)
	if r.format == FormatPcap {
		data, ci, err = r.pcapNext()
	} else {
		data, ci, err = r.ngNext()
	}
	if err != nil {
		r.err = err
	}
	return data, ci, err
}

func (r *Reader) ferr(off int64, truncated bool, format string, args ...any) *FormatError {
	return &FormatError{Offset: off, Msg: fmt.Sprintf(format, args...), Compressed: r.gz != nil, Truncated: truncated}
}

// readErr turns an I/O error at off into an error: a corrupt gzip stream is
// a FormatError, anything else (disk errors) is returned wrapped.
func (r *Reader) readErr(off int64, err error) error {
	var corrupt flate.CorruptInputError
	if r.gz != nil && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &corrupt)) {
		return r.ferr(off, true, "corrupt or truncated gzip stream: %v", err)
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("read at byte offset %d: %w", off, err)
}

// take consumes and returns the next n bytes (valid until the next call).
// start is the offset of the structure being read, what names it for the
// truncation message.
func (r *Reader) take(n int, start int64, what string) ([]byte, error) {
	b, err := r.br.Peek(n)
	if len(b) == n {
		r.br.Discard(n)
		r.off += int64(n)
		return b, nil
	}
	if err == io.EOF || err == nil {
		return nil, r.ferr(start, true, "truncated %s: needs %d bytes from byte offset %d, file ends at byte %d",
			what, n, r.off, r.off+int64(len(b)))
	}
	if r.gz != nil {
		return nil, r.readErr(start, err)
	}
	return nil, r.readErr(r.off+int64(len(b)), err)
}

// ---- pcap ----

func (r *Reader) pcapHeader() error {
	h, err := r.take(24, 0, "pcap file header")
	if err != nil {
		return err
	}
	switch binary.LittleEndian.Uint32(h[0:4]) {
	case 0xa1b2c3d4:
		r.order = binary.LittleEndian
	case 0xd4c3b2a1:
		r.order = binary.BigEndian
	case 0xa1b23c4d:
		r.order, r.nanoRes = binary.LittleEndian, true
	case 0x4d3cb2a1:
		r.order, r.nanoRes = binary.BigEndian, true
	default:
		return r.ferr(0, false, "not a pcap or pcapng file: unknown magic number 0x%08x", binary.BigEndian.Uint32(h[0:4]))
	}
	r.bigEnd = r.order == binary.BigEndian
	if major := r.order.Uint16(h[4:6]); major != 2 {
		return r.ferr(4, false, "unsupported pcap major version %d (want 2)", major)
	}
	r.linkType = tcpanalysis.LinkType(r.order.Uint32(h[20:24]) & 0xffff)
	return nil
}

func (r *Reader) pcapNext() ([]byte, CaptureInfo, error) {
	start := r.off
	// Fast path: the whole record is buffered and valid.
	if x := r.br; x.w-x.r >= 16 {
		h := x.b[x.r : x.r+16 : x.r+16]
		var sec, frac, capLen, wireLen uint32
		if r.bigEnd {
			sec, frac = binary.BigEndian.Uint32(h[0:4]), binary.BigEndian.Uint32(h[4:8])
			capLen, wireLen = binary.BigEndian.Uint32(h[8:12]), binary.BigEndian.Uint32(h[12:16])
		} else {
			sec, frac = binary.LittleEndian.Uint32(h[0:4]), binary.LittleEndian.Uint32(h[4:8])
			capLen, wireLen = binary.LittleEndian.Uint32(h[8:12]), binary.LittleEndian.Uint32(h[12:16])
		}
		limit, mul := uint32(1e6), int64(1000)
		if r.nanoRes {
			limit, mul = 1e9, 1
		}
		if capLen <= MaxRecordLen && frac < limit && x.w-x.r >= 16+int(capLen) {
			data := x.b[x.r+16 : x.r+16+int(capLen)]
			x.r += 16 + int(capLen)
			r.off += 16 + int64(capLen)
			if wireLen < capLen {
				wireLen = capLen
			}
			return data, CaptureInfo{
				TimestampNanos: int64(sec)*1e9 + int64(frac)*mul,
				CaptureLen:     int(capLen),
				WireLen:        int(wireLen),
				LinkType:       r.linkType,
				Offset:         start,
			}, nil
		}
	}
	if hb, err := r.br.Peek(16); len(hb) == 0 && err == io.EOF {
		return nil, CaptureInfo{}, io.EOF // clean end between records
	}
	h, err := r.take(16, start, "pcap record header")
	if err != nil {
		return nil, CaptureInfo{}, err
	}
	sec := int64(r.order.Uint32(h[0:4]))
	frac := int64(r.order.Uint32(h[4:8]))
	capLen := r.order.Uint32(h[8:12])
	wireLen := r.order.Uint32(h[12:16])
	if capLen > MaxRecordLen {
		return nil, CaptureInfo{}, r.ferr(start, false, "record captured length %d exceeds the %d-byte limit", capLen, MaxRecordLen)
	}
	if wireLen < capLen {
		wireLen = capLen // some writers store 0; the captured bytes are a lower bound
	}
	if !r.nanoRes {
		if frac >= 1e6 {
			return nil, CaptureInfo{}, r.ferr(start+4, false, "record timestamp microseconds %d out of range", frac)
		}
		frac *= 1000
	} else if frac >= 1e9 {
		return nil, CaptureInfo{}, r.ferr(start+4, false, "record timestamp nanoseconds %d out of range", frac)
	}
	data, err := r.take(int(capLen), start, "pcap packet data")
	if err != nil {
		return nil, CaptureInfo{}, err
	}
	return data, CaptureInfo{
		TimestampNanos: sec*1e9 + frac,
		CaptureLen:     int(capLen),
		WireLen:        int(wireLen),
		LinkType:       r.linkType,
		Offset:         start,
	}, nil
}

// ---- pcapng ----

const (
	ngSHB = 0x0A0D0D0A
	ngIDB = 0x00000001
	ngOPB = 0x00000002 // obsolete packet block
	ngSPB = 0x00000003
	ngISB = 0x00000005
	ngEPB = 0x00000006
)

func (r *Reader) ngFirstSection() error {
	start := r.off
	h, err := r.br.Peek(12)
	if len(h) < 12 {
		if err == nil || err == io.EOF {
			return r.ferr(start, true, "truncated pcapng section header block: file ends at byte %d", len(h))
		}
		return r.readErr(start, err)
	}
	if err := r.setOrder(h, start); err != nil {
		return err
	}
	_, body, err := r.ngBlock()
	if err != nil {
		return err
	}
	return r.ngSection(body, start)
}

func (r *Reader) setOrder(h []byte, start int64) error {
	switch binary.LittleEndian.Uint32(h[8:12]) {
	case 0x1A2B3C4D:
		r.order = binary.LittleEndian
	case 0x4D3C2B1A:
		r.order = binary.BigEndian
	default:
		return r.ferr(start+8, false, "pcapng section header: bad byte-order magic 0x%08x", binary.BigEndian.Uint32(h[8:12]))
	}
	return nil
}

func (r *Reader) ngSection(body []byte, start int64) error {
	if len(body) < 16 {
		return r.ferr(start, false, "pcapng section header block too short (%d bytes of body)", len(body))
	}
	if major := r.order.Uint16(body[4:6]); major != 1 {
		return r.ferr(start+12, false, "unsupported pcapng major version %d (want 1)", major)
	}
	r.ifaces = r.ifaces[:0]
	return nil
}

// ngBlock reads one whole block and returns its type and body (without the
// 8-byte head and the 4-byte trailing length).
func (r *Reader) ngBlock() (uint32, []byte, error) {
	start := r.off
	h, err := r.br.Peek(8)
	if len(h) < 8 {
		if len(h) == 0 && err == io.EOF {
			return 0, nil, io.EOF
		}
		if err == nil || err == io.EOF {
			return 0, nil, r.ferr(start, true, "truncated pcapng block header: file ends at byte %d", start+int64(len(h)))
		}
		return 0, nil, r.readErr(start, err)
	}
	typ := r.order.Uint32(h[0:4])
	if typ == ngSHB {
		// A new section may switch byte order.
		h12, _ := r.br.Peek(12)
		if len(h12) < 12 {
			return 0, nil, r.ferr(start, true, "truncated pcapng section header block: file ends at byte %d", start+int64(len(h12)))
		}
		if err := r.setOrder(h12, start); err != nil {
			return 0, nil, err
		}
	}
	total := r.order.Uint32(h[4:8])
	if total < 12 || total%4 != 0 || total > MaxRecordLen {
		return 0, nil, r.ferr(start+4, false, "pcapng block type 0x%08x: invalid block total length %d", typ, total)
	}
	b, err := r.take(int(total), start, fmt.Sprintf("pcapng block (type 0x%08x, %d bytes)", typ, total))
	if err != nil {
		return 0, nil, err
	}
	if trail := r.order.Uint32(b[total-4:]); trail != total {
		return 0, nil, r.ferr(start+int64(total)-4, false, "pcapng block type 0x%08x: trailing length %d does not match leading length %d", typ, trail, total)
	}
	return typ, b[8 : total-4], nil
}

func (r *Reader) ngNext() ([]byte, CaptureInfo, error) {
	for {
		start := r.off
		typ, body, err := r.ngBlock()
		if err != nil {
			return nil, CaptureInfo{}, err
		}
		switch typ {
		case ngSHB:
			if err := r.ngSection(body, start); err != nil {
				return nil, CaptureInfo{}, err
			}
		case ngIDB:
			if err := r.ngInterface(body, start); err != nil {
				return nil, CaptureInfo{}, err
			}
		case ngISB:
			r.ngStats(body)
		case ngEPB, ngOPB:
			if len(body) < 20 {
				return nil, CaptureInfo{}, r.ferr(start, false, "pcapng packet block too short (%d bytes of body)", len(body))
			}
			var ifIdx uint32
			if typ == ngEPB {
				ifIdx = r.order.Uint32(body[0:4])
			} else {
				ifIdx = uint32(r.order.Uint16(body[0:2]))
			}
			if int64(ifIdx) >= int64(len(r.ifaces)) {
				return nil, CaptureInfo{}, r.ferr(start+8, false, "pcapng packet block refers to interface %d, only %d defined", ifIdx, len(r.ifaces))
			}
			ifc := &r.ifaces[ifIdx]
			ts := uint64(r.order.Uint32(body[4:8]))<<32 | uint64(r.order.Uint32(body[8:12]))
			capLen := r.order.Uint32(body[12:16])
			wireLen := r.order.Uint32(body[16:20])
			if uint64(capLen) > uint64(len(body)-20) {
				return nil, CaptureInfo{}, r.ferr(start+20, false, "pcapng packet block: captured length %d exceeds the block (%d bytes)", capLen, len(body)-20)
			}
			if wireLen < capLen {
				wireLen = capLen
			}
			return body[20 : 20+capLen], CaptureInfo{
				TimestampNanos: ifc.nanos(ts),
				CaptureLen:     int(capLen),
				WireLen:        int(wireLen),
				LinkType:       ifc.linkType,
				Interface:      int(ifIdx),
				Offset:         start,
			}, nil
		case ngSPB:
			if len(body) < 4 {
				return nil, CaptureInfo{}, r.ferr(start, false, "pcapng simple packet block too short")
			}
			if len(r.ifaces) == 0 {
				return nil, CaptureInfo{}, r.ferr(start, false, "pcapng simple packet block before any interface description")
			}
			ifc := &r.ifaces[0]
			wireLen := r.order.Uint32(body[0:4])
			capLen := uint32(len(body) - 4)
			if wireLen < capLen {
				capLen = wireLen
			}
			if ifc.snaplen != 0 && capLen > ifc.snaplen {
				capLen = ifc.snaplen
			}
			return body[4 : 4+capLen], CaptureInfo{CaptureLen: int(capLen), WireLen: int(wireLen), LinkType: ifc.linkType, Offset: start}, nil
		default:
			// Name resolution, decryption secrets, custom blocks: skipped.
		}
	}
}

func (r *Reader) ngInterface(body []byte, start int64) error {
	if len(body) < 8 {
		return r.ferr(start, false, "pcapng interface description block too short (%d bytes of body)", len(body))
	}
	if len(r.ifaces) >= 65536 {
		return r.ferr(start, false, "pcapng file defines more than 65536 interfaces")
	}
	ifc := ngIface{
		linkType: tcpanalysis.LinkType(r.order.Uint16(body[0:2])),
		snaplen:  r.order.Uint32(body[4:8]),
		units:    1e6,
	}
	opts := body[8:]
	for len(opts) >= 4 {
		code := r.order.Uint16(opts[0:2])
		l := int(r.order.Uint16(opts[2:4]))
		if code == 0 {
			break
		}
		padded := (l + 3) &^ 3
		if 4+padded > len(opts) {
			return r.ferr(start, false, "pcapng interface option %d overruns its block", code)
		}
		v := opts[4 : 4+l]
		switch code {
		case 9: // if_tsresol
			if l >= 1 {
				res := v[0]
				var units uint64 = 1
				if res&0x80 == 0 {
					if res > 19 {
						return r.ferr(start, false, "pcapng if_tsresol 10^-%d out of range", res)
					}
					for i := byte(0); i < res; i++ {
						units *= 10
					}
				} else {
					e := res & 0x7f
					if e > 63 {
						return r.ferr(start, false, "pcapng if_tsresol 2^-%d out of range", e)
					}
					units = 1 << e
				}
				ifc.units = units
			}
		case 14: // if_tsoffset
			if l >= 8 {
				ifc.offset = int64(r.order.Uint64(v[0:8]))
			}
		}
		opts = opts[4+padded:]
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

func (r *Reader) ngStats(body []byte) {
	// Interface Statistics Block: interface id, timestamp, then options;
	// isb_ifdrop (code 5) counts packets the interface dropped.
	if len(body) < 12 {
		return
	}
	opts := body[12:]
	for len(opts) >= 4 {
		code := r.order.Uint16(opts[0:2])
		l := int(r.order.Uint16(opts[2:4]))
		padded := (l + 3) &^ 3
		if code == 0 || 4+padded > len(opts) {
			return
		}
		if code == 5 && l == 8 {
			r.ifDrops += r.order.Uint64(opts[4:12])
		}
		opts = opts[4+padded:]
	}
}

func (i *ngIface) nanos(ts uint64) int64 {
	sec := ts / i.units
	frac := ts % i.units
	var ns uint64
	if i.units <= 1e9 {
		ns = frac * (1e9 / i.units)
		if 1e9%i.units != 0 {
			ns = frac * 1e9 / i.units
		}
	} else {
		ns = frac / (i.units / 1e9)
	}
	return (int64(sec)+i.offset)*1e9 + int64(ns)
}

// rbuf is a minimal read buffer: Peek returns bytes in place (no copy
// beyond the read itself), the buffer grows only for records larger than
// it (bounded by MaxRecordLen + header).
type rbuf struct {
	src  io.Reader
	b    []byte
	r, w int
	err  error
}

func newRbuf(src io.Reader) *rbuf { return &rbuf{src: src, b: make([]byte, bufSize)} }

// Peek returns the next n bytes without consuming them; fewer only with
// the error that stopped the read (io.EOF at the end).
func (x *rbuf) Peek(n int) ([]byte, error) {
	if x.w-x.r >= n {
		return x.b[x.r : x.r+n], nil
	}
	if n > len(x.b) {
		nb := make([]byte, n)
		x.w = copy(nb, x.b[x.r:x.w])
		x.r = 0
		x.b = nb
	} else if len(x.b)-x.r < n {
		x.w = copy(x.b, x.b[x.r:x.w])
		x.r = 0
	}
	empty := 0
	for x.w-x.r < n {
		if x.err != nil {
			return x.b[x.r:x.w], x.err
		}
		m, err := x.src.Read(x.b[x.w:])
		x.w += m
		if err != nil {
			x.err = err
		}
		if m == 0 && err == nil {
			if empty++; empty > 100 {
				x.err = io.ErrNoProgress
			}
		}
	}
	return x.b[x.r : x.r+n], nil
}

// Discard consumes n bytes previously returned by Peek.
func (x *rbuf) Discard(n int) { x.r += n }

// Read implements io.Reader (for the gzip reader on top of the raw file).
func (x *rbuf) Read(p []byte) (int, error) {
	if x.r == x.w {
		if x.err != nil {
			return 0, x.err
		}
		if len(p) >= len(x.b) {
			return x.src.Read(p)
		}
		x.r, x.w = 0, 0
		m, err := x.src.Read(x.b)
		x.w = m
		if err != nil {
			x.err = err
		}
		if m == 0 {
			return 0, x.err
		}
	}
	n := copy(p, x.b[x.r:x.w])
	x.r += n
	return n, nil
}

// ReadByte implements io.ByteReader, which flate uses to avoid its own
// buffering.
func (x *rbuf) ReadByte() (byte, error) {
	if x.r == x.w {
		if _, err := x.Peek(1); x.r == x.w {
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
	}
	c := x.b[x.r]
	x.r++
	return c, nil
}
