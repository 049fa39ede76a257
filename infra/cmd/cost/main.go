// Command cost prints the monthly cost of each network configuration
// (program.Variants) as a markdown table, on top of a stack's config
// (Pulumi.<stack>.yaml) or the defaults.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/tallyhq/tally/infra/program"
)

func main() {
	stack := flag.String("stack", "", "read Pulumi.<stack>.yaml's config as the base (default: the program's defaults)")
	dir := flag.String("dir", ".", "directory holding Pulumi.<stack>.yaml")
	var u program.Usage
	flag.Float64Var(&u.NATGB, "nat-gb", 5, "GB/month through the NAT (priced only for NAT gateways)")
	flag.Float64Var(&u.SQSGB, "sqs-gb", 1, "GB/month through the SQS interface endpoint")
	flag.Float64Var(&u.EFSStorageGB, "efs-gb", 2, "GB stored on EFS")
	flag.Float64Var(&u.EFSReadGB, "efs-read-gb", 20, "GB/month read from EFS")
	flag.Float64Var(&u.EFSWriteGB, "efs-write-gb", 2, "GB/month written to EFS")
	flag.Parse()
	base := map[string]string{}
	name := program.MockStack
	if *stack != "" {
		var err error
		if base, err = stackConfig(filepath.Join(*dir, "Pulumi."+*stack+".yaml")); err != nil {
			fmt.Fprintln(os.Stderr, "cost:", err)
			os.Exit(1)
		}
		name = *stack
	}
	fmt.Print(program.CostTable(program.CostRows(name, base, u), u))
}

// stackConfig reads a stack file's config as the raw strings Pulumi hands
// the program: scalars as text, lists and objects as JSON; secure values
// are skipped (prices do not depend on them).
func stackConfig(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]string{}
	for k, v := range f.Config {
		switch v := v.(type) {
		case string:
			out[k] = v
		case map[string]any:
			if _, secure := v["secure"]; secure {
				continue
			}
			j, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, k, err)
			}
			out[k] = string(j)
		case []any:
			j, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, k, err)
			}
			out[k] = string(j)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}
