package file

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/blob"
)

func TestKeyPath(t *testing.T) {
	long := strings.Repeat("x", maxEscaped+1)
	for _, tc := range []struct{ key, path string }{
		{"a", "a.o"},
		{"a/b", "a.d/b.o"},
		{"a/b/c", "a.d/b.d/c.o"},
		{"a.o", "a.o.o"},
		{"a.d/b", "a.d.d/b.o"},
		{"a.o/b.d", "a.o.d/b.d.o"},
		{"A", "%41.o"},
		{"Total.JSON", "%54otal.%4a%53%4f%4e.o"},
		{".hidden", "%2ehidden.o"},
		{"..a/.b", "%2e.a.d/%2eb.o"},
		{"a.", "a..o"},
		{"%", "%25.o"},
		{"%41", "%2541.o"},
		{"=x", "%3dx.o"},
		{"a b", "a%20b.o"},
		{"é", "%c3%a9.o"},
		{"收据/été 2026/🧾.json", "%e6%94%b6%e6%8d%ae.d/%c3%a9t%c3%a9%202026.d/%f0%9f%a7%be.json.o"},
		{"images/3f2a-11.png", "images.d/3f2a-11.png.o"},
		{strings.Repeat("x", maxEscaped), strings.Repeat("x", maxEscaped) + ".o"},
		{long, hashStem(long) + ".o"},
		{long + "/a", hashStem(long) + ".d/a.o"},
		{strings.Repeat("é", 40), hashStem(strings.Repeat("é", 40)) + ".o"}, // 80 bytes, 240 escaped
	} {
		if err := blob.ValidateKey(tc.key); err != nil {
			t.Fatalf("table key %q is invalid: %v", tc.key, err)
		}
		if got := keyPath(tc.key); got != filepath.FromSlash(tc.path) {
			t.Errorf("keyPath(%.40q) = %q, want %q", tc.key, got, tc.path)
		}
	}
}

// TestKeyPathsNeverCollide maps keys chosen to look like the encoding
// itself and checks that no two share a file, and no object file is
// another key's directory.
func TestKeyPathsNeverCollide(t *testing.T) {
	long := strings.Repeat("y", 250)
	keys := []string{
		"a", "a/b", "a/b/c", "a.o", "a.d", "a.d/b", "a.o/b", "a.d.o", "a.o.d",
		"A", "%41", "%2541", "%", "%25", ".a", "%2ea", "=", "=a", "%3d",
		long, long + "/a", hashStem(long), hashStem(long) + "/a", strings.TrimPrefix(hashStem(long), hashMark),
		".tmp-0123456789abcdef", "a/.tmp-x", ".presign-key", "é", "e\u0301", "E\u0301",
	}
	files := map[string]string{}
	dirs := map[string]string{}
	for _, k := range keys {
		if err := blob.ValidateKey(k); err != nil {
			t.Fatalf("%q: %v", k, err)
		}
		p := keyPath(k)
		if other, ok := files[p]; ok {
			t.Errorf("keys %q and %q both map to %q", k, other, p)
		}
		files[p] = k
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			dirs[d] = k
		}
		if base := filepath.Base(p); strings.HasPrefix(base, ".") {
			t.Errorf("key %q maps to hidden name %q (reserved for temp files)", k, base)
		}
	}
	for p, k := range files {
		if other, ok := dirs[p]; ok {
			t.Errorf("object file of %q is a directory of %q: %s", k, other, p)
		}
	}
}

