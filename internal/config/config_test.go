package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
)

func TestResolveDefaultsUnderDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := Config{DataDir: dir}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"queue": c.QueueURL, "blob": c.BlobURL, "items": c.ItemsURL} {
		u, err := ParseURL(got)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(u.Path, dir+string(filepath.Separator)) {
			t.Errorf("%s URL %q is not under the data directory %q", name, got, dir)
		}
	}
	if c.Addr != DefaultAddr || c.PublicURL != "http://"+DefaultAddr {
		t.Errorf("addr %q public %q", c.Addr, c.PublicURL)
	}
}

func TestResolveKeepsExplicitURLs(t *testing.T) {
	t.Parallel()
	c, err := Config{DataDir: t.TempDir(), QueueURL: "sqlite:///var/q.db"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if c.QueueURL != "sqlite:///var/q.db" {
		t.Errorf("queue URL rewritten to %q", c.QueueURL)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw        string
		wantScheme string
		wantPath   string
		wantErr    bool
	}{
		{raw: "sqlite:///abs/q.db", wantScheme: "sqlite", wantPath: "/abs/q.db"},
		{raw: "sqlite://rel/q.db", wantScheme: "sqlite", wantPath: "rel/q.db"},
		{raw: "S3://bucket/prefix?region=eu-west-1", wantScheme: "s3", wantPath: "bucket/prefix"},
		{raw: "dynamodb://Table", wantScheme: "dynamodb", wantPath: "Table"},
		{raw: "no-scheme", wantErr: true},
		{raw: "://x", wantErr: true},
		{raw: "file://", wantErr: true},
		{raw: "file://x?%zz", wantErr: true},
	}
	for _, tt := range tests {
		u, err := ParseURL(tt.raw)
		if tt.wantErr {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Errorf("ParseURL(%q) error = %v, want ErrInvalidArgument", tt.raw, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		if u.Scheme != tt.wantScheme || u.Path != tt.wantPath {
			t.Errorf("ParseURL(%q) = %q %q, want %q %q", tt.raw, u.Scheme, u.Path, tt.wantScheme, tt.wantPath)
		}
	}
	if u, _ := ParseURL("s3://b/p?region=eu-west-1"); u.Query.Get("region") != "eu-west-1" {
		t.Errorf("query not parsed: %v", u.Query)
	}
}

func TestResolveRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{
		{DataDir: t.TempDir(), BlobURL: "nowhere"},
		{DataDir: t.TempDir(), LogFormat: "xml"},
		{DataDir: t.TempDir(), VectorMode: "nfs"},
		{DataDir: t.TempDir(), VectorMode: "efs"}, // no mount
		{DataDir: t.TempDir(), EmbedderURL: "hashed"},
		{DataDir: t.TempDir(), RenditionSizes: []int{300, -1}},
		{DataDir: t.TempDir(), Visibility: -time.Second},
		{DataDir: t.TempDir(), Visibility: time.Second},
		{DataDir: t.TempDir(), Visibility: 13 * time.Hour},
	} {
		if _, err := c.Resolve(); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Resolve(%+v) error = %v, want ErrInvalidArgument", c, err)
		}
	}
}

func TestSeedNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want func(Config) string // "" when right, else what is wrong
	}{
		{"table", map[string]string{SeedTableName: "receipts-dev"}, func(c Config) string {
			if c.ItemsURL != "dynamodb://receipts-dev" {
				return "items URL " + c.ItemsURL
			}
			return ""
		}},
		{"own items URL wins", map[string]string{SeedTableName: "old", EnvItemsURL: "dynamodb://new"}, func(c Config) string {
			if c.ItemsURL != "dynamodb://new" {
				return "items URL " + c.ItemsURL
			}
			return ""
		}},
		{"queue URLs", map[string]string{SeedOCRJobsQueue: "https://sqs.us-east-1.amazonaws.com/1/jobs-dev", SeedOCRResultsQueue: "https://sqs.us-east-1.amazonaws.com/1/results-dev"}, func(c Config) string {
			if c.QueueURL != "sqs://" || c.QueueURLs["ocr-jobs"] != "https://sqs.us-east-1.amazonaws.com/1/jobs-dev" || c.QueueURLs["ocr-results"] != "https://sqs.us-east-1.amazonaws.com/1/results-dev" {
				return fmt.Sprintf("queue %q urls %v", c.QueueURL, c.QueueURLs)
			}
			return ""
		}},
		{"own queue URL wins", map[string]string{SeedOCRJobsQueue: "https://old", EnvOCRJobsQueueURL: "https://new"}, func(c Config) string {
			if c.QueueURLs["ocr-jobs"] != "https://new" {
				return fmt.Sprint(c.QueueURLs)
			}
			return ""
		}},
		{"chroma", map[string]string{SeedVectorBucket: "chroma-dev", SeedStorageMode: "efs", SeedChromaRoot: "/mnt/chroma"}, func(c Config) string {
			if c.VectorBlobURL != "s3://chroma-dev" || c.VectorMode != "efs" || c.VectorMount != "/mnt/chroma" {
				return fmt.Sprintf("vector blob %q mode %q mount %q", c.VectorBlobURL, c.VectorMode, c.VectorMount)
			}
			return ""
		}},
		{"own vector mode wins", map[string]string{SeedStorageMode: "efs", EnvVectorMode: "s3"}, func(c Config) string {
			if c.VectorMode != "s3" {
				return "mode " + c.VectorMode
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return tc.env[k] }
			c := Config{ItemsURL: getenv(EnvItemsURL), VectorMode: getenv(EnvVectorMode)}
			c.applySeed(getenv)
			if msg := tc.want(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestResolveRejectsBadAWSSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{
		{QueueURLs: map[string]string{"ocr-jobs": "jobs-dev"}, QueueURL: "sqs://"},
		{QueueURLs: map[string]string{"ocr-jobs": "https://sqs/1/jobs"}, QueueURL: "sqlite:///q.db"},
		{Role: "everything"},
	} {
		c.DataDir = t.TempDir()
		if _, err := c.Resolve(); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("%+v: err %v, want ErrInvalidArgument", c, err)
		}
	}
}

// TestREADMEDocumentsEverySetting keeps the README's settings table
// complete: every environment variable Tally reads has a row.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`= "([A-Z][A-Z0-9_]+)"`).FindAllStringSubmatch(string(src), -1)
	names = append(names, []string{"", "OPENAI_API_KEY"}, []string{"", "GOOGLE_PLACES_API_KEY"}, []string{"", "AWS_REGION"})
	for _, m := range names {
		if !strings.Contains(string(readme), "| `"+m[1]+"`") {
			t.Errorf("README.md has no settings-table row for %s", m[1])
		}
	}
}

func TestParseRenditionSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []int
	}{
		{"300", []int{300}},
		{"300, 600,full", []int{300, 600, 0}},
		{"0", []int{0}},
		{"", nil},
		{"300,", nil},
		{"-1", nil},
		{"big", nil},
		{"300px", nil},
	}
	for _, tc := range tests {
		got, err := ParseRenditionSizes(tc.in)
		if tc.want == nil {
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Errorf("ParseRenditionSizes(%q) = %v, %v; want ErrInvalidArgument", tc.in, got, err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseRenditionSizes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestBadRenditionSizesFromEnv: a bad TALLY_RENDITION_SIZES is reported by
// name when the configuration is resolved, never silently defaulted.
func TestBadRenditionSizesFromEnv(t *testing.T) {
	t.Setenv(EnvRenditionSizes, "300,big")
	t.Setenv(EnvDataDir, t.TempDir())
	_, err := FromEnv().Resolve()
	if !errors.Is(err, tally.ErrInvalidArgument) || !strings.Contains(err.Error(), EnvRenditionSizes+"=300,big") {
		t.Fatalf("Resolve with %s=300,big: %v", EnvRenditionSizes, err)
	}
	t.Setenv(EnvRenditionSizes, "300, full")
	c, err := FromEnv().Resolve()
	if err != nil || fmt.Sprint(c.RenditionSizes) != "[300 0]" {
		t.Fatalf("Resolve with %s=300, full: %v, %v", EnvRenditionSizes, c.RenditionSizes, err)
	}
}

func TestVisibilityFromEnv(t *testing.T) {
	t.Setenv(EnvDataDir, t.TempDir())
	for _, tc := range []struct {
		value string
		want  time.Duration
		bad   bool
	}{
		{"10s", 10 * time.Second, false},
		{"2m", 2 * time.Minute, false},
		{"ten", 0, true},
		{"0s", 0, true},
		{"-5s", 0, true},
		{"1s", 0, true}, // under MinVisibility: heartbeats would race
	} {
		t.Setenv(EnvVisibility, tc.value)
		c, err := FromEnv().Resolve()
		switch {
		case tc.bad && !errors.Is(err, tally.ErrInvalidArgument):
			t.Errorf("%s=%s: error %v, want ErrInvalidArgument", EnvVisibility, tc.value, err)
		case !tc.bad && (err != nil || c.Visibility != tc.want):
			t.Errorf("%s=%s: %v, %v; want %v", EnvVisibility, tc.value, c.Visibility, err, tc.want)
		}
	}
}

func TestSearchFirstBytesFromEnv(t *testing.T) {
	t.Setenv(EnvDataDir, t.TempDir())
	if c, err := FromEnv().Resolve(); err != nil || c.SearchFirstBytes != DefaultSearchFirstBytes {
		t.Fatalf("unset: %d, %v; want the default %d", c.SearchFirstBytes, err, DefaultSearchFirstBytes)
	}
	for _, tc := range []struct {
		value string
		want  int64
		bad   bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"-1", 0, true},
		{"lots", 0, true},
	} {
		t.Setenv(EnvSearchFirstBytes, tc.value)
		c, err := FromEnv().Resolve()
		switch {
		case tc.bad && !errors.Is(err, tally.ErrInvalidArgument):
			t.Errorf("%s=%s: error %v, want ErrInvalidArgument", EnvSearchFirstBytes, tc.value, err)
		case !tc.bad && (err != nil || c.SearchFirstBytes != tc.want):
			t.Errorf("%s=%s: %d, %v; want %d", EnvSearchFirstBytes, tc.value, c.SearchFirstBytes, err, tc.want)
		}
	}
}
