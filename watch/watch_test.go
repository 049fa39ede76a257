package watch_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally/importer"
	"github.com/tallyhq/tally/importer/importertest"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/watch"
)

// start runs the watcher on dir until the test ends and returns its
// events.
func start(t *testing.T, dir string, c *importer.Client) <-chan watch.Event {
	t.Helper()
	events := make(chan watch.Event, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- watch.Run(ctx, watch.Config{Dir: dir, Client: c, Scan: 100 * time.Millisecond, Settle: 100 * time.Millisecond,
			Log: slog.New(slog.DiscardHandler), Handled: func(ev watch.Event) { events <- ev }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := waitfor.Recv(t, "the watcher to stop", done); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return events
}

// collect waits for n events, by the base name of their file.
func collect(t *testing.T, events <-chan watch.Event, n int) map[string]watch.Event {
	t.Helper()
	got := map[string]watch.Event{}
	for len(got) < n {
		ev := waitfor.Recv(t, "a file handled", events)
		got[filepath.Base(ev.Path)] = ev
	}
	return got
}

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	importertest.WriteFiles(t, map[string][]byte{p: data})
}

func reason(t *testing.T, moved string) string {
	t.Helper()
	b, err := os.ReadFile(moved + watch.ReasonSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWatchFolder: files already there (left by an earlier run) and files
// dropped in later are imported and moved with their reasons; bad ones go
// to .failed; nothing is deleted or overwritten.
func TestWatchFolder(t *testing.T) {
	t.Parallel()
	srv := importertest.Start(t)
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.png")
	write(t, outside, fixtures.BlankPNG(t, 9, 9))
	// Left from an earlier run: a file to take, and an older a.png already
	// moved, which must not be overwritten.
	write(t, filepath.Join(dir, "a.png"), fixtures.BlankPNG(t, 10, 10))
	write(t, filepath.Join(dir, ".imported", "a.png"), []byte("older"))
	events := start(t, dir, importer.New(srv.URL))
	first := collect(t, events, 1)["a.png"]
	if first.Outcome.Status != importer.Imported || first.Moved != filepath.Join(dir, ".imported", "a-1.png") {
		t.Fatalf("a.png: %+v", first)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".imported", "a.png")); string(b) != "older" {
		t.Errorf("the older .imported/a.png was overwritten")
	}
	if r := reason(t, first.Moved); r != "imported as image "+first.Outcome.ImageID+"\n" {
		t.Errorf("reason %q", r)
	}

	write(t, filepath.Join(dir, "sub", "copy.png"), fixtures.BlankPNG(t, 10, 10))
	write(t, filepath.Join(dir, "b.jpeg.png"), fixtures.BlankPNG(t, 11, 11))
	write(t, filepath.Join(dir, "line\nbreak.png"), fixtures.BlankPNG(t, 12, 12))
	write(t, filepath.Join(dir, "caf\xe9.png"), fixtures.BlankPNG(t, 13, 13))
	write(t, filepath.Join(dir, "notes.txt"), []byte("not an image"))
	write(t, filepath.Join(dir, "empty.jpg"), nil)
	write(t, filepath.Join(dir, "download.png.part"), []byte("half"))
	if err := os.Symlink(outside, filepath.Join(dir, "link.png")); err != nil {
		t.Fatal(err)
	}
	got := collect(t, events, 7)
	for name, want := range map[string]struct {
		to, reason string
	}{
		"copy.png":        {filepath.Join(".imported", "sub", "copy.png"), "duplicate of image " + first.Outcome.ImageID},
		"b.jpeg.png":      {filepath.Join(".imported", "b.jpeg.png"), "imported as image"},
		"line\nbreak.png": {filepath.Join(".imported", "line\nbreak.png"), "imported as image"},
		"caf\xe9.png":     {filepath.Join(".imported", "caf\xe9.png"), "imported as image"},
		"notes.txt":       {filepath.Join(".failed", "notes.txt"), "skipped: " + importer.ReasonNotImage},
		"empty.jpg":       {filepath.Join(".failed", "empty.jpg"), "skipped: " + importer.ReasonEmpty},
		"link.png":        {filepath.Join(".failed", "link.png"), "skipped: " + importer.ReasonLinkOutside},
	} {
		ev := got[name]
		if ev.Moved != filepath.Join(dir, want.to) {
			t.Errorf("%q moved to %q, want %q (%+v)", name, ev.Moved, want.to, ev)
			continue
		}
		if r := reason(t, ev.Moved); !strings.HasPrefix(r, want.reason) {
			t.Errorf("%q: reason %q, want %q…", name, r, want.reason)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the link's target was touched: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "download.png.part")); err != nil {
		t.Errorf("a download in progress was taken: %v", err)
	}
	if srv.Uploads() != 4 {
		t.Errorf("%d uploads, want 4 (the copy is found by sha256 first)", srv.Uploads())
	}
}

// TestWatchStillBeingWritten: a file that keeps growing is left alone
// until it stops, then imported whole.
func TestWatchStillBeingWritten(t *testing.T) {
	t.Parallel()
	srv := importertest.Start(t)
	dir := t.TempDir()
	data := fixtures.BlankPNG(t, 40, 40)
	f, err := os.Create(filepath.Join(dir, "scan.png"))
	if err != nil {
		t.Fatal(err)
	}
	finish := make(chan struct{})
	written := make(chan error, 1)
	go func() {
		// A slow copy: a byte at a time until told to finish.
		i := 0
		for ; i < len(data)-1; i++ {
			if _, err := f.Write(data[i : i+1]); err != nil {
				written <- err
				return
			}
			select {
			case <-finish:
				_, err := f.Write(data[i+1:])
				written <- errors.Join(err, f.Close())
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		_, err := f.Write(data[i:])
		written <- errors.Join(err, f.Close())
	}()
	events := start(t, dir, importer.New(srv.URL))
	// A file dropped after the copy began settles and is taken first.
	write(t, filepath.Join(dir, "marker.png"), fixtures.BlankPNG(t, 10, 10))
	ev := waitfor.Recv(t, "the marker", events)
	if filepath.Base(ev.Path) != "marker.png" {
		t.Fatalf("took %q while it was still being written: %+v", ev.Path, ev)
	}
	close(finish)
	if err := waitfor.Recv(t, "the copy to finish", written); err != nil {
		t.Fatal(err)
	}
	ev = waitfor.Recv(t, "the finished copy", events)
	if filepath.Base(ev.Path) != "scan.png" || ev.Outcome.Status != importer.Imported {
		t.Fatalf("%+v", ev)
	}
}

// failing is a transport that cannot reach anything while down is set.
type failing struct{ down atomic.Bool }

func (f *failing) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestWatchServerDown: while the server cannot be reached a file stays in
// the folder (never in .failed) and is tried again; once the server is
// back it is imported.
func TestWatchServerDown(t *testing.T) {
	t.Parallel()
	srv := importertest.Start(t)
	dir := t.TempDir()
	tr := &failing{}
	tr.down.Store(true)
	c := &importer.Client{Base: srv.URL, HTTP: &http.Client{Transport: tr}, Attempts: 2, Backoff: time.Millisecond}
	p := filepath.Join(dir, "a.png")
	write(t, p, fixtures.BlankPNG(t, 10, 10))
	events := start(t, dir, c)
	for range 2 {
		ev := waitfor.Recv(t, "a try while down", events)
		if !ev.Kept || !importer.Unreachable(ev.Err) || ev.Moved != "" {
			t.Fatalf("%+v", ev)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the file left the folder while the server was down: %v", err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, ".failed")); len(entries) != 0 {
		t.Errorf(".failed holds %v", entries)
	}
	tr.down.Store(false)
	ev := waitfor.Recv(t, "the retry", events)
	if ev.Outcome.Status != importer.Imported || ev.Moved != filepath.Join(dir, ".imported", "a.png") {
		t.Errorf("%+v", ev)
	}
}

// TestWatchUnreadable: a file that cannot be read goes to .failed with
// why.
func TestWatchUnreadable(t *testing.T) {
	t.Parallel()
	srv := importertest.Start(t)
	dir := t.TempDir()
	c := importer.New(srv.URL)
	c.ReadFile = func(name string) ([]byte, error) {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrPermission}
	}
	write(t, filepath.Join(dir, "a.png"), fixtures.BlankPNG(t, 10, 10))
	ev := waitfor.Recv(t, "the file", start(t, dir, c))
	if ev.Moved != filepath.Join(dir, ".failed", "a.png") || !strings.Contains(reason(t, ev.Moved), "unreadable") {
		t.Errorf("%+v", ev)
	}
}

// TestMoveNeverOverwrites: a name taken by a file or by a reason gets the
// next free suffix.
func TestMoveNeverOverwrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "to", "a.png"), []byte("0"))
	write(t, filepath.Join(dir, "to", "a-1.png"+watch.ReasonSuffix), []byte("orphan note"))
	for i, want := range []string{"a-2.png", "a-3.png"} {
		src := filepath.Join(dir, "a.png")
		write(t, src, []byte{byte('1' + i)})
		got, err := watch.Move(src, filepath.Join(dir, "to", "a.png"), "why\n")
		if err != nil || got != filepath.Join(dir, "to", want) {
			t.Fatalf("Move = %q, %v; want %s", got, err, want)
		}
		if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the source is still there: %v", err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "to", "a.png")); string(b) != "0" {
		t.Errorf("a.png was overwritten: %q", b)
	}
}