func TestUnescapeSegment(t *testing.T) {
	for _, tc := range []struct {
		stem string
		seg  string // "" means rejected
	}{
		{"abc", "abc"},
		{"%41", "A"},
		{"%2eb", ".b"},
		{"a.b", "a.b"},
		{"%c3%a9", "é"},
		{"A", ""},                               // upper case is always escaped
		{"%4A", ""},                             // upper-case hex is not canonical
		{"%61", ""},                             // "a" needs no escape
		{".b", ""},                              // a leading dot is always escaped
		{"%2e", ""},                             // "." is no key segment
		{"%2e%2e", ""},                          // nor ".."
		{"%2f", ""},                             // "/" is no segment byte
		{"%00", ""},                             // control characters neither
		{"%ff", ""},                             // invalid UTF-8
		{"%", ""},                               // truncated escapes
		{"%4", ""},                              //
		{"a%", ""},                              //
		{"%zz", ""},                             //
		{"a=b", ""},                             // never produced
		{"", ""},                                //
		{"a b", ""},                             // space is escaped
		{"%5c", ""},                             // backslash is not allowed in keys
		{strings.Repeat("a", maxEscaped+1), ""}, // would have been hashed
	} {
		got, ok := unescapeSegment(tc.stem)
		if ok != (tc.seg != "") || got != tc.seg {
			t.Errorf("unescapeSegment(%q) = %q, %v; want %q", tc.stem, got, ok, tc.seg)
		}
	}
}

func TestParseName(t *testing.T) {
	h := hashStem("x")
	for _, tc := range []struct {
		name   string
		kind   nameKind
		s      string
		hashed bool
	}{
		{"a.o", kindObject, "a", false},
		{"a.d", kindDir, "a", false},
		{"a.o.d", kindDir, "a.o", false},
		{"%41.o", kindObject, "A", false},
		{h + ".o", kindObject, h, true},
		{h + ".d", kindDir, h, true},
		{"=abc.o", kindOther, "", false},
		{".tmp-0123.o", kindOther, "", false},
		{".presign-key", kindOther, "", false},
		{"queue.db", kindOther, "", false},
		{"A.o", kindOther, "", false},
		{".o", kindOther, "", false},
		{"o", kindOther, "", false},
	} {
		kind, s, hashed := parseName(tc.name)
		if kind != tc.kind || s != tc.s || hashed != tc.hashed {
			t.Errorf("parseName(%q) = %v, %q, %v; want %v, %q, %v", tc.name, kind, s, hashed, tc.kind, tc.s, tc.hashed)
		}
	}
}

// checkMapping verifies what every valid key's path must satisfy: local to
// the root, portable names, and decodable back to the key.
func checkMapping(t *testing.T, key string) {
	p := keyPath(key)
	if !filepath.IsLocal(p) {
		t.Fatalf("keyPath(%q) = %q escapes the root", key, p)
	}
	names := strings.Split(filepath.ToSlash(p), "/")
	segs := strings.Split(key, "/")
	if len(names) != len(segs) {
		t.Fatalf("keyPath(%q) = %q: %d names for %d segments", key, p, len(names), len(segs))
	}
	for i, name := range names {
		if len(name) > 255 || strings.HasPrefix(name, ".") || strings.ToLower(name) != name {
			t.Fatalf("keyPath(%q): name %q is too long, hidden or not lower case", key, name)
		}
		kind, s, hashed := parseName(name)
		want := kindDir
		if i == len(names)-1 {
			want = kindObject
		}
		if kind != want {
			t.Fatalf("keyPath(%q): name %q parses as kind %v, want %v", key, name, kind, want)
		}
		if hashed && s != hashStem(segs[i]) || !hashed && s != segs[i] {
			t.Fatalf("keyPath(%q): name %q decodes to %q, not segment %q", key, name, s, segs[i])
		}
	}
}

func FuzzKeyMapping(f *testing.F) {
	for _, k := range []string{"a", "a/b", "收据/été 2026/🧾.json", ".x/..y", "%41/=", strings.Repeat("é", 120), "A/a"} {
		f.Add(k, "a")
	}
	f.Fuzz(func(t *testing.T, k1, k2 string) {
		if blob.ValidateKey(k1) != nil {
			return
		}
		checkMapping(t, k1)
		if k1 == k2 || blob.ValidateKey(k2) != nil {
			return
		}
		p1, p2 := keyPath(k1), keyPath(k2)
		if p1 == p2 {
			t.Fatalf("keys %q and %q both map to %q", k1, k2, p1)
		}
		if strings.HasPrefix(p2, p1+string(filepath.Separator)) {
			t.Fatalf("object file %q of %q is a directory of %q", p1, k1, k2)
		}
	})
}
