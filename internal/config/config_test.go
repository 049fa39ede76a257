package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

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
	} {
		if _, err := c.Resolve(); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Resolve(%+v) error = %v, want ErrInvalidArgument", c, err)
		}
	}
}
