// Command nspkg builds netsight's .deb and .rpm packages for the binaries
// `make dist` built: dist/netsight-linux-<arch> -> dist/netsight_<ver>_<arch>.deb, .rpm.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/netsight/netsight/deploy/dist"
)

func main() {
	cfg := flag.String("config", "package/nfpm.yaml", "nfpm `file`")
	dir := flag.String("dist", "../dist", "`directory` with netsight-linux-<arch> binaries; packages are written here")
	version := flag.String("version", "dev", "version (git describe)")
	arches := flag.String("arch", "amd64,arm64", "comma-separated Go architectures")
	flag.Parse()
	for _, arch := range strings.Split(*arches, ",") {
		for _, format := range dist.Formats {
			p, err := dist.Build(dist.Options{
				Config: *cfg, Binary: filepath.Join(*dir, "netsight-linux-"+arch), Arch: arch,
				Version: *version, Format: format, OutDir: *dir,
			})
			if err != nil {
				fmt.Fprintf(os.Stderr, "nspkg: %s %s: %v\n", arch, format, err)
				os.Exit(1)
			}
			fmt.Println(p)
		}
	}
}
