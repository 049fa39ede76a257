package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/ocrjob"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
)

// mountTmpfs mounts a tmpfs of size (mount's form: 8m) on a new
// directory and returns it; the test is skipped when this process may not
// mount. It is unmounted when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// remount changes the mount options of dir (size=64m, ro, rw).
func remount(t *testing.T, dir, opts string) error {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -o remount,%s %s: %v: %s", opts, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// freeBytes is the space left on dir's file system.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// openDataDir is the test's own view of the embedded backends under dir.
func openDataDir(t *testing.T, dir string) *env {
	t.Helper()
	cfg, err := config.Config{DataDir: dir}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	e, err := openEnv(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// spaceError reports whether an error message says the disk is full.
func spaceError(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "no space left") || strings.Contains(m, "disk is full") || strings.Contains(m, "database or disk is full") || strings.Contains(m, "disk full")
}

// TestDiskFull runs `tally serve` on a small tmpfs data directory that a
// filler file (another program) has almost filled, and uploads distinct
// SROIE scans until an upload is refused: the refusal must say the disk
// is full, serve must keep running, and every SQLite file must pass
// PRAGMA integrity_check. Then the tmpfs grows: the refused upload and
// new ones are accepted, every upload accepted before is still there and
// gets processed, and the files are still intact.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "24m")
	srv := newChaosProc(t, "serve", embeddedEnv(dir), "serve", "-addr", "127.0.0.1:0")
	srv.start()
	drv := openDataDir(t, dir)
	defer drv.Close()

	// Leave about 3 MiB: a few uploads fit, then writes fail.
	free := freeBytes(t, dir)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, max(free-3<<20, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("tmpfs %s: %d bytes free after the filler", dir, freeBytes(t, dir))
	var ups []chaosUpload
	for _, u := range chaosUploads(t, 80) {
		if !u.force && u.result == nil {
			ups = append(ups, u)
		}
	}
	var accepted []string
	refusedAt := -1
	var refusal error
	for i, u := range ups {
		id, err := u.post(srv.serveAddr())
		if err != nil {
			refusedAt, refusal = i, err
			break
		}
		accepted = append(accepted, id)
	}
	if refusedAt < 0 {
		t.Fatalf("all %d uploads accepted on a full disk", len(ups))
	}
	t.Logf("upload %d (%s) refused after %d accepted: %v", refusedAt, ups[refusedAt].name, len(accepted), refusal)
	if !spaceError(refusal.Error()) {
		t.Errorf("refusal does not say the disk is full: %v", refusal)
	}
	// A second upload on the full disk: refused the same way, not hung.
	if _, err := ups[refusedAt+1].post(srv.serveAddr()); err == nil {
		t.Logf("upload %d accepted after the first refusal (space was freed meanwhile)", refusedAt+1)
	} else if !spaceError(err.Error()) {
		t.Errorf("second refusal does not say the disk is full: %v", err)
	}
	// Now fill the last byte (another program again) and submit a small
	// image with an external OCR result: the first write that fails is
	// SQLite's, not a blob's.
	last, err := os.OpenFile(filepath.Join(dir, "filler-last"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := last.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	last.Close()
	small := chaosUploads(t, 2)[1] // scan.png with the real scan's OCR result
	if _, err := small.post(srv.serveAddr()); err == nil {
		t.Errorf("an upload was accepted with 0 bytes free")
	} else {
		t.Logf("with 0 bytes free: %v", err)
		if !spaceError(err.Error()) {
			t.Errorf("refusal with 0 bytes free does not say the disk is full: %v", err)
		}
	}
	if _, unexpected := srv.report(); len(unexpected) > 0 {
		t.Errorf("serve exited on a full disk:\n%s", strings.Join(unexpected, "\n"))
		srv.start()
	}
	for f, r := range integrityCheck(t, dir) {
		t.Errorf("on the full disk: integrity_check %s: %s", f, r)
	}

	if err := remount(t, dir, "size=256m"); err != nil {
		t.Fatal(err)
	}
	t.Logf("grown: %d bytes free", freeBytes(t, dir))
	for _, u := range append([]chaosUpload{small}, ups[refusedAt:refusedAt+3]...) {
		id, err := u.post(srv.serveAddr())
		if err != nil {
			t.Errorf("after space returned: %v", err)
			continue
		}
		accepted = append(accepted, id)
	}
	waitSettled(t, drv, func() []string { return accepted })
	ctx := context.Background()
	statuses := map[string]int{}
	for _, id := range accepted {
		j, err := ocrjob.LatestJob(ctx, drv.ports.Items, id)
		if err != nil {
			t.Errorf("image %s accepted before is gone: %v", id, err)
			continue
		}
		statuses[j.Status]++
		if j.Status != ocrjob.StatusCompleted {
			t.Errorf("image %s (%s): %s: %s", id, j.Filename, j.Status, j.Reason)
			continue
		}
		set, err := entities.Load(ctx, drv.ports.Items, id)
		if err != nil || len(set.Images) != 1 || len(set.Receipts) == 0 {
			t.Errorf("image %s: %d images, %d receipts, %v", id, len(set.Images), len(set.Receipts), err)
		}
	}
	t.Logf("%d accepted uploads: %v", len(accepted), statuses)
	srv.stop()
	errLines, unexpected := srv.report()
	for _, l := range errLines {
		t.Logf("serve ERROR log: %s", l)
	}
	for _, u := range unexpected {
		t.Errorf("%s", u)
	}
	total, _ := countRun(t, drv, accepted)
	t.Logf("stored: %v", total)
	for f, r := range integrityCheck(t, dir) {
		t.Errorf("after recovery: integrity_check %s: %s", f, r)
	}
}

// TestReadOnlyDataDir: `tally serve` and `tally worker` on a data
// directory that became read-only (a tmpfs remounted ro) stop at start
// with an error naming the directory and saying it is read-only; nothing
// stored before is damaged, and once the directory is writable again
// serve starts, the earlier image is intact and uploads are accepted.
func TestReadOnlyDataDir(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "64m")
	env := embeddedEnv(dir)
	srv := newChaosProc(t, "serve", env, "serve", "-addr", "127.0.0.1:0")
	srv.start()
	drv := openDataDir(t, dir)
	ups := chaosUploads(t, 3) // 000.jpg, scan.png (external result), bar.png (external result)
	id, err := ups[1].post(srv.serveAddr())
	if err != nil {
		t.Fatal(err)
	}
	waitSettled(t, drv, func() []string { return []string{id} })
	before, _ := countRun(t, drv, []string{id})
	drv.Close()
	srv.stop()

	// A running server's files are open for writing, so the kernel
	// refuses to remount under it (EBUSY); the directory goes read-only
	// while Tally is stopped.
	if err := remount(t, dir, "ro"); err != nil {
		t.Fatal(err)
	}
	// The adapters' own errors (tally's start-up shows them, or should).
	ctx := context.Background()
	if q, err := queuesqlite.Open(ctx, filepath.Join(dir, "queue.db")); err != nil {
		t.Logf("queue/sqlite.Open on the read-only directory: %v", err)
	} else {
		q.Close()
		t.Logf("queue/sqlite.Open on the read-only directory: no error")
	}
	if it, err := itemssqlite.Open(ctx, filepath.Join(dir, "items.db"), items.DefaultIndexes); err != nil {
		t.Logf("items/sqlite.Open on the read-only directory: %v", err)
	} else {
		it.Close()
		t.Logf("items/sqlite.Open on the read-only directory: no error")
	}
	for _, args := range [][]string{{"serve", "-addr", "127.0.0.1:0"}, {"worker", "-role", "process"}, {"worker", "-role", "ocr"}} {
		p := newChaosProc(t, args[0], env, args...)
		err := p.tryStart()
		if err == nil {
			t.Errorf("tally %s started on a read-only data directory", strings.Join(args, " "))
			p.stop()
			continue
		}
		msg := err.Error()
		first := msg
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			first = msg[i+1:]
		}
		t.Logf("tally %s: %s", strings.Join(args, " "), first)
		if strings.Contains(msg, "panic:") {
			t.Errorf("tally %s panicked on a read-only data directory instead of reporting it:\n%s", strings.Join(args, " "), msg)
			continue
		}
		if low := strings.ToLower(msg); !strings.Contains(msg, dir) || !strings.Contains(low, "read-only") && !strings.Contains(low, "readonly") {
			t.Errorf("tally %s: error does not name %s as read-only:\n%s", strings.Join(args, " "), dir, msg)
		}
	}

	if err := remount(t, dir, "rw"); err != nil {
		t.Fatal(err)
	}
	for f, r := range integrityCheck(t, dir) {
		t.Errorf("integrity_check %s: %s", f, r)
	}
	srv = newChaosProc(t, "serve", env, "serve", "-addr", "127.0.0.1:0")
	srv.start()
	drv = openDataDir(t, dir)
	defer drv.Close()
	after, _ := countRun(t, drv, []string{id})
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("image %s changed: before %v, after %v", id, before, after)
	}
	id2, err := ups[2].post(srv.serveAddr())
	if err != nil {
		t.Fatalf("upload once writable again: %v", err)
	}
	waitSettled(t, drv, func() []string { return []string{id, id2} })
	if j, err := ocrjob.LatestJob(context.Background(), drv.ports.Items, id2); err != nil || j.Status != ocrjob.StatusCompleted {
		t.Errorf("upload once writable again: %+v %v", j, err)
	}
	srv.stop()
	if _, unexpected := srv.report(); len(unexpected) > 0 {
		t.Errorf("%s", strings.Join(unexpected, "\n"))
	}
}
