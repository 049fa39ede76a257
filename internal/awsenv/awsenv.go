// Package awsenv builds the one aws.Config every AWS adapter shares, so that
// region, endpoint (an emulator such as moto_server), credentials and the
// retry policy are decided in one place, and so that a missing credential
// or a wrong region is one clear error at start-up instead of a hang on the
// first queue poll.
package awsenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/tallyhq/tally"
)

// Retry policy: DynamoDB throttling, S3 503 SlowDown and SQS 5xx are retried
// with jittered exponential backoff. The client-side retry quota is off
// (ratelimit.None): a busy worker pool sharing one client must not turn a
// burst of throttles into "retry quota exceeded" failures.
const (
	MaxAttempts = 10
	MaxBackoff  = 5 * time.Second
)

// CheckTimeout bounds the start-up credential lookup. Without a bound the
// SDK's default chain may wait on the EC2 metadata service, which looks
// like a hang where there is none.
const CheckTimeout = 5 * time.Second

// ErrConfig marks an AWS configuration that cannot work (no region, an
// invalid region, no credentials). It matches tally.ErrInvalidArgument.
var ErrConfig = fmt.Errorf("aws configuration: %w", tally.ErrInvalidArgument)

// Options select the account, region and endpoint. Empty fields fall back
// to the SDK's usual sources (AWS_REGION, AWS_ENDPOINT_URL, the credential
// chain).
type Options struct {
	// Region is the AWS region, e.g. "us-east-1".
	Region string
	// Endpoint overrides every service's endpoint (an emulator such as
	// moto_server: "http://127.0.0.1:5000"). With an endpoint set, S3
	// clients use path-style addressing.
	Endpoint string
	// AccessKeyID and SecretAccessKey give static credentials (tests and
	// emulators); empty means the default chain (environment, profile,
	// the Lambda role).
	AccessKeyID, SecretAccessKey string
	// HTTPClient replaces the SDK's HTTP client (tests inject faults here).
	// It is set after loading, so AWS_CA_BUNDLE does not apply to it.
	HTTPClient aws.HTTPClient
}

// FromQuery reads region and endpoint from a port URL's query
// (sqs://?region=us-east-1&endpoint=http://127.0.0.1:5000), so each port
// URL can name its own; unset keys keep base's values.
func FromQuery(base Options, q url.Values) Options {
	if v := q.Get("region"); v != "" {
		base.Region = v
	}
	if v := q.Get("endpoint"); v != "" {
		base.Endpoint = v
	}
	return base
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// Load builds the shared aws.Config and checks it: the region must look
// like an AWS region and credentials must resolve within CheckTimeout.
// Both failures wrap ErrConfig and say what to set.
func Load(ctx context.Context, opts Options) (aws.Config, error) {
	load := []func(*config.LoadOptions) error{
		config.WithRetryer(NewRetryer),
	}
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Endpoint != "" {
		if u, err := url.Parse(opts.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return aws.Config{}, fmt.Errorf("endpoint %q is not an http(s) URL: %w", opts.Endpoint, ErrConfig)
		}
		load = append(load, config.WithBaseEndpoint(opts.Endpoint))
	}
	if opts.AccessKeyID != "" {
		load = append(load, config.WithCredentialsProvider(aws.CredentialsProviderFunc(
			func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: opts.AccessKeyID, SecretAccessKey: opts.SecretAccessKey, Source: "tally static"}, nil
			})))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w: %w", ErrConfig, err)
	}
	if opts.HTTPClient != nil {
		// Set after loading: with AWS_CA_BUNDLE in the environment the
		// loader refuses any client but its own buildable one.
		cfg.HTTPClient = opts.HTTPClient
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS region: set AWS_REGION or add ?region= to the port URL: %w", ErrConfig)
	}
	if !regionPattern.MatchString(cfg.Region) {
		return aws.Config{}, fmt.Errorf("%q is not an AWS region (want e.g. us-east-1): %w", cfg.Region, ErrConfig)
	}
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return aws.Config{}, fmt.Errorf("resolve aws credentials: %w", ctx.Err())
		}
		return aws.Config{}, fmt.Errorf("no AWS credentials found within %v (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an IAM role): %w: %w", CheckTimeout, ErrConfig, err)
	}
	return cfg, nil
}

// NewRetryer is the retry policy of every Tally AWS client (see MaxAttempts).
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxBackoff
		o.RateLimiter = ratelimit.None
	})
}

// UsesEmulator reports whether cfg points at a custom endpoint, in which
// case S3 must use path-style addressing (bucket in the path, not the host).
func UsesEmulator(cfg aws.Config) bool { return cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" }

// DefaultOptions reads the process-wide AWS settings Tally adds to the
// SDK's own: TALLY_AWS_ENDPOINT (an emulator for every service).
func DefaultOptions() Options {
	return Options{Endpoint: os.Getenv("TALLY_AWS_ENDPOINT")}
}
