package file

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/blob/blobtest"
)

// newTestStore opens a store on a fresh root with its Handler served at
// /blob/ by an httptest server, as tally serve mounts it.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s, err := Open(t.TempDir(), Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(PathPrefix, s.Handler())
	return s
}

var caps = blobtest.Capabilities{Presign: true, PresignEnforced: true}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newTestStore(t) }, caps)
}

// TestConformanceShared runs the suite with every subtest on one store, as
// they share one bucket on S3, to show that subtests stay apart. Presigned
// URLs are covered above; their expiry test would only wait again.
func TestConformanceShared(t *testing.T) {
	s := newTestStore(t)
	blobtest.Run(t, func(*testing.T) blob.Store { return s }, blobtest.Capabilities{})
}

func TestOpenErrors(t *testing.T) {
	root := t.TempDir()
	for name, opts := range map[string]Options{
		"short secret":    {Secret: []byte("short")},
		"relative URL":    {BaseURL: "/just/a/path"},
		"non-HTTP URL":    {BaseURL: "ftp://example.com"},
		"query in URL":    {BaseURL: "http://example.com/?x=1"},
		"unparsable URL":  {BaseURL: "http://[::1"},
		"no host":         {BaseURL: "http://"},
		"empty root path": {},
	} {
		r := root
		if name == "empty root path" {
			r = ""
		}
		if _, err := Open(r, opts); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("%s: Open error = %v, want ErrInvalidArgument", name, err)
		}
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, Options{}); err == nil {
		t.Error("Open on a regular file succeeded")
	}
}

