package topology

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// IMDSInfo is what the instance metadata service says about this host.
type IMDSInfo struct {
	ZoneID, Region string
	// Networks are one per interface subnet (named by subnet ID, in this
	// host's zone) and one per VPC (named by VPC ID, zone unknown).
	Networks []Network
	Host     Place
}

const imdsMaxBody = 64 << 10

// errIMDSNotFound is a 404 for an optional key.
var errIMDSNotFound = errors.New("not found")

// FetchIMDS asks the IMDSv2 service at endpoint (http://169.254.169.254 on
// EC2) for this host's zone ID, region and its interfaces' subnet and VPC
// CIDRs: a session token first (PUT), then GETs with it. Each request is
// bounded by timeout.
func FetchIMDS(ctx context.Context, endpoint string, timeout time.Duration) (IMDSInfo, error) {
	c := &imdsClient{base: strings.TrimSuffix(endpoint, "/"), hc: &http.Client{Timeout: timeout,
		// Never follow a redirect off the metadata service.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: false}}}
	var info IMDSInfo
	if err := c.token(ctx); err != nil {
		return info, err
	}
	var err error
	if info.ZoneID, err = c.get(ctx, "placement/availability-zone-id"); err != nil {
		return info, err
	}
	if info.Region, err = c.get(ctx, "placement/region"); err != nil {
		return info, err
	}
	macs, err := c.get(ctx, "network/interfaces/macs/")
	if err != nil {
		return info, err
	}
	info.Host = Place{Zone: info.ZoneID, Region: info.Region, Source: SourceIMDS}
	vpcs := map[string]bool{}
	for _, mac := range lines(macs) {
		mac = strings.TrimSuffix(mac, "/")
		base := "network/interfaces/macs/" + mac + "/"
		subnet, err := c.get(ctx, base+"subnet-id")
		if err != nil {
			return info, err
		}
		vpc, err := c.get(ctx, base+"vpc-id")
		if err != nil {
			return info, err
		}
		sn := Network{Name: subnet, Zone: info.ZoneID, VPC: vpc, Region: info.Region, Source: SourceIMDS}
		for _, key := range []string{"subnet-ipv4-cidr-block", "subnet-ipv6-cidr-blocks"} {
			if err := c.prefixes(ctx, base+key, &sn.Prefixes); err != nil {
				return info, err
			}
		}
		info.Networks = append(info.Networks, sn)
		if info.Host.Network == "" {
			info.Host.Network, info.Host.VPC = subnet, vpc
		}
		if vpc != "" && !vpcs[vpc] {
			vpcs[vpc] = true
			vn := Network{Name: vpc, VPC: vpc, Region: info.Region, Source: SourceIMDS}
			for _, key := range []string{"vpc-ipv4-cidr-blocks", "vpc-ipv6-cidr-blocks"} {
				if err := c.prefixes(ctx, base+key, &vn.Prefixes); err != nil {
					return info, err
				}
			}
			info.Networks = append(info.Networks, vn)
		}
	}
	return info, nil
}

type imdsClient struct {
	base string
	hc   *http.Client
	tok  string
}

func (c *imdsClient) token(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+"/latest/api/token", nil)
	if err != nil {
		return fmt.Errorf("imds token: %w", err)
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("imds token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, imdsMaxBody))
	if err != nil {
		return fmt.Errorf("imds token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("imds token refused: HTTP %d (IMDSv2 disabled, or hop limit 1 and the agent in a container?)", resp.StatusCode)
	}
	c.tok = strings.TrimSpace(string(body))
	if c.tok == "" {
		return errors.New("imds token: empty answer")
	}
	return nil
}

func (c *imdsClient) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/latest/meta-data/"+path, nil)
	if err != nil {
		return "", fmt.Errorf("imds %s: %w", path, err)
	}
	req.Header.Set("X-aws-ec2-metadata-token", c.tok)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("imds %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, imdsMaxBody))
	if err != nil {
		return "", fmt.Errorf("imds %s: %w", path, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return strings.TrimSpace(string(body)), nil
	case http.StatusNotFound:
		return "", fmt.Errorf("imds %s: %w", path, errIMDSNotFound)
	}
	return "", fmt.Errorf("imds %s: HTTP %d", path, resp.StatusCode)
}

// prefixes appends the CIDRs (one a line) of an optional key.
func (c *imdsClient) prefixes(ctx context.Context, path string, out *[]netip.Prefix) error {
	v, err := c.get(ctx, path)
	if errors.Is(err, errIMDSNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, l := range lines(v) {
		p, err := netip.ParsePrefix(l)
		if err != nil {
			return fmt.Errorf("imds %s: %w", path, err)
		}
		*out = append(*out, p.Masked())
	}
	return nil
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// OnEC2 reports whether sysfs (its root, e.g. /sys) says this machine is
// an Amazon EC2 instance (class/dmi/id/sys_vendor or board_vendor).
func OnEC2(sysfs string) bool {
	for _, f := range []string{"sys_vendor", "board_vendor"} {
		b, err := os.ReadFile(filepath.Join(sysfs, "class", "dmi", "id", f))
		if err == nil && bytes.Contains(b, []byte("Amazon EC2")) {
			return true
		}
	}
	return false
}
