package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
)

// TestImport: a folder of images, copies, other files, an empty file and a
// link out of the folder is imported once; a second run uploads nothing;
// a server that is down is a clear error after retries.
func TestImport(t *testing.T) {
	t.Parallel()
	_, addr := startServe(t)
	server := "http://" + addr
	dir := t.TempDir()
	sub := filepath.Join(dir, "2024", "march")
	os.MkdirAll(sub, 0o755)
	outside := filepath.Join(t.TempDir(), "secret.png")
	os.WriteFile(outside, fixtures.BlankPNG(t, 9, 9), 0o644)
	files := map[string][]byte{
		filepath.Join(dir, "a.png"):                fixtures.BlankPNG(t, 10, 10),
		filepath.Join(sub, "b.PNG"):                fixtures.BlankPNG(t, 11, 11),
		filepath.Join(sub, "copy of a.png"):        fixtures.BlankPNG(t, 10, 10),
		filepath.Join(dir, "line\nbreak.png"):      fixtures.BlankPNG(t, 12, 12),
		filepath.Join(dir, "notes.txt"):            []byte("not an image"),
		filepath.Join(dir, "empty.jpg"):            nil,
		filepath.Join(dir, ".imported", "old.png"): fixtures.BlankPNG(t, 13, 13),
	}
	for p, data := range files {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.png")); err != nil {
		t.Fatal(err)
	}
	imp := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"import", "-server", server}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	code, out := imp("-j", "2", dir)
	if code != 0 || !strings.Contains(out, "imported 3, duplicates 1, skipped 3, failed 0") {
		t.Fatalf("first import: %d\n%s", code, out)
	}
	for _, why := range []string{"not an image kind", "empty (0 bytes)", "a symbolic link out of the folder"} {
		if !strings.Contains(out, why) {
			t.Errorf("the table lacks %q:\n%s", why, out)
		}
	}
	code, out = imp(dir)
	if code != 0 || !strings.Contains(out, "imported 0, duplicates 4") {
		t.Errorf("second import: %d\n%s", code, out)
	}
	if code, out := imp("-server", "http://127.0.0.1:1", filepath.Join(dir, "a.png")); code == 0 || !strings.Contains(out, "reach tally server") {
		t.Errorf("server down: %d\n%s", code, out)
	}
	if code, _ := imp(); code != 2 {
		t.Errorf("no arguments: exit %d", code)
	}
}
