package topology

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netsight/netsight/config"
)

func TestCategory(t *testing.T) {
	r := &Resolver{}
	nw := func(name, cidr, zone, vpc, region string) Network {
		return Network{Name: name, Prefixes: []netip.Prefix{netip.MustParsePrefix(cidr)}, Zone: zone, VPC: vpc, Region: region, Source: SourceNetworks}
	}
	r.Set([]Network{
		nw("a1", "10.1.0.0/24", "az1", "vpc-1", "r1"),
		nw("a1-wide", "10.1.0.0/16", "", "vpc-1", "r1"),
		nw("a2", "10.2.0.0/24", "az2", "vpc-1", "r1"),
		nw("other-vpc", "10.3.0.0/24", "az1", "vpc-2", "r1"),
		nw("other-region", "10.4.0.0/24", "az9", "vpc-9", "r2"),
		nw("named-only", "10.5.0.0/24", "", "", ""),
	}, []netip.Addr{netip.MustParseAddr("192.168.1.10")}, Place{})
	for _, c := range []struct {
		local, remote, want, network, source string
	}{
		{"10.1.0.5", "10.1.0.6", IntraZone, "a1", SourceNetworks},
		{"10.1.0.5", "10.2.0.6", InterZone, "a2", SourceNetworks},
		{"10.1.0.5", "10.1.7.1", SameVPC, "a1-wide", SourceNetworks}, // longest prefix, zone unknown
		{"10.1.0.5", "10.3.0.1", InterVPC, "other-vpc", SourceNetworks},
		{"10.1.0.5", "10.4.0.1", InterRegion, "other-region", SourceNetworks},
		{"10.1.0.5", "10.5.0.1", Unclass, "named-only", SourceNetworks},
		{"10.1.0.5", "127.0.0.1", Host, "", SourceHost},
		{"10.1.0.5", "192.168.1.10", Host, "", SourceHost},
		{"192.168.1.10", "192.168.7.7", Unclass, "", SourceDefault},
		{"192.168.1.10", "8.8.8.8", Internet, "", SourceDefault},
		{"192.168.1.10", "100.64.1.1", Unclass, "", SourceDefault},
		{"10.1.0.5", "::ffff:10.2.0.6", InterZone, "a2", SourceNetworks},
	} {
		_, rp, _ := r.Classify(netip.MustParseAddr(c.local), netip.MustParseAddr(c.remote))
		if rp.Category != c.want || rp.Network != c.network || rp.Source != c.source {
			t.Errorf("%s -> %s: %+v, want %s in %q from %s", c.local, c.remote, rp, c.want, c.network, c.source)
		}
	}
}

// imdsServer speaks IMDSv2 on loopback: a PUT for a token, GETs that
// must carry it.
type imdsServer struct {
	refuseToken bool
	delay       time.Duration
	gets        atomic.Int32
}

var imdsData = map[string]string{
	"placement/availability-zone-id":                                    "use1-az4",
	"placement/region":                                                  "us-east-1",
	"network/interfaces/macs/":                                          "0e:00:00:00:00:01/\n0e:00:00:00:00:02/",
	"network/interfaces/macs/0e:00:00:00:00:01/subnet-id":               "subnet-aaa",
	"network/interfaces/macs/0e:00:00:00:00:01/vpc-id":                  "vpc-111",
	"network/interfaces/macs/0e:00:00:00:00:01/subnet-ipv4-cidr-block":  "10.0.1.0/24",
	"network/interfaces/macs/0e:00:00:00:00:01/vpc-ipv4-cidr-blocks":    "10.0.0.0/16\n100.70.0.0/16",
	"network/interfaces/macs/0e:00:00:00:00:02/subnet-id":               "subnet-bbb",
	"network/interfaces/macs/0e:00:00:00:00:02/vpc-id":                  "vpc-111",
	"network/interfaces/macs/0e:00:00:00:00:02/subnet-ipv4-cidr-block":  "10.0.2.0/24",
	"network/interfaces/macs/0e:00:00:00:00:02/subnet-ipv6-cidr-blocks": "2600:1f18:1:2::/64",
}

