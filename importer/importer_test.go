package importer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tallyhq/tally/importer"
	"github.com/tallyhq/tally/importer/importertest"
	"github.com/tallyhq/tally/internal/fixtures"
)

// count tallies outcomes by status.
func count(os []importer.Outcome) map[importer.Status]int {
	n := map[importer.Status]int{}
	for _, o := range os {
		n[o.Status]++
	}
	return n
}

// collectImport collects dir and imports what it found.
func collectImport(t *testing.T, c *importer.Client, dir string, opt importer.Options) ([]importer.Outcome, error) {
	t.Helper()
	files, skipped, err := importer.Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Import(context.Background(), files, opt)
	return append(skipped, out...), err
}

// TestImportFolder: every kind of file a real folder holds ends with the
// right status and reason, and a second run sends nothing.
func TestImportFolder(t *testing.T) {
	t.Parallel()
	srv := importertest.Start(t)
	c := importer.New(srv.URL)
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.png")
	sub := filepath.Join(dir, "2024", "march")
	importertest.WriteFiles(t, map[string][]byte{
		outside:                                    fixtures.BlankPNG(t, 9, 9),
		filepath.Join(dir, "a.png"):                fixtures.BlankPNG(t, 10, 10),
		filepath.Join(sub, "b.PNG"):                fixtures.BlankPNG(t, 11, 11),
		filepath.Join(sub, "copy of a.png"):        fixtures.BlankPNG(t, 10, 10),
		filepath.Join(dir, "line\nbreak.png"):      fixtures.BlankPNG(t, 12, 12),
		filepath.Join(dir, "caf\xe9.png"):          fixtures.BlankPNG(t, 14, 14), // Latin-1, not UTF-8
		filepath.Join(dir, "notes.txt"):            []byte("not an image"),
		filepath.Join(dir, "empty.jpg"):            nil,
		filepath.Join(dir, ".imported", "old.png"): fixtures.BlankPNG(t, 13, 13),
	})
	if err := os.Symlink(outside, filepath.Join(dir, "link.png")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a.png"), filepath.Join(sub, "inside.png")); err != nil {
		t.Fatal(err)
	}
	out, err := collectImport(t, c, dir, importer.Options{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]importer.Outcome{}
	for _, o := range out {
		byName[filepath.Base(o.Path)] = o
	}
	copies := 0
	for _, name := range []string{"a.png", "copy of a.png", "inside.png"} {
		if byName[name].Status == importer.Imported {
			copies++
		}
	}
	if copies != 1 {
		t.Errorf("a.png and its copies imported %d times, want once", copies)
	}
	want := map[string]importer.Status{"b.PNG": importer.Imported, "line\nbreak.png": importer.Imported,
		"caf\xe9.png": importer.Imported, "notes.txt": importer.Skipped, "empty.jpg": importer.Skipped, "link.png": importer.Skipped}
	for name, st := range want {
		if byName[name].Status != st {
			t.Errorf("%q: %+v, want %s", name, byName[name], st)
		}
	}
	// a.png and its two copies: one upload, two duplicates of it.
	if n := count(out); n[importer.Imported] != 4 || n[importer.Duplicate] != 2 || len(out) != 9 {
		t.Errorf("counts %v of %d (old.png in .imported must not be seen): %+v", n, len(out), out)
	}
	for name, why := range map[string]string{"notes.txt": importer.ReasonNotImage, "empty.jpg": importer.ReasonEmpty, "link.png": importer.ReasonLinkOutside} {
		if byName[name].Reason != why {
			t.Errorf("%s: reason %q, want %q", name, byName[name].Reason, why)
		}
	}
	sent := srv.Uploads()
	if sent != 4 {
		t.Errorf("%d uploads, want 4 (duplicates are found before sending)", sent)
	}
	out, err = collectImport(t, c, dir, importer.Options{Jobs: 3})
	if n := count(out); err != nil || n[importer.Duplicate] != 6 || n[importer.Imported] != 0 {
		t.Errorf("second run: %v %v", n, err)
	}
	if srv.Uploads() != sent {
		t.Errorf("the second run uploaded %d files", srv.Uploads()-sent)
	}
}

// TestImportUnreadable: a file that cannot be read fails with why and
// never stops the others.
func TestImportUnreadable(t *testing.T) {
	t.Parallel()
	srv := importertest.Start(t)
	dir := t.TempDir()
	bad, good := filepath.Join(dir, "bad.jpg"), filepath.Join(dir, "good.png")
	importertest.WriteFiles(t, map[string][]byte{bad: []byte("\xff\xd8\xff"), good: fixtures.BlankPNG(t, 10, 10)})
	c := importer.New(srv.URL)
	if os.Getuid() == 0 {
		// root reads any file whatever its mode.
		c.ReadFile = func(name string) ([]byte, error) {
			if name == bad {
				return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrPermission}
			}
			return os.ReadFile(name)
		}
	} else if err := os.Chmod(bad, 0); err != nil {
		t.Fatal(err)
	}
	out, err := c.Import(context.Background(), []string{bad, good}, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Status != importer.Failed || !strings.Contains(out[0].Reason, "unreadable") || !strings.Contains(out[0].Reason, "permission denied") {
		t.Errorf("unreadable: %+v", out[0])
	}
	if out[1].Status != importer.Imported {
		t.Errorf("good: %+v", out[1])
	}
}

// TestImportStillBeingWritten: a file that grows while it is read is not
// sent half-written.
func TestImportStillBeingWritten(t *testing.T) {
	t.Parallel()
	srv := importertest.Start(t)
	p := filepath.Join(t.TempDir(), "scan.png")
	full := fixtures.BlankPNG(t, 30, 30)
	importertest.WriteFiles(t, map[string][]byte{p: full[:len(full)/2]})
	c := importer.New(srv.URL)
	c.ReadFile = func(name string) ([]byte, error) {
		data, err := os.ReadFile(name)
		// The writer goes on while the importer reads.
		if err := os.WriteFile(name, full, 0o644); err != nil {
			t.Error(err)
		}
		return data, err
	}
	o := c.ImportFile(context.Background(), p)
	if o.Status != importer.Failed || !strings.Contains(o.Reason, "still being written") || srv.Uploads() != 0 {
		t.Errorf("%+v, %d uploads", o, srv.Uploads())
	}
	c.ReadFile = nil
	if o := c.ImportFile(context.Background(), p); o.Status != importer.Imported {
		t.Errorf("once complete: %+v", o)
	}
}

// TestImportServerDown: an unreachable server is retried with backoff,
// then the run stops with a clear message and the rest are not tried; a
// server that answers 503 while it starts is waited for.
func TestImportServerDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var files []string
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("%d.png", i))
		importertest.WriteFiles(t, map[string][]byte{p: fixtures.BlankPNG(t, 10+i, 10)})
		files = append(files, p)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	c := &importer.Client{Base: down.URL, Attempts: 3, Backoff: 1}
	out, err := c.Import(context.Background(), files, importer.Options{Jobs: 1})
	if err == nil || !importer.Unreachable(err) || !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "is `tally serve` running?") {
		t.Fatalf("err = %v", err)
	}
	if n := count(out); n[importer.Failed] != 1 || n[importer.NotTried] != 4 {
		t.Errorf("outcomes %v", n)
	}

	srv := importertest.Start(t)
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var calls atomic.Int64
	starting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, `{"error":"starting"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer starting.Close()
	c = &importer.Client{Base: starting.URL, Attempts: 3, Backoff: 1}
	if o := c.ImportFile(context.Background(), files[0]); o.Status != importer.Imported {
		t.Errorf("after two 503s: %+v", o)
	}
}

// TestImportResumes: a run interrupted part way and run again imports the
// rest and sends nothing twice.
func TestImportResumes(t *testing.T) {
	t.Parallel()
	srv := importertest.Start(t)
	dir := t.TempDir()
	const n = 12
	for i := range n {
		importertest.WriteFiles(t, map[string][]byte{filepath.Join(dir, fmt.Sprintf("%02d.png", i)): fixtures.BlankPNG(t, 10+i, 10)})
	}
	files, _, err := importer.Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := importer.New(srv.URL)
	out, err := c.Import(ctx, files, importer.Options{Jobs: 2, Progress: func(p importer.Progress) {
		if p.Done == 4 {
			cancel() // Ctrl-C
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	first := count(out)
	if first[importer.Imported] < 4 || first[importer.NotTried] == 0 || first[importer.Failed] != 0 {
		t.Fatalf("interrupted run: %v", first)
	}
	// A file whose upload was cut short may or may not have reached the
	// server; only those are sent again, never one the first run finished.
	// (Counted by the client: the server may still be finishing a request
	// the first run gave up on.)
	posts := &countPosts{}
	c.HTTP = &http.Client{Transport: posts}
	out, err = c.Import(context.Background(), files, importer.Options{Jobs: 2})
	second := count(out)
	if err != nil || second[importer.Duplicate] < first[importer.Imported] || second[importer.Duplicate]+second[importer.Imported] != n {
		t.Errorf("second run: %v %v after %v", second, err, first)
	}
	if sent := int(posts.n.Load()); sent > n-first[importer.Imported] {
		t.Errorf("the second run sent %d files; the first had imported %d of %d", sent, first[importer.Imported], n)
	}
}

// countPosts counts the uploads a client sends.
type countPosts struct{ n atomic.Int64 }

func (c *countPosts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.URL.Path == "/receipts" {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}
