package vector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/vector/segment"
)

// segCache opens segments by blob key. Segment files never change once
// written, so a copy on local disk named after the key is valid forever: a
// warm cache downloads only segments it has not seen. Every download is
// verified (every checksum) before it is renamed into place, so the cache
// never holds a torn or corrupt file; cached files are then opened without
// re-reading every byte.
type segCache struct {
	blob blob.Store
	dir  string // local cache directory
	// mount, when set, is a shared file system holding the same keys (the
	// efs modes); copy says whether to copy from it to dir first.
	mount string
	copy  bool

	mu   sync.Mutex
	open map[string]*segment.Segment

	downloaded atomic.Int64 // bytes fetched from the blob store or mount
	fetches    atomic.Int64
}

func newSegCache(b blob.Store, dir string) (*segCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("segment cache %s: %w", dir, err)
	}
	return &segCache{blob: b, dir: dir, open: map[string]*segment.Segment{}}, nil
}

// localName maps a blob key to a flat file name in the cache directory.
func localName(key string) string {
	return strings.NewReplacer("/", "__", "\\", "_").Replace(key)
}

// get returns the opened segment for key, fetching it if needed.
func (c *segCache) get(ctx context.Context, key string) (*segment.Segment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.open[key]; ok {
		return s, nil
	}
	s, err := c.openLocked(ctx, key)
	if err != nil {
		return nil, err
	}
	c.open[key] = s
	return s, nil
}

func (c *segCache) openLocked(ctx context.Context, key string) (*segment.Segment, error) {
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
	c.downloaded.Add(n)
	c.fetches.Add(1)
	return nil
}

// retain closes every open segment whose key is not in keep.
func (c *segCache) retain(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.open {
		if !keep[k] {
			s.Close()
			delete(c.open, k)
		}
	}
}

// close closes every open segment.
func (c *segCache) close() {
	c.retain(nil)
}
