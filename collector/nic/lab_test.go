package nic

import (
	"context"
	"github.com/netsight/netsight/collector"
	"strconv"
	"testing"
	"time"

	"github.com/netsight/netsight/internal/kernel"
	"github.com/netsight/netsight/internal/metrictest"
	"github.com/netsight/netsight/internal/testlab"
)

// TestLabVeth runs the real ethtool path on a veth pair in a lab namespace
// and compares every statistic with the ethtool tool's output.
func TestLabVeth(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: runs in the full (non -short) pass")
	}
	testlab.RequireRoot(t)
	testlab.RequireBinary(t, "ethtool")
	ns := testlab.NewNetNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"link", "add", "nsa", "type", "veth", "peer", "name", "nsb"},
		{"link", "set", "nsa", "up"}, {"link", "set", "nsb", "up"},
	} {
		if out, err := ns.Run(ctx, "ip", args...); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	peer, err := ns.Handle().LinkByName("nsb")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.PerQueue = true
	var got map[string]float64
	if err := ns.Do(func() error {
		c, err := New(cfg, collector.Deps{})
		if err != nil {
			return err
		}
		got, err = metrictest.Gather(context.Background(), c)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if v := got[`netsight_nic_stat{device="nsa",stat="peer_ifindex"}`]; int(v) != peer.Attrs().Index {
		t.Errorf("peer_ifindex = %v, want nsb's ifindex %d", v, peer.Attrs().Index)
	}
	if got[`netsight_nic_info{device="nsa",driver="veth"}`] != 1 {
		t.Errorf("no info series for nsa/veth: %v", got)
	}
	out, err := ns.Run(ctx, "ethtool", "-S", "nsa")
	if err != nil {
		t.Fatal(err)
	}
	stats, err := kernel.ParseEthtoolStats([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) < 5 {
		t.Fatalf("ethtool -S nsa gave %d stats", len(stats))
	}
	for _, s := range stats {
		key := `netsight_nic_stat{device="nsa",stat="` + s.Name + `"}`
		if q, st, ok := splitQueue(s.Name); ok {
			key = `netsight_nic_queue_stat{device="nsa",queue="` + q + `",stat="` + st + `"}`
		}
		if v, ok := got[key]; !ok || v != float64(s.Value) {
			t.Errorf("%s = %v (present %v), ethtool says %s", key, v, ok, strconv.FormatUint(s.Value, 10))
		}
	}
	for k := range got {
		if k == `netsight_nic_info{device="lo",driver=""}` {
			t.Error("lo exported")
		}
	}
}
