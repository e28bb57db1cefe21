package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// SockIter walks the TCP and UDP socket tables with BPF socket iterators
// (iter/tcp, iter/udp; kernel >= 5.9, CAP_BPF+CAP_PERFMON). One pass per
// protocol covers both families, and the kernel writes a fixed 28-byte record
// per socket instead of building a sock_diag message, so counting is several
// times cheaper than sock_diag (which walks the global hash once per family).
// The iterator reports the network namespace of the thread that calls Each.
//
// The program is written with the asm package (no C toolchain): it copies
// skc_family, skc_state, skc_dport, skc_daddr and skc_v6_daddr, at offsets
// read from the kernel's BTF, with bpf_seq_write.
type SockIter struct {
	mu    sync.Mutex
	progs []*ebpf.Program
	links []*link.Iter
	buf   []byte
}

const iterRecLen = 28

// sockCommonOffsets are byte offsets inside struct sock_common.
type sockCommonOffsets struct {
	daddr, dport, family, state, v6daddr int16
	twSubstate                           int32 // in struct inet_timewait_sock
}

var (
	offsOnce sync.Once
	offs     sockCommonOffsets
	offsErr  error
)

func loadOffsets() (sockCommonOffsets, error) {
	offsOnce.Do(func() {
		spec, err := btf.LoadKernelSpec()
		if err != nil {
			offsErr = fmt.Errorf("kernel BTF: %w", err)
			return
		}
		var sc *btf.Struct
		if err := spec.TypeByName("sock_common", &sc); err != nil {
			offsErr = fmt.Errorf("kernel BTF: struct sock_common: %w", err)
			return
		}
		found := map[string]int16{}
		var walk func(ms []btf.Member, base btf.Bits)
		walk = func(ms []btf.Member, base btf.Bits) {
			for _, m := range ms {
				off := base + m.Offset
				if m.Name == "" {
					switch t := btf.UnderlyingType(m.Type).(type) {
					case *btf.Struct:
						walk(t.Members, off)
					case *btf.Union:
						walk(t.Members, off)
					}
					continue
				}
				found[m.Name] = int16(off / 8)
			}
		}
		walk(sc.Members, 0)
		for _, n := range []string{"skc_daddr", "skc_dport", "skc_family", "skc_state", "skc_v6_daddr"} {
			if _, ok := found[n]; !ok {
				offsErr = fmt.Errorf("kernel BTF: sock_common has no %s", n)
				return
			}
		}
		offs = sockCommonOffsets{found["skc_daddr"], found["skc_dport"], found["skc_family"], found["skc_state"], found["skc_v6_daddr"], 0}
		var tw *btf.Struct
		if err := spec.TypeByName("inet_timewait_sock", &tw); err != nil {
			offsErr = fmt.Errorf("kernel BTF: struct inet_timewait_sock: %w", err)
			return
		}
		clear(found)
		walk(tw.Members, 0)
		sub, ok := found["tw_substate"]
		if !ok {
			offsErr = errors.New("kernel BTF: inet_timewait_sock has no tw_substate")
			return
		}
		offs.twSubstate = int32(sub)
	})
	return offs, offsErr
}

func iterProgram(o sockCommonOffsets) asm.Instructions {
	// r1 = ctx: struct bpf_iter__{tcp,udp} { meta *; sock *; ... }
	ins := asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, 8, asm.DWord), // r6 = socket (may be NULL at the end)
		asm.JEq.Imm(asm.R6, 0, "out"),
		asm.LoadMem(asm.R7, asm.R1, 0, asm.DWord), // r7 = meta
		asm.LoadMem(asm.R7, asm.R7, 0, asm.DWord), // r7 = meta->seq
		asm.Mov.Imm(asm.R2, 0),
		asm.StoreMem(asm.RFP, -32, asm.R2, asm.DWord),
		asm.StoreMem(asm.RFP, -24, asm.R2, asm.DWord),
		asm.StoreMem(asm.RFP, -16, asm.R2, asm.DWord),
		asm.StoreMem(asm.RFP, -8, asm.R2, asm.DWord),
		asm.LoadMem(asm.R2, asm.R6, o.family, asm.Half),
		asm.StoreMem(asm.RFP, -32, asm.R2, asm.Half),
		asm.LoadMem(asm.R2, asm.R6, o.state, asm.Byte),
		asm.StoreMem(asm.RFP, -30, asm.R2, asm.Byte),
		asm.LoadMem(asm.R2, asm.R6, o.dport, asm.Half),
		asm.StoreMem(asm.RFP, -28, asm.R2, asm.Half),
		asm.LoadMem(asm.R2, asm.R6, o.daddr, asm.Word),
		asm.StoreMem(asm.RFP, -24, asm.R2, asm.Word),
	}
	for i := int16(0); i < 4; i++ {
		ins = append(ins,
			asm.LoadMem(asm.R2, asm.R6, o.v6daddr+4*i, asm.Word),
			asm.StoreMem(asm.RFP, -20+4*i, asm.R2, asm.Word))
	}
	// A time-wait socket reports its substate (FIN_WAIT2 or TIME_WAIT), as
	// inet_diag and ss do: bpf_probe_read_kernel(fp-30, 1, &tw->tw_substate).
	ins = append(ins,
		asm.LoadMem(asm.R2, asm.RFP, -30, asm.Byte),
		asm.JNE.Imm(asm.R2, 6 /* TCP_TIME_WAIT */, "write"),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -30),
		asm.Mov.Imm(asm.R2, 1),
		asm.Mov.Reg(asm.R3, asm.R6),
		asm.Add.Imm(asm.R3, o.twSubstate),
		asm.FnProbeReadKernel.Call(),
	)
	return append(ins,
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("write"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -32),
		asm.Mov.Imm(asm.R3, iterRecLen),
		asm.FnSeqWrite.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
}

