package awsenv

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/tallyhq/tally"
)

// isolate hides the machine's AWS settings from one test.
func isolate(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
}

func TestLoadRejectsBadRegionsAndEndpoints(t *testing.T) {
	isolate(t)
	static := Options{AccessKeyID: "k", SecretAccessKey: "s"}
	tests := []struct {
		name string
		opts Options
	}{
		{"no region", static},
		{"not a region", Options{Region: "nowhere", AccessKeyID: "k", SecretAccessKey: "s"}},
		{"upper case", Options{Region: "US-EAST-1", AccessKeyID: "k", SecretAccessKey: "s"}},
		{"endpoint without scheme", Options{Region: "us-east-1", Endpoint: "127.0.0.1:5000", AccessKeyID: "k", SecretAccessKey: "s"}},
		{"endpoint ftp", Options{Region: "us-east-1", Endpoint: "ftp://x", AccessKeyID: "k", SecretAccessKey: "s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(context.Background(), tc.opts)
			if !errors.Is(err, ErrConfig) || !errors.Is(err, tally.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// TestMissingCredentialsIsAClearErrorNotAHang points the EC2 metadata
// service (the last link of the credential chain) at a server that never
// answers, as a black-holed metadata address does: Load must give up with
// ErrConfig instead of waiting for ever.
func TestMissingCredentialsIsAClearErrorNotAHang(t *testing.T) {
	isolate(t)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", hang.URL)
	_, err := Load(context.Background(), Options{Region: "us-east-1"})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	t.Log(err)
}

func TestLoadWithStaticCredentialsAndEndpoint(t *testing.T) {
	isolate(t)
	cfg, err := Load(context.Background(), Options{Region: "eu-west-1", Endpoint: "http://127.0.0.1:9", AccessKeyID: "k", SecretAccessKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-1" || !UsesEmulator(cfg) {
		t.Errorf("region %q, emulator %v", cfg.Region, UsesEmulator(cfg))
	}
	cfg, err = Load(context.Background(), Options{Region: "eu-west-1", AccessKeyID: "k", SecretAccessKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if UsesEmulator(cfg) {
		t.Error("no endpoint, yet UsesEmulator")
	}
	if got := cfg.Retryer().MaxAttempts(); got != MaxAttempts {
		t.Errorf("retryer max attempts %d, want %d", got, MaxAttempts)
	}
}

func TestFromQuery(t *testing.T) {
	t.Parallel()
	base := Options{Region: "us-east-1", Endpoint: "http://a"}
	got := FromQuery(base, url.Values{"region": {"eu-west-2"}})
	if got.Region != "eu-west-2" || got.Endpoint != "http://a" {
		t.Errorf("%+v", got)
	}
	got = FromQuery(base, url.Values{"endpoint": {"http://b"}})
	if got.Region != "us-east-1" || got.Endpoint != "http://b" {
		t.Errorf("%+v", got)
	}
}
