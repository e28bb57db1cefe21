// Package hostcheck answers "what can netsight do on this host?": kernel,
// BTF, capabilities, eBPF, conntrack, nftables, AF_PACKET, ICMP sockets and
// which interfaces expose cloud NIC allowance counters. `netsight check`
// prints it; every probe is read-only and sends no traffic.
package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/safchain/ethtool"
	"golang.org/x/sys/unix"

	"github.com/netsight/netsight/internal/kernel"
)

// Verdict of one check.
type Verdict string

// Verdicts: ok (works), warn (works degraded or optional feature missing),
// fail (the feature will not work; the agent still runs without it).
const (
	OK   Verdict = "ok"
	Warn Verdict = "warn"
	Fail Verdict = "fail"
)

// Result is one line of the report.
type Result struct {
	Check   string  `json:"check"`
	Verdict Verdict `json:"verdict"`
	Detail  string  `json:"detail"`
	// Affects names the netsight features that depend on this check.
	Affects string `json:"affects,omitempty"`
}

// Options point the checks at the host (or fixtures).
type Options struct {
	ProcRoot   string // default /proc (config paths.procfs)
	SysRoot    string // default /sys (paths.sysfs)
	CgroupRoot string // default /sys/fs/cgroup (paths.cgroupfs)
}

// Report is the whole answer.
type Report struct {
	Results []Result `json:"results"`
	// CanRun is false only when the agent cannot start at all.
	CanRun bool `json:"can_run"`
}

// Run performs every check.
func Run(ctx context.Context, o Options) Report {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	var r Report
	add := func(res Result) { r.Results = append(r.Results, res) }
	procOK := checkProc(o, add)
	checkKernel(add)
	caps := checkCaps(o, add)
	checkBTF(o, add)
	checkEBPF(caps, add)
	checkCgroup2(o, add)
	checkConntrack(o, add)
	checkNftables(add)
	checkAFPacket(add)
	checkICMP(o, add)
	checkInterfaces(ctx, add)
	r.CanRun = procOK
	return r
}

func checkProc(o Options, add func(Result)) bool {
	if _, err := os.Stat(o.ProcRoot + "/net/tcp"); err != nil {
		add(Result{"procfs", Fail, fmt.Sprintf("%s/net not readable: %v", o.ProcRoot, err), "everything"})
		return false
	}
	add(Result{"procfs", OK, o.ProcRoot + " mounted", ""})
	return true
}

func checkKernel(add func(Result)) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		add(Result{"kernel", Warn, "uname: " + err.Error(), ""})
		return
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var maj, min int
	_, _ = fmt.Sscanf(rel, "%d.%d", &maj, &min)
	switch {
	case maj > 5 || (maj == 5 && min >= 15):
		add(Result{"kernel", OK, rel, ""})
	case maj == 5 || (maj == 4 && min >= 18):
		add(Result{"kernel", Warn, rel + " (eBPF flows need 5.15+; sock_diag fallback works)", "flows"})
	default:
		add(Result{"kernel", Warn, rel + " (too old for eBPF flows; sock_diag fallback works)", "flows"})
	}
}

func checkCaps(o Options, add func(Result)) uint64 {
	caps, err := kernel.EffectiveCaps(o.ProcRoot)
	if err != nil {
		add(Result{"capabilities", Warn, err.Error(), ""})
		return 0
	}
	need := []struct {
		c       kernel.Capability
		affects string
	}{
		{kernel.CapNetAdmin, "conntrack dump, nftables counters, ethtool stats, sock_diag of other users"},
		{kernel.CapNetRaw, "live capture (AF_PACKET), raw ICMP probes"},
		{kernel.CapBPF, "eBPF flows"},
		{kernel.CapPerfmon, "eBPF flows (tracepoints)"},
		{kernel.CapSysAdmin, "eBPF on kernels without CAP_BPF, attaching to the cgroup root"},
	}
	var held, missing []string
	var affected []string
	for _, n := range need {
		if caps&(1<<uint(n.c)) != 0 {
			held = append(held, n.c.String())
		} else {
			missing = append(missing, n.c.String())
			affected = append(affected, n.affects)
		}
	}
	if len(missing) == 0 {
		add(Result{"capabilities", OK, "held: " + strings.Join(held, " "), ""})
	} else {
		add(Result{"capabilities", Warn, fmt.Sprintf("missing: %s (held: %s)", strings.Join(missing, " "), strings.Join(held, " ")),
			strings.Join(affected, "; ")})
	}
	return caps
}

func checkBTF(o Options, add func(Result)) {
	if _, err := os.Stat(o.SysRoot + "/kernel/btf/vmlinux"); err != nil {
		add(Result{"btf", Fail, "no " + o.SysRoot + "/kernel/btf/vmlinux: eBPF CO-RE cannot load", "flows (falls back to sock_diag)"})
		return
	}
	add(Result{"btf", OK, o.SysRoot + "/kernel/btf/vmlinux present", ""})
}