func (s *imdsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(s.delay)
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" || s.refuseToken {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("TOKEN-1"))
		return
	}
	if r.Header.Get("X-aws-ec2-metadata-token") != "TOKEN-1" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	s.gets.Add(1)
	v, ok := imdsData[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(v))
}

func TestIMDS(t *testing.T) {
	srv := httptest.NewServer(&imdsServer{})
	defer srv.Close()
	info, err := FetchIMDS(context.Background(), srv.URL, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if info.ZoneID != "use1-az4" || info.Region != "us-east-1" || len(info.Networks) != 3 {
		t.Fatalf("info %+v", info)
	}
	if h := info.Host; h.Zone != "use1-az4" || h.VPC != "vpc-111" || h.Network != "subnet-aaa" || h.Source != SourceIMDS {
		t.Errorf("host %+v", h)
	}
	r := &Resolver{}
	r.Set(info.Networks, nil, info.Host)
	for _, c := range []struct{ remote, want, network string }{
		{"10.0.1.9", IntraZone, "subnet-aaa"},
		{"2600:1f18:1:2::9", IntraZone, "subnet-bbb"},
		{"10.0.77.1", SameVPC, "vpc-111"}, // another subnet of the VPC: zone unknown
		{"100.70.3.3", SameVPC, "vpc-111"},
		{"172.31.0.1", Unclass, ""},
	} {
		_, rp, _ := r.Classify(netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr(c.remote))
		if rp.Category != c.want || rp.Network != c.network {
			t.Errorf("%s: %+v, want %s in %s", c.remote, rp, c.want, c.network)
		}
	}
}

func TestIMDSFailures(t *testing.T) {
	refuse := httptest.NewServer(&imdsServer{refuseToken: true})
	defer refuse.Close()
	slow := httptest.NewServer(&imdsServer{delay: time.Second})
	defer slow.Close()
	for _, c := range []struct {
		name, url, want string
	}{
		{"token refused", refuse.URL, "imds token refused: HTTP 403"},
		{"timeout", slow.URL, "imds token:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Resolver{}
			start := time.Now()
			st := r.Load(context.Background(), Options{
				Config:    config.Topology{IMDS: "on", IMDSEndpoint: c.url, Kubernetes: "off"},
				Timeout:   200 * time.Millisecond,
				HostAddrs: func() ([]netip.Addr, error) { return nil, nil },
			})
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("load took %s with a 200ms timeout", d)
			}
			if st[1].Source != SourceIMDS || st[1].State != "error" || !strings.Contains(st[1].Detail, c.want) {
				t.Errorf("imds status %+v, want an error with %q", st[1], c.want)
			}
			// The resolver still answers (from the other sources).
			if p := r.Lookup(netip.MustParseAddr("10.0.1.9")); p.Source != SourceDefault {
				t.Errorf("lookup %+v", p)
			}
		})
	}
}

func TestIMDSAuto(t *testing.T) {
	is := &imdsServer{}
	srv := httptest.NewServer(is)
	defer srv.Close()
	for _, c := range []struct {
		sysfs, state string
	}{
		{"testdata/sysfs-other", "off"},
		{"testdata/sysfs-ec2", "ok"},
		{"testdata/no-such-sysfs", "off"},
	} {
		r := &Resolver{}
		st := r.Load(context.Background(), Options{
			Config: config.Topology{IMDS: "auto", IMDSEndpoint: srv.URL, Kubernetes: "off"}, SysFS: c.sysfs,
			HostAddrs: func() ([]netip.Addr, error) { return nil, nil },
		})
		if st[1].State != c.state {
			t.Errorf("%s: imds %+v, want %s", c.sysfs, st[1], c.state)
		}
	}
	if is.gets.Load() == 0 {
		t.Error("auto on the EC2 fixture never asked the server")
	}
}

func TestKubernetesFile(t *testing.T) {
	r := &Resolver{}
	st := r.Load(context.Background(), Options{
		Config:    config.Topology{IMDS: "off", Kubernetes: "file:testdata/nodes.json"},
		HostAddrs: func() ([]netip.Addr, error) { return nil, nil },
	})
	if st[2].State != "ok" || st[2].Networks != 2 {
		t.Fatalf("kubernetes status %+v", st[2])
	}
	checkNodes(t, r)
	st = (&Resolver{}).Load(context.Background(), Options{Config: config.Topology{IMDS: "off", Kubernetes: "file:testdata/missing.json"},
		HostAddrs: func() ([]netip.Addr, error) { return nil, nil }})
	if st[2].State != "error" || !strings.Contains(st[2].Detail, "missing.json") {
		t.Errorf("missing file: %+v", st[2])
	}
}

