// Command infra is Tally's Pulumi program (see README.md); `pulumi up` in
// this directory runs it.
package main

import (
	"encoding/json"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/tallyhq/tally/infra/program"
)

func main() {
	pulumi.Run(program.Run(program.Options{ConfigKeys: configKeys}))
}

// configKeys lists the stack's config keys, which the engine passes in
// PULUMI_CONFIG (the SDK does not expose the list).
func configKeys() []string {
	var m map[string]any
	_ = json.Unmarshal([]byte(os.Getenv(pulumi.EnvConfig)), &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
