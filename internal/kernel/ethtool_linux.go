package kernel

import (
	"errors"
	"fmt"
	"net"

	"github.com/safchain/ethtool"
	"golang.org/x/sys/unix"
)

// NICSource is what the nic collector reads from the kernel; fakes backed by
// `ethtool -S` fixtures implement it in tests.
type NICSource interface {
	// Interfaces lists interface names.
	Interfaces() ([]string, error)
	// Driver returns the driver name (ethtool -i).
	Driver(iface string) (string, error)
	// Stats returns the driver statistics (ethtool -S), in driver order.
	// An interface without statistics returns an error wrapping
	// ErrNoNICStats.
	Stats(iface string) ([]NICStat, error)
	Close() error
}

// NICStat is one named driver statistic.
type NICStat struct {
	Name  string
	Value uint64
}

// ErrNoNICStats marks an interface whose driver exposes no statistics (lo).
var ErrNoNICStats = errors.New("driver has no ethtool statistics")

// EthtoolSource reads interfaces over netlink and statistics with the
// SIOCETHTOOL ioctl, in the network namespace of the thread that called
// NewEthtoolSource (the ioctl socket belongs to it).
type EthtoolSource struct {
	e *ethtool.Ethtool
}

// NewEthtoolSource opens the ioctl socket.
func NewEthtoolSource() (*EthtoolSource, error) {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return nil, fmt.Errorf("ethtool: %w", err)
	}
	return &EthtoolSource{e: e}, nil
}

// Interfaces lists the interfaces of the calling thread's namespace.
func (s *EthtoolSource) Interfaces() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]string, len(ifs))
	for i, ifc := range ifs {
		out[i] = ifc.Name
	}
	return out, nil
}

// Driver returns the driver name.
func (s *EthtoolSource) Driver(iface string) (string, error) {
	d, err := s.e.DriverName(iface)
	if err != nil {
		return "", fmt.Errorf("ethtool -i %s: %w", iface, err)
	}
	return d, nil
}

// Stats returns the statistics in driver order.
func (s *EthtoolSource) Stats(iface string) ([]NICStat, error) {
	m, err := s.e.Stats(iface)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("ethtool -S %s: %w: %w", iface, ErrNoNICStats, err)
		}
		return nil, fmt.Errorf("ethtool -S %s: %w", iface, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("ethtool -S %s: %w", iface, ErrNoNICStats)
	}
	out := make([]NICStat, 0, len(m))
	for k, v := range m {
		out = append(out, NICStat{k, v})
	}
	return out, nil
}

// Close closes the ioctl socket.
func (s *EthtoolSource) Close() error {
	s.e.Close()
	return nil
}
