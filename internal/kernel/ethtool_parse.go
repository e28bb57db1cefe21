package kernel

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// maxEthtoolStats bounds what ParseEthtoolStats accepts.
const maxEthtoolStats = 1 << 16

// ParseEthtoolStats parses the text printed by `ethtool -S IFACE`: an
// optional "NIC statistics:" header, then "name: value" lines. Errors name
// the line.
func ParseEthtoolStats(b []byte) ([]NICStat, error) {
	var out []NICStat
	sc := bufio.NewScanner(bytes.NewReader(b))
	ln := 0
	for sc.Scan() {
		ln++
		line := strings.TrimSpace(sc.Text())
		if line == "" || (ln == 1 && line == "NIC statistics:") {
			continue
		}
		i := strings.LastIndex(line, ":")
		if i <= 0 {
			return nil, fmt.Errorf("line %d: want \"name: value\", got %q", ln, line)
		}
		name, val := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		if strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("line %d: statistic name %q contains spaces", ln, name)
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value of %s: %q is not an unsigned integer", ln, name, val)
		}
		if len(out) == maxEthtoolStats {
			return nil, fmt.Errorf("line %d: more than %d statistics", ln, maxEthtoolStats)
		}
		out = append(out, NICStat{name, v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", ln+1, err)
	}
	return out, nil
}
