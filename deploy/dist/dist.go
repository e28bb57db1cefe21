package dist

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// Formats are the package formats Build makes.
var Formats = []string{"deb", "rpm"}

// Options of one package build.
type Options struct {
	// Config is deploy/package/nfpm.yaml; paths in it are relative to its
	// directory.
	Config string
	// Binary is the static netsight binary for Arch.
	Binary string
	// Arch is a Go architecture (amd64, arm64).
	Arch string
	// Version is `git describe` output or a release version (v1.2.3).
	Version string
	// Format is deb or rpm.
	Format string
	// OutDir receives the package.
	OutDir string
}

var release = regexp.MustCompile(`^v?([0-9]+\.[0-9]+\.[0-9]+)$`)

// PackageVersion turns a git describe string into a package version: a
// release tag v1.2.3 gives 1.2.3; anything else 0.0.0~git<describe>, which
// sorts before every release in dpkg and rpm.
func PackageVersion(describe string) string {
	if m := release.FindStringSubmatch(describe); m != nil {
		return m[1]
	}
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.':
			return r
		}
		return '.'
	}, strings.TrimPrefix(describe, "v"))
	return "0.0.0~git" + clean
}

// Build writes one package and returns its path.
func Build(o Options) (string, error) {
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("binary: %w", err)
	}
	env := map[string]string{"ARCH": o.Arch, "VERSION": PackageVersion(o.Version), "BINARY": bin}
	cfg, err := nfpm.ParseFileWithEnvMapping(o.Config, func(k string) string { return env[k] })
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", o.Config, err)
	}
	info, err := cfg.Get(o.Format)
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	// Relative sources are relative to the config file, whatever the
	// working directory.
	base := filepath.Dir(o.Config)
	for _, c := range info.Contents {
		if c.Source != "" && !filepath.IsAbs(c.Source) {
			c.Source = filepath.Join(base, c.Source)
		}
	}
	for _, s := range []*string{&info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove} {
		if *s != "" && !filepath.IsAbs(*s) {
			*s = filepath.Join(base, *s)
		}
	}
	if err := nfpm.PrepareForPackager(info, o.Format); err != nil {
		return "", fmt.Errorf("%s: %w", o.Format, err)
	}
	pkgr, err := nfpm.Get(o.Format)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.OutDir, pkgr.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := pkgr.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("package %s: %w", o.Format, err)
	}
	return path, f.Close()
}
