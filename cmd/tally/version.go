package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/tallyhq/tally"
)

func runVersion(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tally %s (%s, %s/%s)\n", tally.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