func TestPresignKeyPersists(t *testing.T) {
	root := t.TempDir()
	s1, err := Open(root, Options{BaseURL: "http://tally.example"})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != secretBytes {
		t.Errorf("presign key: mode %v, %d bytes; want 0600, %d", fi.Mode().Perm(), fi.Size(), secretBytes)
	}
	if _, err := s1.Put(t.Context(), "k", strings.NewReader("persisted"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	u, err := s1.PresignGet(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "http://tally.example/blob/k?") {
		t.Errorf("URL %q does not start with BaseURL/blob/KEY", u)
	}

	// Reopened (a restart), the store serves the URL it made before.
	s2, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s2.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "persisted" {
		t.Errorf("GET after reopen: %d %q", rec.Code, rec.Body)
	}
	// Another secret refuses it.
	s3, err := Open(root, Options{Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	s3.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("GET with another secret: %d, want 403", rec.Code)
	}

	// Without a BaseURL there is nothing to point a URL at.
	if _, err := s2.PresignGet(t.Context(), "k", time.Minute); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("PresignGet without BaseURL: %v, want ErrInvalidArgument", err)
	}
	// A damaged key file is reported, not silently replaced.
	if err := os.WriteFile(filepath.Join(root, keyFile), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, Options{}); err == nil {
		t.Error("Open with a truncated presign key succeeded")
	}
}

func TestHandlerRefusals(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.Put(t.Context(), "a/b", strings.NewReader("data"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	good, err := s.PresignGet(t.Context(), "a/b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	goodPut, err := s.PresignPut(t.Context(), "a/b", "text/plain", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, url, contentType string
		code                           int
		msg                            string
	}{
		{"ok", http.MethodGet, good, "", http.StatusOK, "data"},
		{"delete", http.MethodDelete, good, "", http.StatusMethodNotAllowed, "not allowed"},
		{"head", http.MethodHead, good, "", http.StatusMethodNotAllowed, ""},
		{"no signature", http.MethodGet, strings.Split(good, "?")[0], "", http.StatusForbidden, "not a presigned URL"},
		{"bad signature", http.MethodGet, good[:len(good)-4] + "0000", "", http.StatusForbidden, "signature does not match"},
		{"expiry edited", http.MethodGet, strings.Replace(good, "expires=", "expires=9", 1), "", http.StatusForbidden, "signature does not match"},
		{"content type edited", http.MethodPut, strings.Replace(goodPut, "content-type=text%2Fplain", "content-type=text%2Fhtml", 1), "text/html", http.StatusForbidden, "signature does not match"},
		{"wrong content type", http.MethodPut, goodPut, "text/html", http.StatusForbidden, `Content-Type "text/html" does not match the "text/plain"`},
		{"missing content type", http.MethodPut, goodPut, "", http.StatusForbidden, "does not match"},
		{"key edited", http.MethodGet, strings.Replace(good, "/blob/a/b", "/blob/a/c", 1), "", http.StatusForbidden, "signature does not match"},
		{"GET URL used to PUT", http.MethodPut, good, "text/plain", http.StatusForbidden, ""},
		{"PUT URL used to GET", http.MethodGet, goodPut, "", http.StatusForbidden, ""},
		{"bad key", http.MethodGet, strings.Replace(good, "/blob/a/b", "/blob/a//b", 1), "", http.StatusBadRequest, "empty path segment"},
		{"outside prefix", http.MethodGet, strings.Replace(good, "/blob/a/b", "/elsewhere/a/b", 1), "", http.StatusNotFound, "not a blob URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.url, strings.NewReader("new"))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.msg) {
				t.Errorf("%s %s: %d %q; want %d containing %q", tc.method, tc.url, rec.Code, rec.Body, tc.code, tc.msg)
			}
		})
	}
	if b, err := blob.ReadAll(t.Context(), s, "a/b"); err != nil || string(b) != "data" {
		t.Errorf("after refused requests: %q, %v", b, err)
	}
}

func TestCorruptObjectFile(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	for _, key := range []string{"ok", "bad/one"} {
		if _, err := s.Put(ctx, key, strings.NewReader("some data"), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(s.Root(), keyPath("bad/one"))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"truncated":     raw[:len(raw)-2],
		"extended":      append(slices.Clone(raw), 'x'),
		"header bit":    func() []byte { b := slices.Clone(raw); b[30] ^= 1; return b }(),
		"empty":         nil,
		"not ours":      []byte("hello"),
		"only magic":    []byte(magic),
		"other key":     (meta{key: "bad/two", contentType: "x"}).encode(),
		"huge header":   append([]byte(magic), 0xff, 0xff, 0xff, 0xff),
		"short content": append((meta{key: "bad/one", contentType: "x", size: 9}).encode(), "abc"...),
	} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Get(ctx, "bad/one")
		if err == nil || errors.Is(err, tally.ErrNotFound) {
			t.Errorf("%s: Get error = %v, want a corruption error", name, err)
		}
		if _, err := s.Head(ctx, "bad/one"); err == nil {
			t.Errorf("%s: Head succeeded", name)
		}
		if _, err := s.List(ctx, blob.ListOptions{}); err == nil {
			t.Errorf("%s: List succeeded", name)
		}
		if _, err := s.List(ctx, blob.ListOptions{Delimiter: "/"}); err != nil {
			t.Errorf("%s: List with delimiter (not reading the file) = %v", name, err)
		}
	}
}

func TestStaleTempFilesCleaned(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "dir/keep", strings.NewReader("kept"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(filepath.Join(root, keyPath("dir/keep")))
	old := filepath.Join(dir, tempPrefix+"0000000000000001")
	fresh := filepath.Join(dir, tempPrefix+"0000000000000002")
	emptyDir := filepath.Join(root, "gone.d", "deeper.d")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(emptyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := time.Now().Add(-2 * staleTempAge)
	if err := os.Chtimes(old, stale, stale); err != nil {
		t.Fatal(err)
	}
	objs, cps := listKeys(t, s, blob.ListOptions{Delimiter: "/"})
	if len(objs) != 0 || !slices.Equal(cps, []string{"dir/"}) {
		t.Errorf("List with temp files and an empty directory = %q %q; want only dir/", objs, cps)
	}
	if _, err := Open(root, Options{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{old: false, fresh: true, filepath.Join(root, "gone.d"): false, filepath.Join(root, keyPath("dir/keep")): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("after Open: %s exists = %v, want %v", p, err == nil, want)
		}
	}
}

// listKeys lists everything (one page is enough in these tests).
func listKeys(t *testing.T, s *Store, opts blob.ListOptions) (objs, cps []string) {
	t.Helper()
	page, err := s.List(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if page.NextToken != "" {
		t.Fatal("listing needs more than one page")
	}
	for _, o := range page.Objects {
		objs = append(objs, o.Key)
	}
	return objs, page.CommonPrefixes
}

func TestListToken(t *testing.T) {
	s := newTestStore(t)
	for _, tok := range []string{"garbage", "t1.!!!", "t1."} {
		if _, err := s.List(t.Context(), blob.ListOptions{Token: tok}); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("List(token %q) = %v, want ErrInvalidArgument", tok, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.List(ctx, blob.ListOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("List(canceled) = %v", err)
	}
}

func TestContentTypeValidation(t *testing.T) {
	s := newTestStore(t)
	for _, ct := range []string{"text/plain\r\nX-Evil: 1", strings.Repeat("a", blob.MaxContentTypeBytes+1), "café/x"} {
		if _, err := s.Put(t.Context(), "k", strings.NewReader("x"), blob.PutOptions{ContentType: ct}); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("Put(content type %.20q) = %v, want ErrInvalidArgument", ct, err)
		}
		if _, err := s.PresignPut(t.Context(), "k", ct, time.Minute); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("PresignPut(content type %.20q) = %v, want ErrInvalidArgument", ct, err)
		}
	}
	ct := strings.Repeat("a", blob.MaxContentTypeBytes)
	key := strings.Repeat("k", blob.MaxKeyBytes)
	if _, err := s.Put(t.Context(), key, strings.NewReader("x"), blob.PutOptions{ContentType: ct}); err != nil {
		t.Fatalf("Put with the longest key and content type: %v", err)
	}
	if info, err := s.Head(t.Context(), key); err != nil || info.ContentType != ct {
		t.Errorf("Head = %v, %v", info.ContentType, err)
	}
}

func TestNilReader(t *testing.T) {
	s := newTestStore(t)
	info, err := s.Put(t.Context(), "nil", nil, blob.PutOptions{})
	if err != nil || info.Size != 0 {
		t.Errorf("Put(nil reader) = %+v, %v; want an empty object", info, err)
	}
}

func TestGetReaderSeeks(t *testing.T) {
	// The reader Get returns is an io.ReadSeeker and io.ReaderAt over the
	// data alone (the header is invisible), which callers such as
	// http.ServeContent rely on.
	s := newTestStore(t)
	if _, err := s.Put(t.Context(), "k", strings.NewReader("0123456789"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rs, ok := rc.(io.ReadSeeker)
	if !ok {
		t.Fatal("Get's reader is not an io.ReadSeeker")
	}
	if n, err := rs.Seek(-3, io.SeekEnd); err != nil || n != 7 {
		t.Fatalf("Seek = %d, %v", n, err)
	}
	if b, _ := io.ReadAll(rs); string(b) != "789" {
		t.Errorf("after Seek: %q", b)
	}
}
