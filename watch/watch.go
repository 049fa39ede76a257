// Package watch is Tally's consumption folder, like paperless-ngx's: drop
// images into a directory and they are imported, then moved out of the way
// to DIR/.imported/ or DIR/.failed/ with a NAME.reason.txt saying what
// happened. Nothing is ever deleted. fsnotify reports new files at once; a
// periodic rescan finds them on file systems without events (NFS, SMB) and
// retries files kept while the server was down. Anything still in DIR when
// the watcher starts is simply picked up again, and the server's sha256
// duplicate check makes that safe, so it survives restarts without state.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/tallyhq/tally/importer"
)

// The folders, inside the watched one, that files are moved to.
const (
	ImportedDir = ".imported"
	FailedDir   = ".failed"
)

// Defaults of Config.
const (
	DefaultScan   = 30 * time.Second
	DefaultSettle = 2 * time.Second
	DefaultJobs   = 2
)

// Config configures Run.
type Config struct {
	// Dir is the watched folder; it must exist.
	Dir string
	// Client imports each file.
	Client *importer.Client
	// Scan is how often the whole folder is looked at again, for file
	// systems that send no events and to retry files kept while the server
	// was unreachable (default DefaultScan).
	Scan time.Duration
	// Settle is how long a file's size and modification time must stay the
	// same, across two looks, before it is taken: a file still being
	// written is left alone (default DefaultSettle). An empty file must
	// stay empty ten times as long, since a copy may create it first.
	Settle time.Duration
	// Jobs is how many files are imported at once (default DefaultJobs).
	Jobs int
	Log  *slog.Logger
	// Handled, when set, is told of every file taken, once it is moved (or
	// kept for a retry): tests wait on it instead of sleeping.
	Handled func(Event)
}

// Event is one file handled.
type Event struct {
	// Path is where the file was in the watched folder.
	Path    string
	Outcome importer.Outcome
	// Moved is where it went (empty when kept).
	Moved string
	// Kept is true when the file stays in the folder to be retried: the
	// server could not be reached, or the move failed.
	Kept bool
	Err  error
}

// seen is a file's last look.
type seen struct {
	size  int64
	mtime time.Time
	at    time.Time // when this size and mtime were first seen
	// notBefore holds a file kept for a retry until the next scan.
	notBefore time.Time
}

type watcher struct {
	cfg     Config
	root    string // Dir with its links resolved
	log     *slog.Logger
	files   map[string]*seen
	busy    map[string]bool
	fsw     *fsnotify.Watcher
	results chan Event
	slots   chan struct{}
}

// Run watches cfg.Dir until ctx ends. It returns an error only when it
// cannot start (no such folder, the .imported or .failed folder cannot be
// made); every trouble with one file is logged and reported to Handled.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil {
		return errors.New("watch: a Client is required")
	}
	if cfg.Scan <= 0 {
		cfg.Scan = DefaultScan
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.Jobs <= 0 {
		cfg.Jobs = DefaultJobs
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	info, err := os.Stat(cfg.Dir)
	if err != nil {
		return fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("watch %s: not a directory", cfg.Dir)
	}
	root, err := filepath.EvalSymlinks(cfg.Dir)
	if err != nil {
		return fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	for _, d := range []string{ImportedDir, FailedDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return fmt.Errorf("watch %s: %w", cfg.Dir, err)
		}
	}
	w := &watcher{cfg: cfg, root: root, log: cfg.Log.With("component", "watch", "dir", cfg.Dir),
		files: map[string]*seen{}, busy: map[string]bool{}, results: make(chan Event), slots: make(chan struct{}, cfg.Jobs)}
	w.fsw, err = fsnotify.NewWatcher()
	if err != nil {
		// Still works, by scanning alone.
		w.log.Warn("no file system events; relying on the periodic scan", "err", err, "every", cfg.Scan)
	} else {
		defer w.fsw.Close()
	}
	return w.run(ctx)
}

func (w *watcher) run(ctx context.Context) error {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fsw != nil {
		events, errs = w.fsw.Events, w.fsw.Errors
	}
	w.log.Info("watching folder", "scan", w.cfg.Scan, "settle", w.cfg.Settle)
	w.scan(ctx)
	scan := time.NewTicker(w.cfg.Scan)
	defer scan.Stop()
	check := time.NewTimer(w.cfg.Settle)
	defer check.Stop()
	running := 0
	defer func() {
		for ; running > 0; running-- {
			<-w.results
		}
	}()
	for {
		select {
		case <-ctx.Done():
			w.log.Info("stopped watching folder")
			return nil
		case <-scan.C:
			w.scan(ctx)
		case <-check.C:
			running += w.take(ctx)
			check.Reset(w.cfg.Settle / 2)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			w.event(ctx, ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events; the next scan finds the files.
			w.log.Warn("file system events", "err", err)
		case ev := <-w.results:
			running--
			delete(w.busy, ev.Path)
			if ev.Kept {
				if s := w.files[ev.Path]; s != nil {
					s.notBefore = time.Now().Add(w.cfg.Scan)
				}
			} else {
				delete(w.files, ev.Path)
			}
			if w.cfg.Handled != nil {
				w.cfg.Handled(ev)
			}
		}
	}
}

// ignored is a name the watcher never takes: dot files and folders (its
// own .imported and .failed, editors' and rsync's temporary files) and
// the names browsers and copiers give files they are still writing.
func ignored(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") || strings.HasSuffix(name, ReasonSuffix) {
		return true
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".part", ".crdownload", ".download", ".tmp", ".partial":
		return true
	}
	return false
}

// scan walks the folder (not its dot folders), looking at every file and
// watching every directory for events.
func (w *watcher) scan(ctx context.Context) {
	err := filepath.WalkDir(w.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			w.log.Warn("scan folder", "path", path, "err", err)
			return nil
		}
		if path != w.cfg.Dir && ignored(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if w.fsw != nil {
				if err := w.fsw.Add(path); err != nil {
					w.log.Warn("watch for events", "path", path, "err", err)
				}
			}
			return nil
		}
		w.look(path)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("scan folder", "err", err)
	}
}

