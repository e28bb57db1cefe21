package kernel

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// NetStat holds the SNMP/MIB counters of one network namespace, as
// /proc/net/netstat and /proc/net/snmp print them, keyed "Group.Name":
// "TcpExt.ListenOverflows", "Tcp.RetransSegs", "IpExt.InNoRoutes". Values
// the kernel prints negative (Tcp.MaxConn is -1: no limit) are left out.
type NetStat map[string]uint64

// NetStatFiles are the files ReadNetStat reads below <procfs>[/<pid>]/net.
var NetStatFiles = []string{"netstat", "snmp"}

// ReadNetStat reads the counters of a network namespace without entering
// it: pid > 0 reads <procfs>/<pid>/net/{netstat,snmp}, the namespace of that
// process (any process inside the namespace will do; reading another
// user's process needs CAP_SYS_PTRACE or the same user); pid 0 reads
// <procfs>/net/..., the namespace of the reader itself (with a host /proc
// mounted elsewhere, the agent's own namespace too: /proc/net is a link to
// self/net). Errors name the file and line.
func ReadNetStat(procfs string, pid int) (NetStat, error) {
	if procfs == "" {
		procfs = "/proc"
	}
	dir := filepath.Join(procfs, "net")
	if pid > 0 {
		dir = filepath.Join(procfs, strconv.Itoa(pid), "net")
	}
	ns := NetStat{}
	for _, name := range NetStatFiles {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read netstat: %w", err)
		}
		if err := ParseNetStat(b, ns); err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
	}
	return ns, nil
}

// ParseNetStat adds the counters of one /proc/net/netstat or /proc/net/snmp
// file to into. The files are pairs of lines, a header naming the counters
// and a line of values with the same "Group:" prefix. Errors name the line
// (1-based) and what is wrong; counters parsed before an error are kept.
func ParseNetStat(b []byte, into NetStat) error {
	lineNo := 0
	next := func() ([]byte, bool) {
		for len(b) > 0 {
			var line []byte
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line, b = b[:i], b[i+1:]
			} else {
				line, b = b, nil
			}
			lineNo++
			if len(bytes.TrimSpace(line)) > 0 {
				return line, true
			}
		}
		return nil, false
	}
	for {
		head, ok := next()
		if !ok {
			return nil
		}
		headNo := lineNo
		vals, ok := next()
		if !ok {
			return fmt.Errorf("line %d: header without a line of values", headNo)
		}
		hf, vf := bytes.Fields(head), bytes.Fields(vals)
		group := hf[0]
		if len(group) < 2 || group[len(group)-1] != ':' {
			return fmt.Errorf("line %d: want \"Group:\" first, got %q", headNo, truncate(group))
		}
		if !bytes.Equal(vf[0], group) {
			return fmt.Errorf("line %d: values of %q follow header %q", lineNo, truncate(vf[0]), truncate(group))
		}
		if len(hf) != len(vf) {
			return fmt.Errorf("line %d: %d values for %d names of %s", lineNo, len(vf)-1, len(hf)-1, group)
		}
		prefix := string(group[:len(group)-1]) + "."
		for i := 1; i < len(hf); i++ {
			v, err := strconv.ParseUint(string(vf[i]), 10, 64)
			if err != nil {
				if _, serr := strconv.ParseInt(string(vf[i]), 10, 64); serr == nil {
					continue // negative: Tcp.MaxConn -1
				}
				return fmt.Errorf("line %d: %s%s: value %q is not a number", lineNo, prefix, hf[i], truncate(vf[i]))
			}
			into[prefix+string(hf[i])] = v
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}
