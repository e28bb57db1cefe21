package drops

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Slots of the kernel's totals array (drops.bpf.c): one per reason value
// below reasonSlots (the last one also takes any larger plain value), then
// one per subsystem of subsystem-coded reasons (value >> 16).
const (
	reasonSlots  = 512
	subsysSlots  = 64
	subsysShift  = 16
	reasonPrefix = "SKB_DROP_REASON_"
	subsysPrefix = "SKB_DROP_REASON_SUBSYS_"
)

// Ignored are the labels that are not drops: SKB_NOT_DROPPED_YET (0) and
// SKB_CONSUMED (a normal free, traced by consume_skb on current kernels),
// and the enum's end marker.
var Ignored = map[string]bool{"NOT_DROPPED_YET": true, "CONSUMED": true, "MAX": true}

// OtherReason labels a value the running kernel's enum does not name
// (folded slots); SubsysPrefix labels subsystem-coded reasons.
const (
	OtherReason  = "OTHER"
	SubsysPrefix = "SUBSYS_"
)

// Reasons names the drop reasons of one kernel.
type Reasons struct {
	byValue  map[uint32]string
	bySubsys map[uint32]string
	// Labels lists the label of every named plain reason (ignored ones
	// excluded) by value: the metric's label set.
	Labels []string
}

// ErrNoReasons means the kernel's BTF has no enum skb_drop_reason (Linux <
// 5.17, or BTF without it).
var ErrNoReasons = errors.New("no enum skb_drop_reason in kernel BTF (Linux >= 5.17)")

// ReasonsFromBTF reads enum skb_drop_reason (and enum
// skb_drop_reason_subsys when present) from a kernel's BTF.
func ReasonsFromBTF(spec *btf.Spec) (*Reasons, error) {
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoReasons, err)
	}
	var sub []btf.EnumValue
	var s *btf.Enum
	if err := spec.TypeByName("skb_drop_reason_subsys", &s); err == nil {
		sub = s.Values
	}
	return NewReasons(e.Values, sub), nil
}

// NewReasons builds the names from the values of enum skb_drop_reason and
// enum skb_drop_reason_subsys. Labels are the kernel's names without the
// SKB_DROP_REASON_ (or SKB_) prefix, as the kernel's own drop_reasons
// strings print them: NETFILTER_DROP, NO_SOCKET, NOT_SPECIFIED.
func NewReasons(values, subsys []btf.EnumValue) *Reasons {
	r := &Reasons{byValue: map[uint32]string{}, bySubsys: map[uint32]string{}}
	type lv struct {
		label string
		value uint32
	}
	var labels []lv
	for _, v := range values {
		label := strings.TrimPrefix(v.Name, reasonPrefix)
		if label == v.Name {
			label = strings.TrimPrefix(v.Name, "SKB_")
		}
		val := uint32(v.Value)
		if _, dup := r.byValue[val]; dup {
			continue
		}
		r.byValue[val] = label
		if !Ignored[label] && val < reasonSlots {
			labels = append(labels, lv{label, val})
		}
	}
	sort.Slice(labels, func(i, j int) bool { return labels[i].value < labels[j].value })
	for _, l := range labels {
		r.Labels = append(r.Labels, l.label)
	}
	for _, v := range subsys {
		name := strings.TrimPrefix(v.Name, subsysPrefix)
		if v.Value == 0 || name == "NUM" || v.Value >= subsysSlots {
			continue // 0 is the core reasons above
		}
		r.bySubsys[uint32(v.Value)] = SubsysPrefix + name
	}
	return r
}

// Label returns the label of a reason value: the enum's name, SUBSYS_<name>
// for subsystem-coded reasons (value >> 16 names the subsystem), OTHER for
// values the enum does not name.
func (r *Reasons) Label(v uint32) string {
	if sub := v >> subsysShift; sub != 0 {
		if n, ok := r.bySubsys[sub]; ok {
			return n
		}
		return OtherReason
	}
	if n, ok := r.byValue[v]; ok {
		return n
	}
	return OtherReason
}

// slotLabel returns the label of a slot of the totals array.
func (r *Reasons) slotLabel(slot uint32) string {
	if slot >= reasonSlots {
		if n, ok := r.bySubsys[slot-reasonSlots]; ok && slot-reasonSlots < subsysSlots-1 {
			return n
		}
		return OtherReason
	}
	if slot == reasonSlots-1 {
		return OtherReason // also holds every plain value above it
	}
	return r.Label(slot)
}

// index reports whether label is one of the named plain reasons.
func (r *Reasons) index(label string) (int, bool) {
	for i, l := range r.Labels {
		if l == label {
			return i, true
		}
	}
	return -1, false
}
