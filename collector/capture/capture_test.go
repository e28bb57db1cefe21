package capture

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/bpf"

	"github.com/netsight/netsight/config"
	"github.com/netsight/netsight/internal/metrictest"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"bad pattern", func(c *Config) { c.Interfaces = []string{"eth["} }, `interfaces[0]: invalid pattern "eth["`},
		{"empty exclude", func(c *Config) { c.Exclude = []string{""} }, `exclude[0]: invalid pattern ""`},
		{"port zero", func(c *Config) { c.Ports = []uint16{80, 0} }, "ports[1]: port must be 1-65535"},
		{"too many ports", func(c *Config) { c.Ports = make([]uint16, 33) }, "ports: at most 32 ports, got 33"},
		{"snaplen", func(c *Config) { c.SnapLen = 10 }, "snaplen: must be between 64 and 65535, got 10"},
		{"ring", func(c *Config) { c.RingSizeMB = 0 }, "ring_size_mb: must be between 1 and 1024, got 0"},
		{"top peers", func(c *Config) { c.TopPeers = 1000 }, "top_peers: must be between 0 and 100, got 1000"},
		{"idle", func(c *Config) { c.FlowIdleTimeout = time.Millisecond }, "flow_idle_timeout: must be at least 1s, got 1ms"},
		{"interval", func(c *Config) { c.Interval = time.Millisecond; c.Timeout = 0 }, "interval: must be at least 100ms, got 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	c := DefaultConfig()
	c.Interfaces = []string{"eth*", "veth*", "lo"}
	c.Exclude = []string{"veth9*"}
	for name, want := range map[string]bool{"eth0": true, "veth123": true, "veth9ab": false, "lo": true, "docker0": false} {
		if got := c.matches(name); got != want {
			t.Errorf("matches(%q) = %v, want %v", name, got, want)
		}
	}
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFilter runs the assembled filter in x/net/bpf's interpreter.
func TestFilter(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: et}
	}
	ip4 := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 1, Protocol: p, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	}
	ip4opts := ip4(layers.IPProtocolTCP)
	ip4opts.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolTCP, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	tcp := func(s, d uint16) *layers.TCP {
		return &layers.TCP{SrcPort: layers.TCPPort(s), DstPort: layers.TCPPort(d), DataOffset: 5}
	}
	frames := map[string][]byte{
		"v4 tcp 80":         serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(40000, 80)),
		"v4 tcp 443 src":    serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(443, 40000)),
		"v4 tcp 22":         serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(40000, 22)),
		"v4 opts tcp 80":    serialize(t, eth(layers.EthernetTypeIPv4), ip4opts, tcp(40000, 80)),
		"v4 udp 80":         serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40000, DstPort: 80}),
		"v6 tcp 80":         serialize(t, eth(layers.EthernetTypeIPv6), ip6, tcp(40000, 80)),
		"v6 tcp 22":         serialize(t, eth(layers.EthernetTypeIPv6), ip6, tcp(40000, 22)),
		"arp":               append(serialize(t, eth(layers.EthernetTypeARP)), make([]byte, 28)...),
		"raw v4 tcp 80":     serialize(t, ip4(layers.IPProtocolTCP), tcp(40000, 80)),
		"raw v6 tcp 22":     serialize(t, ip6, tcp(40000, 22)),
		"raw v4 icmp":       serialize(t, ip4(layers.IPProtocolICMPv4)),
		"v4 tcp 80 frag 2+": fragment(serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(40000, 80))),
		"v4 udp vxlan":      serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40000, DstPort: 4789}),
		"v4 udp 8472 src":   serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 8472, DstPort: 40000}),
		"v4 gre":            serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv4}),
		"v6 udp geneve":     serialize(t, eth(layers.EthernetTypeIPv6), &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}, &layers.UDP{SrcPort: 40000, DstPort: 6081}),
		"mpls":              append(serialize(t, eth(layers.EthernetTypeMPLSUnicast)), make([]byte, 44)...),
	}
	for _, tc := range []struct {
		name   string
		hdr    uint32
		ports  []uint16
		accept []string
	}{
		{"ethernet all tcp", 14, nil, []string{"v4 tcp 80", "v4 tcp 443 src", "v4 tcp 22", "v4 opts tcp 80", "v6 tcp 80", "v6 tcp 22", "v4 tcp 80 frag 2+",
			"v4 udp vxlan", "v4 udp 8472 src", "v4 gre", "v6 udp geneve", "mpls"}},
		{"ethernet ports 80,443", 14, []uint16{80, 443}, []string{"v4 tcp 80", "v4 tcp 443 src", "v4 opts tcp 80", "v6 tcp 80",
			"v4 udp vxlan", "v4 udp 8472 src", "v4 gre", "v6 udp geneve", "mpls"}},
		{"raw all tcp", 0, nil, []string{"raw v4 tcp 80", "raw v6 tcp 22"}},
		{"raw port 22", 0, []uint16{22}, []string{"raw v6 tcp 22"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := buildFilter(tc.hdr, tc.ports, 128, false)
			if err != nil {
				t.Fatal(err)
			}
			ins, ok := bpf.Disassemble(raw)
			if !ok {
				t.Fatal("disassemble")
			}
			vm, err := bpf.NewVM(ins)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for _, n := range tc.accept {
				want[n] = true
			}
			for name, f := range frames {
				if (tc.hdr == 0) != strings.HasPrefix(name, "raw") {
					continue
				}
				n, err := vm.Run(f)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := n > 0; got != want[name] {
					t.Errorf("%s: accepted=%v, want %v", name, got, want[name])
				}
				if n > 0 && n != 128 {
					t.Errorf("%s: snap %d", name, n)
				}
			}
		})
	}
}

func fragment(f []byte) []byte {
	binary.BigEndian.PutUint16(f[14+6:], 100) // fragment offset 800 bytes
	return f
}

func TestUpdateWithoutRings(t *testing.T) {
	c := &Collector{cfg: DefaultConfig(), rings: map[int]*ring{}, ns: -1}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrictest.AsPrometheus(c))
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n != 5 {
		t.Fatalf("series = %d, err = %v; want 5 (interfaces gauge + 4 interface change counters)", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFromYAML(t *testing.T) {
	cfg, err := config.Load([]byte(`
collectors:
  capture:
    enabled: true
    interfaces: ["eth*", "veth*"]
    exclude: ["veth9*"]
    ports: [443, 8080]
    snaplen: 96
    flow_idle_timeout: 30s
    top_peers: 5
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Collectors["capture"].(*Config)
	if !c.Explicit() || len(c.Ports) != 2 || c.Ports[1] != 8080 || c.SnapLen != 96 || c.FlowIdleTimeout != 30*time.Second || c.TopPeers != 5 {
		t.Fatalf("decoded %+v", c)
	}
	_, err = config.Load([]byte("collectors:\n  capture:\n    ports: [0]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "collectors.capture.ports[0]: port must be 1-65535") {
		t.Fatalf("err = %v", err)
	}
	_, err = config.Load([]byte("collectors:\n  capture:\n    portz: [1]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "portz") {
		t.Fatalf("unknown key err = %v", err)
	}
}
