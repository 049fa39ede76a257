package vector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/vector/segment"
)

// segCache opens segments by blob key. Segment files never change once
// written, so a copy on local disk named after the key is valid forever: a
// warm cache downloads only segments it has not seen. Every download is
// verified (every checksum) before it is renamed into place, so the cache
// never holds a torn or corrupt file; cached files are then opened without
// re-reading every byte.
//
// What is kept: every file some open version holds (a reader's view, a
// compaction or maintenance step in progress, the version the compactor
// last published) stays mapped and on disk. A file no version holds is
// unmapped at once, and its copy is kept only while all copies fit in
// maxBytes, least recently used evicted first (0 keeps none). Held files
// are never evicted: a search needs every one of them.
type segCache struct {
	blob blob.Store
	dir  string // local cache directory
	// mount, when set, is a shared file system holding the same keys (the
	// efs modes); copy says whether to copy from it to dir first.
	mount string
	copy  bool
	// maxBytes bounds the local copies no version holds.
	maxBytes int64
	log      *slog.Logger

	mu   sync.Mutex
	open map[string]*segment.Segment
	// refs counts the holds on each key; named holds are the versions kept
	// under a name (keep) until the next one replaces them.
	refs  map[string]int
	named map[string][]string
	// files are the local copies by file name: size and last use.
	files map[string]*cachedFile
	// overCap is set once the held files alone exceed maxBytes (logged once).
	overCap bool
	// opening holds the keys being opened (fetched) right now, so the
	// mutex is not held across a download: others wait for that key only.
	opening map[string]*opening

	downloaded atomic.Int64 // bytes fetched from the blob store or mount
	fetches    atomic.Int64
	evicted    atomic.Int64 // local copies deleted
}

// opening is one open in progress; done closes when seg or err is set.
type opening struct {
	done chan struct{}
	seg  *segment.Segment
	err  error
}

// cachedFile is one local copy.
type cachedFile struct {
	key     string // "" for a file found at start, until it is used
	size    int64
	lastUse time.Time
}

func newSegCache(b blob.Store, dir string, maxBytes int64, log *slog.Logger) (*segCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("segment cache %s: %w", dir, err)
	}
	c := &segCache{blob: b, dir: dir, maxBytes: maxBytes, log: log, open: map[string]*segment.Segment{},
		refs: map[string]int{}, named: map[string][]string{}, files: map[string]*cachedFile{},
		opening: map[string]*opening{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("segment cache %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".fetch-") {
			os.Remove(filepath.Join(dir, e.Name())) // a download a crash cut short
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		c.files[e.Name()] = &cachedFile{size: info.Size(), lastUse: info.ModTime()}
	}
	return c, nil
}

// hold keeps keys mapped and on disk until the returned release is called.
// Hold before get: eviction only ever touches keys nobody holds.
func (c *segCache) hold(keys []string) (release func()) {
	c.mu.Lock()
	for _, k := range keys {
		if k != "" {
			c.refs[k]++
		}
	}
	c.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { c.unhold(keys) }) }
}

// keep replaces the version held under name (the compactor's last one, so
// its next run starts warm) by keys.
func (c *segCache) keep(name string, keys []string) {
	c.mu.Lock()
	for _, k := range keys {
		if k != "" {
			c.refs[k]++
		}
	}
	old := c.named[name]
	c.named[name] = keys
	c.mu.Unlock()
	c.unhold(old)
}

func (c *segCache) unhold(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if k == "" {
			continue
		}
		if c.refs[k]--; c.refs[k] <= 0 {
			delete(c.refs, k)
		}
	}
	c.evictLocked()
}