func checkNodes(t *testing.T, r *Resolver) {
	t.Helper()
	for _, c := range []struct{ local, remote, want, network string }{
		{"10.244.0.5", "10.244.0.9", IntraZone, "node-a"},
		{"10.244.0.5", "10.244.1.9", InterZone, "node-b"},
		{"10.244.0.5", "172.18.0.3", InterZone, "node-b"},
		{"10.244.0.5", "fd00:10:244::7", IntraZone, "node-a"},
	} {
		_, rp, _ := r.Classify(netip.MustParseAddr(c.local), netip.MustParseAddr(c.remote))
		if rp.Category != c.want || rp.Network != c.network || rp.Source != SourceKubernetes {
			t.Errorf("%s -> %s: %+v, want %s in %s", c.local, c.remote, rp, c.want, c.network)
		}
	}
}

func TestKubernetesAPI(t *testing.T) {
	body, err := os.ReadFile("testdata/nodes.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/nodes" || r.Header.Get("Authorization") != "Bearer sa-token" {
			http.Error(w, `{"kind":"Status","reason":"Forbidden"}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	cert := srv.TLS.Certificates[0]
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ token, state string }{{"sa-token", "ok"}, {"wrong", "error"}} {
		tok := filepath.Join(dir, "token-"+c.token)
		if err := os.WriteFile(tok, []byte(c.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := &Resolver{}
		st := r.Load(context.Background(), Options{
			Config:    config.Topology{IMDS: "off", Kubernetes: "api"},
			Kube:      KubeAPI{Server: srv.URL, TokenFile: tok, CAFile: ca},
			HostAddrs: func() ([]netip.Addr, error) { return nil, nil },
		})
		if st[2].State != c.state {
			t.Fatalf("token %s: status %+v, want %s", c.token, st[2], c.state)
		}
		if c.state == "ok" {
			checkNodes(t, r)
		} else if !strings.Contains(st[2].Detail, "HTTP 403") {
			t.Errorf("refused: %q", st[2].Detail)
		}
	}
}

// A test binary never reaches the real metadata address, even with imds: on.
func TestIMDSRealAddressRefusedInTests(t *testing.T) {
	for _, ep := range []string{"http://169.254.169.254", "http://[fd00:ec2::254]"} {
		st := (&Resolver{}).Load(context.Background(), Options{
			Config:    config.Topology{IMDS: "on", IMDSEndpoint: ep, Kubernetes: "off"},
			Timeout:   time.Millisecond,
			HostAddrs: func() ([]netip.Addr, error) { return nil, nil },
		})
		if st[1].State != "error" || !strings.Contains(st[1].Detail, "refusing") {
			t.Errorf("%s: %+v", ep, st[1])
		}
	}
}

// TestNodeNetworksEKSZoneID: an EKS node's zone is its zone ID, as IMDS
// names this host's, not its zone name.
func TestNodeNetworksEKSZoneID(t *testing.T) {
	nets, err := NodeNetworks(strings.NewReader(`{"items":[
	  {"metadata":{"name":"ip-10-0-1-5","labels":{"topology.kubernetes.io/zone":"us-east-1a","topology.k8s.aws/zone-id":"use1-az4","topology.kubernetes.io/region":"us-east-1"}},
	   "status":{"addresses":[{"type":"InternalIP","address":"10.0.1.5"}]}},
	  {"metadata":{"name":"plain","labels":{"topology.kubernetes.io/zone":"us-east-1b"}},
	   "status":{"addresses":[{"type":"InternalIP","address":"10.0.2.5"}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 2 || nets[0].Zone != "use1-az4" || nets[0].Region != "us-east-1" || nets[1].Zone != "us-east-1b" {
		t.Errorf("networks %+v", nets)
	}
}
