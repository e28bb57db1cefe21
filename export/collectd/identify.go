package collectd

import (
	"fmt"
	"hash/fnv"
	"strings"

	"collectd.org/api"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// MaxNameLen is collectd's DATA_MAX_NAME_LEN minus the terminating NUL.
const MaxNameLen = 127

// Plugin is the plugin name of every series without a dedicated mapping.
const Plugin = "netsight"

// Kind is a collectd data-source type.
type Kind int

// Data-source types netsight writes (types.db "gauge", "derive", "packets",
// "bytes").
const (
	Gauge Kind = iota
	Derive
)

// Ident is a collectd identifier (without the host) and how to send the value.
type Ident struct {
	Plugin, PluginInstance, Type, TypeInstance string
	Kind                                       Kind
}

// Identifier returns the full identifier for host.
func (i Ident) Identifier(host string) api.Identifier {
	return api.Identifier{Host: host, Plugin: i.Plugin, PluginInstance: i.PluginInstance, Type: i.Type, TypeInstance: i.TypeInstance}
}

// Value is v as the identifier's type: derive values are integers.
func (i Ident) Value(v float64) api.Value {
	if i.Kind == Derive {
		return api.Derive(int64(v))
	}
	return api.Gauge(v)
}

// hookShort is how seed 003's counters name the netfilter hooks.
var hookShort = map[string]string{"forward": "fwd", "input": "input", "output": "output"}

// Identify maps one series:
//
//   - netsight_nftables_ct_{packets,bytes}_total{family,protocol,hook,state}
//     become nftables-netsight/packets-tcp_conntrack_fwd_new (the names of
//     seed 003's script; the plugin instance is netsight's table, and IPv6
//     counters get a "6" after the protocol: tcp6_conntrack_...);
//   - every other series becomes netsight-<name without netsight_>/<type>-<label values>,
//     type "derive" for integer counters (_total, _count, _bucket, except
//     *_seconds_total) and "gauge" for everything else.
//
// Names longer than collectd's 127 bytes are cut and suffixed with a hash.
func Identify(ls labels.Labels) Ident {
	name := ls.Get(model.MetricNameLabel)
	if name == "netsight_nftables_ct_packets_total" || name == "netsight_nftables_ct_bytes_total" {
		proto := ls.Get("protocol")
		if ls.Get("family") == "ipv6" {
			proto += "6"
		}
		typ, kind := "packets", Derive
		if name == "netsight_nftables_ct_bytes_total" {
			typ, kind = "bytes", Gauge // types.db: bytes is a GAUGE
		}
		hook := hookShort[ls.Get("hook")]
		if hook == "" {
			hook = ls.Get("hook")
		}
		return Ident{Plugin: "nftables", PluginInstance: "netsight", Type: typ,
			TypeInstance: clean(fmt.Sprintf("%s_conntrack_%s_%s", proto, hook, ls.Get("state"))), Kind: kind}
	}
	typ, kind := "gauge", Gauge
	if (strings.HasSuffix(name, "_total") && !strings.HasSuffix(name, "_seconds_total")) ||
		strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_bucket") {
		typ, kind = "derive", Derive
	}
	var vals []string
	ls.Range(func(l labels.Label) {
		if l.Name != model.MetricNameLabel {
			vals = append(vals, l.Value)
		}
	})
	return Ident{Plugin: Plugin, PluginInstance: clean(strings.TrimPrefix(name, "netsight_")), Type: typ,
		TypeInstance: clean(strings.Join(vals, ",")), Kind: kind}
}

// clean makes s a valid identifier part: no '/', no control characters,
// '"' avoided (PUTVAL quoting), at most MaxNameLen bytes.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '"' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
	if len(s) <= MaxNameLen {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	cut := MaxNameLen - 9
	for cut > 0 && !validUTF8Boundary(s, cut) {
		cut--
	}
	return fmt.Sprintf("%s~%08x", s[:cut], h.Sum32())
}

func validUTF8Boundary(s string, i int) bool { return i >= len(s) || s[i]&0xc0 != 0x80 }
