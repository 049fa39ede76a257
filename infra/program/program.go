// Package program is Tally's AWS infrastructure as a Pulumi program: the
// network of the old system (VPC, NAT instance, endpoints) with its faults
// fixed, the queues, table, buckets, optional EFS, and the three Lambda
// functions. It is a package, not main, so that the graph and cost commands
// and the tests run the very same code under Pulumi's mocks.
package program

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Options hold what differs between a real deployment and a mocked run.
type Options struct {
	// ConfigKeys lists every config key the stack has, so that a misspelt
	// tally: key is an error rather than a silently ignored value.
	ConfigKeys func() []string
	// CheckArtifact is called with each function's zip path before
	// anything is registered. Nil means os.Stat: `pulumi up` without `make
	// lambda` then fails with one clear message instead of a provider
	// error halfway through. Mocked runs pass a function that accepts all.
	CheckArtifact func(path string) error
}

// Run returns the Pulumi program.
func Run(opts Options) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		var all []string
		if opts.ConfigKeys != nil {
			all = opts.ConfigKeys()
		}
		cfg, err := ParseConfig(ctx.Stack(), ctx.GetConfig, all)
		if err != nil {
			return err
		}
		check := opts.CheckArtifact
		if check == nil {
			check = statArtifact
		}
		for _, role := range Roles {
			if err := check(cfg.Artifact(role)); err != nil {
				return fmt.Errorf("function %s: %w", role, err)
			}
		}
		return Deploy(ctx, cfg)
	}
}

func statArtifact(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("lambda artifact %s: %w (run `make lambda` in the repository root first, or set %s:artifactDir)", path, err, Namespace)
	}
	return nil
}

// Artifact is the zip of a function's role, produced by `make lambda`.
func (c *Config) Artifact(role string) string {
	return filepath.ToSlash(filepath.Join(c.ArtifactDir, role+".zip"))
}

// Deploy registers every resource of a validated config.
func Deploy(ctx *pulumi.Context, cfg Config) error {
	if cfg.Egress == EgressNone {
		ctx.Log.Warn("egress is none: the functions reach AWS only through the endpoints; Google Places and OpenAI are unreachable (merchants then come from similar receipts only, and only a hashed:// or in-VPC embedder works)", nil)
	}
	net, err := newNetwork(ctx, &cfg)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	st, err := newStorage(ctx, &cfg, net)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	fns, err := newFunctions(ctx, &cfg, net, st)
	if err != nil {
		return fmt.Errorf("functions: %w", err)
	}
	ctx.Export("vpcId", net.vpc.ID())
	ctx.Export("apiUrl", fns.api.ApiEndpoint)
	ctx.Export("tableName", st.table.Name)
	ctx.Export("rawBucket", st.buckets[BucketRaw].Bucket)
	ctx.Export("assetsBucket", st.buckets[BucketAssets].Bucket)
	ctx.Export("vectorsBucket", st.buckets[BucketVectors].Bucket)
	for _, q := range Queues {
		ctx.Export(q+"QueueUrl", st.queues[q].Url)
	}
	// The OCR worker runs outside Lambda (it needs Tesseract): these are
	// the values to give it.
	worker := st.env(&cfg)
	worker["AWS_REGION"] = pulumi.String(cfg.Region)
	ctx.Export("ocrWorkerEnv", worker)
	return nil
}

func tags(c *Config, name string) pulumi.StringMap {
	return pulumi.StringMap{
		"Name":    pulumi.String(c.NamePrefix + name),
		"project": pulumi.String("tally"),
		"stack":   pulumi.String(c.Stack),
	}
}
