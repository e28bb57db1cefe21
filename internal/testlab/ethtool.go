package testlab

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ifreqData is struct ifreq with the ifr_data member of the union.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// setLegacyOffloads switches GRO, GSO, TSO and TX checksumming of ifname in
// the calling thread's network namespace with the legacy SIOCETHTOOL value
// commands (the same as `ethtool -K dev gro off gso off tso off tx off`).
// Must run inside NetNS.Do.
func setLegacyOffloads(ifname string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	var v uint32
	if on {
		v = 1
	}
	// Order matters when turning off: TSO depends on TX checksumming, so it
	// goes first; GRO and GSO are independent.
	cmds := []struct {
		cmd  uint32
		name string
	}{
		{unix.ETHTOOL_SGRO, "gro"},
		{unix.ETHTOOL_SGSO, "gso"},
		{unix.ETHTOOL_STSO, "tso"},
		{unix.ETHTOOL_STXCSUM, "tx-checksumming"},
	}
	if on {
		for i, j := 0, len(cmds)-1; i < j; i, j = i+1, j-1 {
			cmds[i], cmds[j] = cmds[j], cmds[i]
		}
	}
	for _, c := range cmds {
		ev := ethtoolValue{cmd: c.cmd, data: v}
		var ifr ifreqData
		copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
		ifr.data = unsafe.Pointer(&ev)
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		if errno != 0 {
			return fmt.Errorf("ethtool %s %s=%v: %w", ifname, c.name, on, errno)
		}
	}
	return nil
}
