package topology

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"
)

// KubeAPI is how to reach the Kubernetes API server from a pod: the
// in-cluster defaults (InClusterAPI) or a test server.
type KubeAPI struct {
	// Server is the base URL (https://host:port).
	Server string
	// TokenFile is the service account's bearer token; CAFile the CA that
	// signed the server's certificate.
	TokenFile, CAFile string
}

// The service account files every pod gets.
const (
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	kubeMaxBody       = 64 << 20
)

// InClusterAPI returns the API server of the pod's environment
// (KUBERNETES_SERVICE_HOST and _PORT) and its service account files.
func InClusterAPI() (KubeAPI, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return KubeAPI{}, fmt.Errorf("kubernetes api: KUBERNETES_SERVICE_HOST/PORT not set (not running in a pod)")
	}
	return KubeAPI{Server: "https://" + net.JoinHostPort(host, port),
		TokenFile: serviceAccountDir + "/token", CAFile: serviceAccountDir + "/ca.crt"}, nil
}

// The parts of a v1 NodeList the resolver reads.
type nodeList struct {
	Items []node `json:"items"`
}

type node struct {
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR"`
		PodCIDRs []string `json:"podCIDRs"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

// NodeNetworks decodes a node list (the API's JSON) into one network per
// node: its pod CIDRs and InternalIP, in the zone and region of its
// topology.kubernetes.io labels. On EKS the zone is the node's zone ID
// (topology.k8s.aws/zone-id, e.g. use1-az1), the name instance metadata
// gives this host's zone by, rather than its zone name (us-east-1a), which
// maps to a different physical zone in each AWS account.
func NodeNetworks(r io.Reader) ([]Network, error) {
	var nl nodeList
	if err := json.NewDecoder(io.LimitReader(r, kubeMaxBody)).Decode(&nl); err != nil {
		return nil, fmt.Errorf("decode node list: %w", err)
	}
	out := make([]Network, 0, len(nl.Items))
	for i, n := range nl.Items {
		l := n.Metadata.Labels
		nw := Network{Name: n.Metadata.Name, Source: SourceKubernetes,
			Zone:   or(l["topology.k8s.aws/zone-id"], or(l["topology.kubernetes.io/zone"], l["failure-domain.beta.kubernetes.io/zone"])),
			Region: or(l["topology.kubernetes.io/region"], l["failure-domain.beta.kubernetes.io/region"])}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("node list items[%d] (%s) spec.podCIDRs: %w", i, n.Metadata.Name, err)
			}
			nw.Prefixes = append(nw.Prefixes, p.Masked())
		}
		for _, a := range n.Status.Addresses {
			if a.Type != "InternalIP" {
				continue
			}
			ip, err := netip.ParseAddr(a.Address)
			if err != nil {
				return nil, fmt.Errorf("node list items[%d] (%s) InternalIP: %w", i, n.Metadata.Name, err)
			}
			nw.Prefixes = append(nw.Prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		}
		if len(nw.Prefixes) > 0 {
			out = append(out, nw)
		}
	}
	return out, nil
}

// NodeNetworksFile reads a node list saved as JSON (kubectl get nodes -o json).
func NodeNetworksFile(path string) ([]Network, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kubernetes node list: %w", err)
	}
	defer f.Close()
	ns, err := NodeNetworks(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ns, nil
}

// FetchNodeNetworks lists the nodes (GET /api/v1/nodes) from the API
// server with the service account's token.
func FetchNodeNetworks(ctx context.Context, api KubeAPI, timeout time.Duration) ([]Network, error) {
	tok, err := os.ReadFile(api.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("kubernetes api token: %w", err)
	}
	pem, err := os.ReadFile(api.CAFile)
	if err != nil {
		return nil, fmt.Errorf("kubernetes api ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kubernetes api ca %s: no PEM certificate", api.CAFile)
	}
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(api.Server, "/")+"/api/v1/nodes", nil)
	if err != nil {
		return nil, fmt.Errorf("kubernetes api: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubernetes api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("kubernetes api: GET /api/v1/nodes: HTTP %d: %s (the service account needs list on nodes)",
			resp.StatusCode, strings.TrimSpace(string(b)))
	}
	ns, err := NodeNetworks(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("kubernetes api: %w", err)
	}
	return ns, nil
}