func (w *watcher) event(ctx context.Context, ev fsnotify.Event) {
	if ignored(filepath.Base(ev.Name)) || !strings.HasPrefix(ev.Name, w.cfg.Dir) {
		return
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if !w.busy[ev.Name] {
			delete(w.files, ev.Name)
		}
		return
	}
	info, err := os.Lstat(ev.Name)
	if err != nil {
		return
	}
	if info.IsDir() {
		// A folder moved or made in: watch it and take what it holds.
		w.scan(ctx)
		return
	}
	w.look(ev.Name)
}

// look records a file's size and modification time; a change restarts
// its settling.
func (w *watcher) look(path string) {
	if w.busy[path] {
		return
	}
	info, err := os.Lstat(path)
	if err != nil {
		delete(w.files, path)
		return
	}
	s := w.files[path]
	if s == nil {
		w.files[path] = &seen{size: info.Size(), mtime: info.ModTime(), at: time.Now()}
		return
	}
	if s.size != info.Size() || !s.mtime.Equal(info.ModTime()) {
		s.size, s.mtime, s.at = info.Size(), info.ModTime(), time.Now()
	}
}

// take looks again at every file waiting and starts importing those whose
// size and time have settled, as many as there are free slots. It returns
// how many it started.
func (w *watcher) take(ctx context.Context) int {
	started := 0
	now := time.Now()
	for path, s := range w.files {
		if w.busy[path] || now.Before(s.notBefore) {
			continue
		}
		size, mtime := s.size, s.mtime
		w.look(path)
		s = w.files[path]
		if s == nil || s.size != size || !s.mtime.Equal(mtime) {
			continue // gone, or still being written
		}
		settle := w.cfg.Settle
		if s.size == 0 {
			settle *= 10
		}
		if now.Sub(s.at) < settle {
			continue
		}
		select {
		case w.slots <- struct{}{}:
		default:
			return started // all busy; the next check goes on
		}
		w.busy[path] = true
		started++
		go func() {
			defer func() { <-w.slots }()
			w.results <- w.handle(ctx, path)
		}()
	}
	return started
}

// handle imports one settled file and moves it.
func (w *watcher) handle(ctx context.Context, path string) Event {
	ev := Event{Path: path}
	var o importer.Outcome
	if importer.LinkOutside(w.root, path) {
		o = importer.Outcome{Path: path, Status: importer.Skipped, Reason: importer.ReasonLinkOutside}
	} else {
		o = w.cfg.Client.ImportFile(ctx, path)
	}
	ev.Outcome = o
	if ctx.Err() != nil {
		ev.Kept, ev.Err = true, ctx.Err()
		return ev
	}
	if o.Status == importer.Failed && importer.Unreachable(o.Err()) {
		ev.Kept, ev.Err = true, o.Err()
		w.log.Warn("tally server unreachable; the file stays and is tried again at the next scan",
			"file", path, "retry_in", w.cfg.Scan, "err", o.Err())
		return ev
	}
	to, note := FailedDir, "failed: "+o.Reason
	switch o.Status {
	case importer.Imported:
		to, note = ImportedDir, "imported as image "+o.ImageID
	case importer.Duplicate:
		to, note = ImportedDir, o.Reason
	case importer.Skipped:
		note = "skipped: " + o.Reason
	}
	rel, err := filepath.Rel(w.cfg.Dir, path)
	if err != nil {
		rel = filepath.Base(path)
	}
	dest, err := Move(path, filepath.Join(w.cfg.Dir, to, rel), note+"\n")
	if err != nil && dest != "" {
		w.log.Warn("moved the file but could not write its reason", "file", path, "moved_to", dest, "err", err)
	} else if err != nil {
		ev.Kept, ev.Err = true, err
		w.log.Error("move the file out of the folder; it stays and is tried again at the next scan", "file", path, "err", err)
		return ev
	}
	ev.Moved = dest
	w.log.Info("took file", "file", path, "status", string(o.Status), "image_id", o.ImageID, "reason", o.Reason, "moved_to", dest)
	return ev
}
