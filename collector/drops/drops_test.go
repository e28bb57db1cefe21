package drops

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/netsight/netsight/collector"
	"github.com/netsight/netsight/config"
)

func TestReasons(t *testing.T) {
	r := NewReasons([]btf.EnumValue{
		{Name: "SKB_NOT_DROPPED_YET", Value: 0}, {Name: "SKB_CONSUMED", Value: 1},
		{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 2}, {Name: "SKB_DROP_REASON_NETFILTER_DROP", Value: 12},
		{Name: "SKB_DROP_REASON_NO_SOCKET", Value: 3}, {Name: "SKB_DROP_REASON_MAX", Value: 130},
		{Name: "SKB_DROP_REASON_SUBSYS_MASK", Value: 0xffff0000},
	}, []btf.EnumValue{
		{Name: "SKB_DROP_REASON_SUBSYS_CORE", Value: 0}, {Name: "SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", Value: 1},
		{Name: "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", Value: 3}, {Name: "SKB_DROP_REASON_SUBSYS_NUM", Value: 4},
	})
	if got := strings.Join(r.Labels, ","); got != "NOT_SPECIFIED,NO_SOCKET,NETFILTER_DROP" {
		t.Errorf("labels %s", got)
	}
	for _, tc := range []struct {
		v    uint32
		want string
	}{
		{0, "NOT_DROPPED_YET"}, {1, "CONSUMED"}, {12, "NETFILTER_DROP"}, {13, OtherReason},
		{1<<16 | 5, "SUBSYS_MAC80211_UNUSABLE"}, {3<<16 | 1, "SUBSYS_OPENVSWITCH"}, {2 << 16, OtherReason},
	} {
		if got := r.Label(tc.v); got != tc.want {
			t.Errorf("Label(%#x) = %s, want %s", tc.v, got, tc.want)
		}
	}
	// Slots of the kernel's totals array, as drops.bpf.c fills them.
	for _, tc := range []struct {
		slot uint32
		want string
	}{
		{12, "NETFILTER_DROP"}, {reasonSlots - 1, OtherReason}, {reasonSlots + 1, "SUBSYS_MAC80211_UNUSABLE"},
		{reasonSlots + 3, "SUBSYS_OPENVSWITCH"}, {reasonSlots + subsysSlots - 1, OtherReason},
	} {
		if got := r.slotLabel(tc.slot); got != tc.want {
			t.Errorf("slotLabel(%d) = %s, want %s", tc.slot, got, tc.want)
		}
	}
}

// TestReasonsKernel reads the running kernel's enum: the names the lab
// tests and docs rely on are there.
func TestReasonsKernel(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	r, err := ReasonsFromBTF(spec)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range r.Labels {
		have[l] = true
		if Ignored[l] || strings.HasPrefix(l, "DROP_REASON") || strings.HasPrefix(l, "SKB_DROP") {
			t.Errorf("label %s", l)
		}
	}
	for _, l := range []string{"NOT_SPECIFIED", "NETFILTER_DROP", "NO_SOCKET", "SOCKET_RCVBUFF", "TCP_LISTEN_OVERFLOW"} {
		if !have[l] {
			t.Errorf("no %s among %d reasons", l, len(r.Labels))
		}
	}
	t.Logf("%d reasons", len(r.Labels))
}

// TestNotSupported: a kernel whose BTF lacks the tracepoint, has it
// without the reason argument (< 5.17), or lacks the enum is not supported,
// and the error names what is missing.
func TestNotSupported(t *testing.T) {
	ptr := func(t btf.Type) *btf.Pointer { return &btf.Pointer{Target: t} }
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	params := func(n int) []btf.FuncParam {
		ps := make([]btf.FuncParam, n)
		for i := range ps {
			ps[i] = btf.FuncParam{Type: ptr(&btf.Void{})}
		}
		return ps
	}
	tp := func(n int) btf.Type {
		return &btf.Typedef{Name: "btf_trace_kfree_skb", Type: ptr(&btf.FuncProto{Return: &btf.Void{}, Params: params(n)})}
	}
	enum := &btf.Enum{Name: "skb_drop_reason", Size: 4, Values: []btf.EnumValue{{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 2}}}
	for _, tc := range []struct {
		name  string
		types []btf.Type
		want  string
	}{
		{"no tracepoint", []btf.Type{u32}, "tp_btf/kfree_skb"},
		{"no reason argument", []btf.Type{tp(3), enum}, "Linux >= 5.17"},
		{"no enum", []btf.Type{tp(4)}, "enum skb_drop_reason"},
		{"supported", []btf.Type{tp(5), enum}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := btf.NewBuilder(tc.types, nil)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := b.Marshal(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			r, err := reasonsFromSpec(spec)
			if tc.want == "" {
				if err != nil || len(r.Labels) != 1 {
					t.Fatalf("reasons %v, err %v", r, err)
				}
				return
			}
			if !errors.Is(err, collector.ErrNotSupported) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrNotSupported naming %q", err, tc.want)
			}
		})
	}
}

func TestClass(t *testing.T) {
	for reason, want := range map[string]string{
		"NETFILTER_DROP": ClassStack, "QDISC_DROP": ClassStack, "NEIGH_QUEUEFULL": ClassStack,
		"SOCKET_RCVBUFF": ClassApplication, "TCP_LISTEN_OVERFLOW": ClassApplication, "TCP_CSUM": ClassCorrupt,
		"NOT_SPECIFIED": ClassProtocol, "QUEUE_PURGE": ClassProtocol, "NO_SOCKET": ClassProtocol, "SOMETHING_NEW": ClassProtocol,
	} {
		if got := Class(reason); got != want {
			t.Errorf("Class(%s) = %s, want %s", reason, got, want)
		}
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 63, 1<<20 + 1} {
		c := DefaultConfig()
		c.MaxEntries = n
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "max_entries") {
			t.Errorf("max_entries %d: %v", n, err)
		}
	}
	var _ config.CollectorConfig = DefaultConfig()
}