// NewSockIter loads and attaches the iterators. It fails (wrapping
// ErrNoSockIter) on kernels or privileges that do not allow them; callers
// then use SockDiag.
func NewSockIter() (*SockIter, error) {
	// Name the missing capabilities, not the first symptom (an EPERM that
	// cilium/ebpf words as "MEMLOCK may be too low").
	if !HasCap(CapSysAdmin) {
		if err := RequireCaps(CapBPF, CapPerfmon); err != nil {
			return nil, fmt.Errorf("%w: needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): %w", ErrNoSockIter, err)
		}
	}
	o, err := loadOffsets()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoSockIter, err)
	}
	s := &SockIter{buf: make([]byte, 64<<10)}
	for _, target := range []string{"tcp", "udp"} {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "netsight_" + target, Type: ebpf.Tracing, AttachType: ebpf.AttachTraceIter,
			AttachTo: target, License: "GPL", Instructions: iterProgram(o),
		})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%w: load iter/%s: %w", ErrNoSockIter, target, err)
		}
		s.progs = append(s.progs, p)
		l, err := link.AttachIter(link.IterOptions{Program: p})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%w: attach iter/%s: %w", ErrNoSockIter, target, err)
		}
		s.links = append(s.links, l)
	}
	return s, nil
}

// ErrNoSockIter means BPF socket iterators are not usable here.
var ErrNoSockIter = errors.New("bpf socket iterators unavailable")

// Each calls fn for every TCP socket (proto IPPROTO_TCP, listening, request
// and time-wait sockets included) and every UDP socket of the calling
// thread's network namespace. sk.SPort is not filled.
func (s *SockIter) Each(ctx context.Context, fn func(proto uint8, sk *InetSocket)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sk InetSocket
	for i, l := range s.links {
		proto := uint8(unix.IPPROTO_TCP)
		if i == 1 {
			proto = unix.IPPROTO_UDP
		}
		r, err := l.Open() // binds the iterator to this thread's netns
		if err != nil {
			return fmt.Errorf("open socket iterator: %w", err)
		}
		err = s.read(ctx, r, proto, &sk, fn)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *SockIter) read(ctx context.Context, r io.Reader, proto uint8, sk *InetSocket, fn func(uint8, *InetSocket)) error {
	have := 0
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("socket iterator: %w", err)
		}
		n, err := r.Read(s.buf[have:])
		have += n
		recs := have / iterRecLen
		for k := 0; k < recs; k++ {
			decodeIterRecord(s.buf[k*iterRecLen:], sk)
			fn(proto, sk)
		}
		rest := have - recs*iterRecLen
		copy(s.buf, s.buf[recs*iterRecLen:have])
		have = rest
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			if have != 0 {
				return fmt.Errorf("socket iterator: %d trailing bytes", have)
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("read socket iterator: %w", err)
		}
	}
}

// decodeIterRecord decodes one record written by iterProgram.
func decodeIterRecord(b []byte, sk *InetSocket) {
	sk.Family = uint8(nlenc.Uint16(b[0:]))
	sk.State = b[2]
	sk.DPort = uint16(b[4])<<8 | uint16(b[5]) // skc_dport is big endian
	sk.SPort = 0
	if sk.Family == unix.AF_INET {
		clear(sk.Dst[:])
		copy(sk.Dst[:4], b[8:12])
	} else {
		copy(sk.Dst[:], b[12:28])
	}
}

// Close detaches and unloads the iterators.
func (s *SockIter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		l.Close()
	}
	for _, p := range s.progs {
		p.Close()
	}
	s.links, s.progs = nil, nil
	return nil
}