func checkEBPF(caps uint64, add func(Result)) {
	var problems, notes []string
	if err := kernel.EBPFFlowSupport(); err != nil {
		problems = append(problems, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if err := features.HaveProgramType(ebpf.TracePoint); err != nil {
		notes = append(notes, "tracepoint programs: "+err.Error())
	}
	if err := features.HaveProgramType(ebpf.Tracing); err != nil {
		notes = append(notes, "fentry/tracing programs unavailable (not needed)")
	}
	if len(problems) > 0 {
		if caps&(1<<uint(kernel.CapBPF)) == 0 && caps&(1<<uint(kernel.CapSysAdmin)) == 0 {
			problems = append(problems, "needs CAP_BPF (or CAP_SYS_ADMIN)")
		}
		add(Result{"ebpf", Fail, strings.Join(append(problems, notes...), "; "), "flows (falls back to sock_diag)"})
		return
	}
	detail := "sock_ops programs and memory-mapped arrays load"
	if len(notes) > 0 {
		detail += "; " + strings.Join(notes, "; ")
	}
	add(Result{"ebpf", OK, detail, ""})
}

func checkCgroup2(o Options, add func(Result)) {
	p, err := kernel.Cgroup2Root(kernel.Paths{ProcFS: o.ProcRoot, SysFS: o.SysRoot, CgroupFS: o.CgroupRoot})
	if err != nil {
		add(Result{"cgroup2", Fail, err.Error(), "eBPF flows (sock_ops attaches to the cgroup v2 root)"})
		return
	}
	add(Result{"cgroup2", OK, "mounted at " + p, ""})
}

func checkConntrack(o Options, add func(Result)) {
	ct := kernel.ConntrackProc{Root: o.ProcRoot}
	cnt, err1 := ct.Count()
	max, err2 := ct.Max()
	if err1 != nil || err2 != nil {
		add(Result{"nf_conntrack", Warn, "nf_conntrack not loaded (no " + o.ProcRoot + "/sys/net/netfilter/nf_conntrack_count)", "conntrack collector"})
		return
	}
	detail := fmt.Sprintf("%d of %d entries", cnt, max)
	acct, _ := os.ReadFile(o.ProcRoot + "/sys/net/netfilter/nf_conntrack_acct")
	if strings.TrimSpace(string(acct)) != "1" {
		detail += "; nf_conntrack_acct=0 (no per-entry bytes)"
	}
	add(Result{"nf_conntrack", OK, detail, ""})
}

func checkNftables(add func(Result)) {
	if err := kernel.NftablesUsable(); err != nil {
		add(Result{"nftables", Warn, "cannot list tables: " + err.Error() + " (needs CAP_NET_ADMIN)", "nftables ct-state counters (opt-in)"})
		return
	}
	add(Result{"nftables", OK, "netlink usable (netsight changes no firewall unless collectors.nftables is enabled)", ""})
}

func checkAFPacket(add func(Result)) {
	if err := kernel.AFPacketAvailable(); err != nil {
		add(Result{"af_packet", Fail, err.Error() + " (needs CAP_NET_RAW)", "live capture"})
		return
	}
	add(Result{"af_packet", OK, "raw packet sockets open", ""})
}

func checkICMP(o Options, add func(Result)) {
	rng, _ := os.ReadFile(o.ProcRoot + "/sys/net/ipv4/ping_group_range")
	dgram := kernel.ICMPSocket(unix.SOCK_DGRAM) == nil
	raw := kernel.ICMPSocket(unix.SOCK_RAW) == nil
	r := strings.Join(strings.Fields(string(rng)), " ")
	switch {
	case dgram:
		add(Result{"icmp", OK, "unprivileged ICMP datagram sockets allowed (ping_group_range " + r + ")", ""})
	case raw:
		add(Result{"icmp", OK, "raw ICMP sockets (datagram sockets denied: ping_group_range " + r + ")", ""})
	default:
		add(Result{"icmp", Fail, "neither datagram (ping_group_range " + r + ") nor raw ICMP sockets (CAP_NET_RAW)", "ICMP probes"})
	}
}

func checkInterfaces(_ context.Context, add func(Result)) {
	ifs, err := net.Interfaces()
	if err != nil {
		add(Result{"interfaces", Warn, err.Error(), ""})
		return
	}
	et, err := ethtool.NewEthtool()
	if err != nil {
		add(Result{"interfaces", Warn, fmt.Sprintf("%d interfaces; ethtool ioctl unavailable: %v", len(ifs), err), "nic collector"})
		return
	}
	defer et.Close()
	for _, ifc := range ifs {
		driver, derr := et.DriverName(ifc.Name)
		stats, serr := et.Stats(ifc.Name)
		state := "down"
		if ifc.Flags&net.FlagUp != 0 {
			state = "up"
		}
		switch {
		case derr != nil && errors.Is(derr, unix.EOPNOTSUPP):
			add(Result{"interface " + ifc.Name, OK, state + ", no ethtool driver info", ""})
		case serr != nil:
			add(Result{"interface " + ifc.Name, OK, fmt.Sprintf("%s, driver %s, no ethtool statistics", state, driver), ""})
		default:
			_, ena := stats["conntrack_allowance_available"]
			detail := fmt.Sprintf("%s, driver %s, %d ethtool statistics", state, driver, len(stats))
			if ena {
				detail += fmt.Sprintf(", ENA allowance counters present (conntrack_allowance_available %d)", stats["conntrack_allowance_available"])
			} else if driver == "ena" {
				add(Result{"interface " + ifc.Name, Warn, detail + ", ENA without allowance counters (driver 2.8.1+ needed)", "nic allowances"})
				continue
			}
			add(Result{"interface " + ifc.Name, OK, detail, ""})
		}
	}
}
