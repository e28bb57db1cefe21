package main

import (
	"context"
	"fmt"
	"io"

	"github.com/netsight/netsight/internal/buildinfo"
)

func init() {
	c := &command{name: "version", summary: "print the version, revision and Go version", order: 90,
		usage: "Usage: netsight version\n\nPrints the version, the VCS revision and the Go toolchain of this binary."}
	c.run = func(_ context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(c, stderr)
		if err := parseFlags(fs, args, stdout); err != nil {
			return err
		}
		fmt.Fprintln(stdout, buildinfo.String())
		return nil
	}
	register(c)
}
