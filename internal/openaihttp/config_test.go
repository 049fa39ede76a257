package openaihttp

import (
	"errors"
	"testing"
	"time"

	"github.com/tallyhq/tally"
)

func TestParseConfigURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw   string
		model string
		ok    bool
	}{
		{"openai://gpt-4o-mini", "gpt-4o-mini", true},
		{"OPENAI://nomic-embed-text:latest?base=http://127.0.0.1:11434/v1", "nomic-embed-text:latest", true},
		{"openai://BAAI%2Fbge-m3?timeout=5s", "BAAI/bge-m3", true},
		{"openai://m?timeout=5s&timeout=6s", "", false},
		{"gpt://m", "", false},
		{"openai://m?%zz", "", false},
		{"openai://%zz", "", false},
	} {
		u, err := ParseConfigURL(c.raw, "openai", "test client")
		if c.ok != (err == nil) || (c.ok && u.Model != c.model) {
			t.Errorf("%q: model %q, err %v", c.raw, u.Model, err)
		}
		if err != nil && !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("%q: %v does not wrap ErrInvalidArgument", c.raw, err)
		}
	}
	u, err := ParseConfigURL("openai://m?base=http://x/v1&timeout=2s&max_retries=0&n=3&bad=-1", "openai", "test client")
	if err != nil {
		t.Fatal(err)
	}
	var base string
	var timeout time.Duration
	var retries, n int
	for _, k := range u.Keys() {
		ok, err := u.Common(k, &base, &timeout, &retries)
		switch k {
		case "n":
			if ok || u.Int(k, &n) != nil {
				t.Errorf("n: common %v", ok)
			}
		case "bad":
			if ok || u.Int(k, &n) == nil {
				t.Error("a negative integer was accepted")
			}
		default:
			if !ok || err != nil {
				t.Errorf("%s: %v %v", k, ok, err)
			}
		}
	}
	if base != "http://x/v1" || timeout != 2*time.Second || retries != -1 || n != 3 {
		t.Errorf("base %q timeout %v retries %d n %d", base, timeout, retries, n)
	}
}

func TestEndpoint(t *testing.T) {
	t.Setenv("TEST_OPENAI_KEY", "")
	if _, _, err := Endpoint("c", "", "https://api.example/v1", "", "TEST_OPENAI_KEY"); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("the default base without a key: %v", err)
	}
	if root, key, err := Endpoint("c", "http://127.0.0.1:1/v1/", "https://api.example/v1", "", "TEST_OPENAI_KEY"); err != nil || root != "http://127.0.0.1:1/v1" || key != "" {
		t.Errorf("a local server without a key: %q %q %v", root, key, err)
	}
	if _, _, err := Endpoint("c", "ftp://x", "https://api.example/v1", "k", "TEST_OPENAI_KEY"); err == nil {
		t.Error("an ftp base was accepted")
	}
	t.Setenv("TEST_OPENAI_KEY", "from-env")
	if _, key, err := Endpoint("c", "", "https://api.example/v1", "", "TEST_OPENAI_KEY"); err != nil || key != "from-env" {
		t.Errorf("key from the environment: %q %v", key, err)
	}
}
