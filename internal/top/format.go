package top

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"
)

// fmtBytes formats a byte count (or rate) in IEC units, at most 7 cells.
func fmtBytes(v float64) string {
	if v < 0.5 {
		return "0"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	switch {
	case i == 0:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + "B"
	case v < 99.95:
		return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
}

// fmtRTT formats an RTT in milliseconds ("-" when unknown).
func fmtRTT(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	ms := d.Seconds() * 1e3
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3fms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	case ms < 10000:
		return fmt.Sprintf("%.0fms", ms)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// fmtRate formats a per-second count.
func fmtRate(v float64) string {
	switch {
	case v <= 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func fmtAddrPort(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "-"
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		return "[" + a.String() + "]:" + strconv.Itoa(int(ap.Port()))
	}
	return a.String() + ":" + strconv.Itoa(int(ap.Port()))
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 100*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func secondsDur(s float64) time.Duration {
	if s > float64(1<<62)/1e9 {
		return 1 << 62
	}
	return time.Duration(s * float64(time.Second))
}
