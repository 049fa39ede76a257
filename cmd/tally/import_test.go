package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/importer/importertest"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
)

// tallyCmd runs the CLI and returns its exit code and output.
func tallyCmd(ctx context.Context, args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String() + errb.String()
}

// TestImport: a folder of images, copies, other files, an empty file, odd
// names and a link out of the folder is imported once, with a table of
// why; a second run uploads nothing; a server that is down is a clear
// error after retries.
func TestImport(t *testing.T) {
	t.Parallel()
	_, addr := startServe(t)
	server := "http://" + addr
	dir := t.TempDir()
	sub := filepath.Join(dir, "2024", "march")
	outside := filepath.Join(t.TempDir(), "secret.png")
	importertest.WriteFiles(t, map[string][]byte{
		outside:                                    fixtures.BlankPNG(t, 9, 9),
		filepath.Join(dir, "a.png"):                fixtures.BlankPNG(t, 10, 10),
		filepath.Join(sub, "b.PNG"):                fixtures.BlankPNG(t, 11, 11),
		filepath.Join(sub, "copy of a.png"):        fixtures.BlankPNG(t, 10, 10),
		filepath.Join(dir, "line\nbreak.png"):      fixtures.BlankPNG(t, 12, 12),
		filepath.Join(dir, "caf\xe9.png"):          fixtures.BlankPNG(t, 14, 14),
		filepath.Join(dir, "notes.txt"):            []byte("not an image"),
		filepath.Join(dir, "empty.jpg"):            nil,
		filepath.Join(dir, ".imported", "old.png"): fixtures.BlankPNG(t, 13, 13),
	})
	if err := os.Symlink(outside, filepath.Join(dir, "link.png")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	code, out := tallyCmd(ctx, "import", "-server", server, "-j", "2", dir)
	if code != 0 || !strings.Contains(out, "imported 4, duplicates 1, skipped 3, failed 0") {
		t.Fatalf("first import: %d\n%s", code, out)
	}
	for _, why := range []string{"not an image kind", "empty (0 bytes)", "a symbolic link out of the folder", "progress: 5/5 files", "ETA 0s"} {
		if !strings.Contains(out, why) {
			t.Errorf("the output lacks %q:\n%s", why, out)
		}
	}
	code, out = tallyCmd(ctx, "import", "-server", server, dir)
	if code != 0 || !strings.Contains(out, "imported 0, duplicates 5") {
		t.Errorf("second import: %d\n%s", code, out)
	}
	code, out = tallyCmd(ctx, "import", "-server", "http://127.0.0.1:1", filepath.Join(dir, "a.png"))
	if code != 1 || !strings.Contains(out, "reach tally server") || !strings.Contains(out, "gave up after 5 attempts") {
		t.Errorf("server down: %d\n%s", code, out)
	}
	for _, args := range [][]string{{"import"}, {"import", "-j", "0", dir}, {"watch"}, {"watch", "-scan", "0", dir}, {"serve", "-watch", filepath.Join(dir, "nonexistent")}} {
		if code, out := tallyCmd(ctx, args...); code != 2 {
			t.Errorf("tally %q: exit %d\n%s", args, code, out)
		}
	}
}

// TestImportWait: -wait follows each image through OCR and labelling and
// reports where it ended: a real receipt is labelled; a blank image fails
// OCR, with the server's reason, and the exit status says so.
func TestImportWait(t *testing.T) {
	t.Parallel()
	_, addr := startServe(t)
	dir := t.TempDir()
	receipt, err := os.ReadFile(fixtures.Path(t, "sroie", "img", "000.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	importertest.WriteFiles(t, map[string][]byte{
		filepath.Join(dir, "receipt.jpg"): receipt,
		filepath.Join(dir, "blank.png"):   fixtures.BlankPNG(t, 10, 10),
	})
	code, out := tallyCmd(context.Background(), "import", "-server", "http://"+addr, "-wait", dir)
	if code != 1 || !strings.Contains(out, "processing: labelled 1, processed without receipts 0, duplicates 0, failed 1, unfinished 0") ||
		!strings.Contains(out, "imported 2, duplicates 0") || !strings.Contains(out, "no text found in the image") {
		t.Fatalf("import -wait: %d\n%s", code, out)
	}
}

// TestWatchCommand: `tally watch` and `tally serve -watch` take a file
// dropped into the folder and move it to .imported with its image id.
func TestWatchCommand(t *testing.T) {
	t.Parallel()
	_, addr := startServe(t)
	watched, served := t.TempDir(), t.TempDir()
	cases := map[string][]string{
		watched: {"watch", "-server", "http://" + addr, "-scan", "100ms", "-settle", "100ms", "-log", "text", watched},
		served:  {"serve", "-data", t.TempDir(), "-addr", "127.0.0.1:0", "-log", "text", "-watch", served},
	}
	for dir, args := range cases {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			code, _ := tallyCmd(ctx, args...)
			done <- code
		}()
		importertest.WriteFiles(t, map[string][]byte{filepath.Join(dir, "in", "a.png"): fixtures.BlankPNG(t, 15, 15)})
		moved := filepath.Join(dir, ".imported", "in", "a.png")
		waitfor.True(t, args[0]+" to move the file to .imported", func() bool {
			_, err := os.Stat(moved + ".reason.txt")
			return err == nil
		})
		if b, _ := os.ReadFile(moved + ".reason.txt"); !strings.HasPrefix(string(b), "imported as image ") {
			t.Errorf("%s: reason %q", args[0], b)
		}
		cancel()
		if code := waitfor.Recv(t, args[0]+" to stop", done); code != 0 {
			t.Errorf("%s: exit %d", args[0], code)
		}
	}
}
