package health

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netsight/netsight/monitor"
)

// BenchmarkEvaluate is one evaluation: the lab's 3 monitors of 4 remotes,
// and the worst case of 65 monitors with 512 remotes each.
func BenchmarkEvaluate(b *testing.B) {
	for _, size := range []struct{ monitors, remotes int }{{3, 4}, {65, 512}} {
		b.Run(fmt.Sprintf("%dx%d", size.monitors, size.remotes), func(b *testing.B) {
			var ws []monitor.Window
			for m := range size.monitors {
				w := monitor.Window{Name: fmt.Sprintf("m%d", m), Start: t0, End: t0.Add(10 * time.Second)}
				for r := range size.remotes {
					a := netip.AddrFrom4([4]byte{10, byte(m), byte(r >> 8), byte(r)})
					s := bulk(300 * time.Microsecond)
					w.Remotes = append(w.Remotes, monitor.Remote{Addr: a, Place: place(a), Stats: s})
				}
				w.Totals = bulk(300 * time.Microsecond)
				ws = append(ws, w)
			}
			e := New(DefaultConfig())
			now := t0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				now = now.Add(time.Second)
				e.Evaluate(now, ws, hostAt(now, 0, nil))
			}
		})
	}
}
