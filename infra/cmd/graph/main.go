// Command graph runs the Pulumi program under its mocks, once per
// configuration in program.Variants, and writes each resource graph to
// <out>/<variant>.json so that reviewers can diff what a change does to
// the infrastructure without a cloud account.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tallyhq/tally/infra/program"
)

func main() {
	out := flag.String("out", "graphs", "directory to write <variant>.json into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "graph:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, v := range program.Variants {
		b, err := program.GenerateGraph(v)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, v.Name+".json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}
