package kernel

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Feature probes shared by the collectors (their New and Check) and
// `netsight check`: each is read-only and sends no traffic.

// AFPacketAvailable opens and closes an AF_PACKET socket in the calling
// thread's network namespace (needs CAP_NET_RAW).
func AFPacketAvailable() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	return unix.Close(fd)
}

// ICMPSocket opens and closes an IPv4 ICMP socket of type SOCK_DGRAM
// (allowed by net.ipv4.ping_group_range) or SOCK_RAW (CAP_NET_RAW).
func ICMPSocket(typ int) error {
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// NftablesUsable lists the nftables tables over netlink (needs
// CAP_NET_ADMIN); it changes nothing.
func NftablesUsable() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables netlink: %w", err)
	}
	defer func() { _ = c.CloseLasting() }()
	if _, err := c.ListTables(); err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	return nil
}

// EBPFFlowSupport reports whether sock_ops programs and memory-mapped BPF
// arrays load here (the eBPF flow back end needs both: closed connections
// reach user space through a memory-mapped ring).
func EBPFFlowSupport() error {
	var errs []error
	if err := features.HaveProgramType(ebpf.SockOps); err != nil {
		errs = append(errs, fmt.Errorf("sock_ops: %w", err))
	}
	if err := features.HaveMapFlag(features.BPF_F_MMAPABLE); err != nil {
		errs = append(errs, fmt.Errorf("memory-mapped arrays: %w", err))
	}
	return errors.Join(errs...)
}
