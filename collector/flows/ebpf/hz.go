package ebpf

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// usecPerJiffy returns the length of a kernel jiffy in microseconds
// (1e6/CONFIG_HZ), which the TCP chrono times (busy, rwnd- and
// sndbuf-limited) are counted in; 0 when it cannot be found (those times
// then stay zero). The kernel configuration tells (/proc/config.gz,
// /boot/config-RELEASE); else the jiffies counter of /proc/timer_list is
// timed over a short interval.
func usecPerJiffy() int64 {
	if hz := configHZ(); hz > 0 {
		return 1e6 / hz
	}
	return measuredUsecPerJiffy()
}

func configHZ() int64 {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	for _, p := range []string{"/proc/config.gz", "/boot/config-" + release} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				continue
			}
			r = zr
		}
		hz := parseConfigHZ(r)
		f.Close()
		if hz > 0 {
			return hz
		}
	}
	return 0
}

// parseConfigHZ returns CONFIG_HZ from a kernel configuration; 0 if absent.
func parseConfigHZ(r io.Reader) int64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
			hz, err := strconv.ParseInt(v, 10, 64)
			if err == nil && hz > 0 && hz <= 10000 {
				return hz
			}
		}
	}
	return 0
}

// measuredUsecPerJiffy times the jiffies counter over 200 ms and rounds to
// the kernel's HZ choices (100, 250, 300, 1000).
func measuredUsecPerJiffy() int64 {
	j0, ok0 := timerListJiffies()
	t0 := time.Now()
	time.Sleep(200 * time.Millisecond)
	j1, ok1 := timerListJiffies()
	el := time.Since(t0).Seconds()
	if !ok0 || !ok1 || j1 <= j0 || el <= 0 {
		return 0
	}
	hz := float64(j1-j0) / el
	best, bestd := int64(0), 1e9
	for _, h := range []int64{100, 250, 300, 1000} {
		if d := abs(hz - float64(h)); d < bestd {
			best, bestd = h, d
		}
	}
	if bestd > float64(best)/5 {
		return 0
	}
	return 1e6 / best
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func timerListJiffies() (uint64, bool) {
	b, err := os.ReadFile("/proc/timer_list")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("jiffies: ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
