package kernel

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Capability is a Linux capability number.
type Capability uint

// Capabilities netsight cares about.
const (
	CapNetAdmin  Capability = 12
	CapNetRaw    Capability = 13
	CapSysAdmin  Capability = 21
	CapSysPtrace Capability = 19
	CapPerfmon   Capability = 38
	CapBPF       Capability = 39
)

var capNames = map[Capability]string{
	CapNetAdmin: "CAP_NET_ADMIN", CapNetRaw: "CAP_NET_RAW", CapSysAdmin: "CAP_SYS_ADMIN",
	CapSysPtrace: "CAP_SYS_PTRACE", CapPerfmon: "CAP_PERFMON", CapBPF: "CAP_BPF",
}

func (c Capability) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CAP_%d", uint(c))
}

// EffectiveCaps returns the effective capability set of this process from
// <procRoot>/self/status.
func EffectiveCaps(procRoot string) (uint64, error) {
	f, err := os.Open(procRoot + "/self/status")
	if err != nil {
		return 0, fmt.Errorf("read capabilities: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parse CapEff %q: %w", v, err)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read capabilities: %w", err)
	}
	return 0, fmt.Errorf("no CapEff line in %s/self/status", procRoot)
}

// HasCap reports whether this process holds c (false if it cannot tell).
func HasCap(c Capability) bool {
	caps, err := EffectiveCaps("/proc")
	return err == nil && caps&(1<<uint(c)) != 0
}

// RequireCaps returns an error naming the first missing capability among cs.
func RequireCaps(cs ...Capability) error {
	caps, err := EffectiveCaps("/proc")
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range cs {
		if caps&(1<<uint(c)) == 0 {
			missing = append(missing, c.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing capability %s", strings.Join(missing, ", "))
	}
	return nil
}
