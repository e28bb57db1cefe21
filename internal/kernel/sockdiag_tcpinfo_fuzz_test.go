package kernel

import "testing"

// FuzzParseTCPInfo decodes tcp_info attributes of any length (kernels
// append fields over time): short ones are an error naming the length,
// the rest decode without reading past the end.
func FuzzParseTCPInfo(f *testing.F) {
	for _, n := range []int{104, 136, 160, 168, 192, 220, 232, 236, 240, 248, 300} {
		f.Add(tcpInfo(n))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 103))
	f.Fuzz(func(t *testing.T, b []byte) {
		ti, err := ParseTCPInfo(b)
		if (err == nil) != (len(b) >= offTotalRetrans+4) {
			t.Fatalf("len %d: err %v", len(b), err)
		}
		if ti.HasTotalRTO != (len(b) >= offTotalRTO+2) {
			t.Fatalf("len %d: HasTotalRTO %v", len(b), ti.HasTotalRTO)
		}
		if ti.HasRcvWnd != (len(b) >= offRcvWnd+4) || ti.HasSndWnd != (len(b) >= offSndWnd+4) || ti.HasChrono != (len(b) >= offSndbufLimited+8) {
			t.Fatalf("len %d: HasRcvWnd %v HasSndWnd %v HasChrono %v", len(b), ti.HasRcvWnd, ti.HasSndWnd, ti.HasChrono)
		}
	})
}