// evictLocked unmaps every open segment nobody holds and deletes local
// copies nobody holds, least recently used first, until all copies fit in
// maxBytes.
func (c *segCache) evictLocked() {
	for k, s := range c.open {
		if c.refs[k] == 0 {
			s.Close()
			delete(c.open, k)
		}
	}
	held := map[string]bool{}
	for k := range c.refs {
		held[localName(k)] = true
	}
	type cand struct {
		name string
		f    *cachedFile
	}
	var unheld []cand
	var unheldBytes, heldBytes int64
	for name, f := range c.files {
		if held[name] {
			heldBytes += f.size
			continue
		}
		unheld = append(unheld, cand{name, f})
		unheldBytes += f.size
	}
	sort.Slice(unheld, func(i, j int) bool { return unheld[i].f.lastUse.Before(unheld[j].f.lastUse) })
	for _, u := range unheld {
		if heldBytes+unheldBytes <= c.maxBytes {
			break
		}
		if err := os.Remove(filepath.Join(c.dir, u.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("evict cached segment", "file", u.name, "err", err)
			continue
		}
		delete(c.files, u.name)
		unheldBytes -= u.f.size
		c.evicted.Add(1)
	}
	if c.maxBytes > 0 && heldBytes > c.maxBytes && !c.overCap {
		c.overCap = true
		c.log.Warn("the open versions need more local cache than its cap; nothing they hold is evicted", "held_bytes", heldBytes, "max_bytes", c.maxBytes)
	}
}

// localName maps a blob key to a flat file name in the cache directory.
func localName(key string) string {
	return strings.NewReplacer("/", "__", "\\", "_").Replace(key)
}

// local reports whether key is open or has a local copy (no fetch needed).
func (c *segCache) local(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.open[key]; ok {
		return true
	}
	_, ok := c.files[localName(key)]
	return ok
}

// get returns the opened segment for key, fetching it if needed. The
// caller holds key (hold), so it stays mapped while it is used. The
// mutex is not held during the fetch: a slow download of one key never
// stalls a reader that needs another, and callers wanting the same key
// share one download.
func (c *segCache) get(ctx context.Context, key string) (*segment.Segment, error) {
	for {
		c.mu.Lock()
		name := localName(key)
		if f, ok := c.files[name]; ok {
			f.key, f.lastUse = key, time.Now()
		}
		if s, ok := c.open[key]; ok {
			c.mu.Unlock()
			return s, nil
		}
		if o, ok := c.opening[key]; ok {
			c.mu.Unlock()
			select {
			case <-o.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("open segment %s: %w", key, ctx.Err())
			}
			if o.err == nil {
				return o.seg, nil
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("open segment %s: %w", key, ctx.Err())
			}
			continue // its caller gave up or failed: try on our own
		}
		o := &opening{done: make(chan struct{})}
		c.opening[key] = o
		c.mu.Unlock()

		o.seg, o.err = c.openFile(ctx, key)
		c.mu.Lock()
		delete(c.opening, key)
		if o.err == nil {
			c.open[key] = o.seg
		}
		c.mu.Unlock()
		close(o.done)
		return o.seg, o.err
	}
}

// openFile opens key from the mount, the local copy or a fresh fetch;
// only one caller opens a given key at a time (get), without c.mu.
func (c *segCache) openFile(ctx context.Context, key string) (*segment.Segment, error) {
	if c.mount != "" && !c.copy {
		// Read in place from the shared file system, verified once here.
		p := filepath.Join(c.mount, filepath.FromSlash(key))
		if s, err := segment.OpenFile(p); err == nil {
			return s, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open segment %s on mount: %w", key, err)
		}
		// Not mirrored (yet): fall through to the object store.
	}
	path := filepath.Join(c.dir, localName(key))
	if s, err := segment.OpenFileWith(path, segment.ParseOptions{SkipVerify: true}); err == nil {
		return s, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		// A damaged cache entry: drop it and fetch again.
		os.Remove(path)
	}
	if err := c.fetch(ctx, key, path); err != nil {
		return nil, err
	}
	return segment.OpenFileWith(path, segment.ParseOptions{SkipVerify: true})
}

// fetch copies the segment into the cache, verifying it before it becomes
// visible under its name.
func (c *segCache) fetch(ctx context.Context, key, path string) error {
	var src io.ReadCloser
	if c.mount != "" {
		f, err := os.Open(filepath.Join(c.mount, filepath.FromSlash(key)))
		if err == nil {
			src = f
		}
	}
	if src == nil {
		rc, _, err := c.blob.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("fetch segment %s: %w", key, err)
		}
		src = rc
	}
	defer src.Close()
	tmp, err := os.CreateTemp(c.dir, ".fetch-*")
	if err != nil {
		return fmt.Errorf("fetch segment %s: %w", key, err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, src)
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return fmt.Errorf("fetch segment %s: %w", key, err)
	}
	s, err := segment.OpenFile(tmp.Name()) // full verification
	if err != nil {
		return fmt.Errorf("fetch segment %s: %w", key, err)
	}
	s.Close()
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("fetch segment %s: %w", key, err)
	}
	c.mu.Lock()
	c.files[filepath.Base(path)] = &cachedFile{key: key, size: n, lastUse: time.Now()}
	c.mu.Unlock()
	c.downloaded.Add(n)
	c.fetches.Add(1)
	return nil
}

// close closes every open segment.
func (c *segCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.open {
		s.Close()
		delete(c.open, k)
	}
}
