package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
)

// List implements blob.Store.
//
// It walks the directory tree in key order: within a directory, an object
// sorts by its segment and a subdirectory by its segment plus "/" (every key
// under it starts so), which is exactly lexical byte order of the full keys.
// With a delimiter, a subdirectory whose path already contains it collapses
// into one common prefix without being read. The token is the last key or
// common prefix returned (blob.EncodeToken), so it survives restarts and
// concurrent writes, and the next page starts strictly after it.
func (s *Store) List(ctx context.Context, opts blob.ListOptions) (blob.Page, error) {
	limit, err := blob.PageLimit(opts.Limit)
	if err != nil {
		return blob.Page{}, fmt.Errorf("list %q: %w", opts.Prefix, err)
	}
	after, err := blob.DecodeToken(opts.Token)
	if err != nil {
		return blob.Page{}, fmt.Errorf("list %q: %w", opts.Prefix, err)
	}
	if err := ctx.Err(); err != nil {
		return blob.Page{}, fmt.Errorf("list %q: %w", opts.Prefix, err)
	}
	dirRel, partial, ok := prefixDir(opts.Prefix)
	if !ok || len(opts.Prefix) > blob.MaxKeyBytes {
		return blob.Page{}, nil // no key can start so
	}
	base := opts.Prefix[:len(opts.Prefix)-len(partial)]
	l := &lister{ctx: ctx, prefix: opts.Prefix, delim: opts.Delimiter, after: after, limit: limit}
	if err := l.walk(filepath.Join(s.root, dirRel), base, strings.Count(base, "/"), partial); err != nil {
		return blob.Page{}, fmt.Errorf("list %q: %w", opts.Prefix, err)
	}
	if l.more {
		l.page.NextToken = blob.EncodeToken(l.last)
	}
	return l.page, nil
}

// lister accumulates one page.
type lister struct {
	ctx           context.Context
	prefix, delim string
	after         string // resume strictly after this key or prefix
	limit         int

	page   blob.Page
	n      int    // objects plus prefixes in page
	last   string // last key or prefix added
	lastCP string
	more   bool // an item exists after the page
}

func (l *lister) full() bool { return l.n == l.limit }

// commonPrefix returns the common prefix s rolls up into, if any: s up to
// and including the first delimiter after the listing prefix.
func (l *lister) commonPrefix(s string) (string, bool) {
	if l.delim == "" {
		return "", false
	}
	i := strings.Index(s[len(l.prefix):], l.delim)
	if i < 0 {
		return "", false
	}
	return s[:len(l.prefix)+i+len(l.delim)], true
}

// addPrefix adds cp unless it was already returned (on this page or an
// earlier one).
func (l *lister) addPrefix(cp string) {
	if cp <= l.after || cp == l.lastCP {
		return
	}
	if l.full() {
		l.more = true
		return
	}
	l.page.CommonPrefixes = append(l.page.CommonPrefixes, cp)
	l.lastCP, l.last = cp, cp
	l.n++
}

// walk lists the directory dir, whose keys all start with base (depth
// segments), restricted to segments starting with partial.
func (l *lister) walk(dir, base string, depth int, partial string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	ents, err := readEntries(dir, depth)
	if err != nil {
		if notExist(err) {
			return nil // removed by a concurrent Delete: nothing there
		}
		return err
	}
	for _, e := range ents {
		if l.more {
			return nil
		}
		if !strings.HasPrefix(e.seg, partial) {
			continue
		}
		path := filepath.Join(dir, e.name)
		if e.kind == kindObject {
			key := base + e.seg
			if key <= l.after {
				continue
			}
			if cp, ok := l.commonPrefix(key); ok {
				l.addPrefix(cp)
				continue
			}
			if l.full() {
				l.more = true
				return nil
			}
			m := e.meta
			if m == nil {
				f, mm, _, err := openObject(path)
				if errors.Is(err, tally.ErrNotFound) {
					continue // deleted since the directory was read
				}
				if err != nil {
					return fmt.Errorf("object file %s: %w", path, err)
				}
				f.Close()
				m = &mm
			}
			if m.key != key {
				return fmt.Errorf("object file %s holds key %q, want %q: %w", path, m.key, key, errCorrupt)
			}
			l.page.Objects = append(l.page.Objects, m.info())
			l.last = key
			l.n++
			continue
		}
		dp := base + e.seg + "/"
		if l.after >= dp && !strings.HasPrefix(l.after, dp) {
			continue // every key under dp sorts before the token
		}
		if cp, ok := l.commonPrefix(dp); ok {
			if cp > l.after && cp != l.lastCP && hasObject(path) {
				l.addPrefix(cp)
			}
			continue
		}
		if err := l.walk(path, dp, depth+1, ""); err != nil {
			return err
		}
	}
	return nil
}

// entry is one object or directory in a directory, with its decoded segment.
type entry struct {
	name    string
	seg     string
	kind    nameKind
	sortKey string // seg for objects, seg+"/" for directories
	meta    *meta  // read already (hashed object names)
}

// readEntries reads dir's objects and subdirectories in key order. Temp
// files, foreign files and symlinks are skipped, as are hashed directories
// holding no object (their segment is only known from an object's key).
func readEntries(dir string, depth int) ([]entry, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	des, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	ents := make([]entry, 0, len(des))
	for _, de := range des {
		kind, seg, hashed := parseName(de.Name())
		switch {
		case kind == kindObject && !de.Type().IsRegular(),
			kind == kindDir && !de.IsDir(),
			kind == kindOther:
			continue
		}
		e := entry{name: de.Name(), seg: seg, kind: kind}
		if hashed {
			if !recoverSegment(filepath.Join(dir, e.name), depth, &e) {
				continue
			}
		}
		e.sortKey = e.seg
		if kind == kindDir {
			e.sortKey += "/"
		}
		ents = append(ents, e)
	}
	slices.SortFunc(ents, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })
	return ents, nil
}

// recoverSegment fills e.seg for a hashed name from the key in an object's
// header (the object itself, or any object under the directory), checking
// that it hashes to the name.
func recoverSegment(path string, depth int, e *entry) bool {
	var m *meta
	if e.kind == kindObject {
		f, mm, _, err := openObject(path)
		if err != nil {
			return false
		}
		f.Close()
		m = &mm
		e.meta = m
	} else if m = anyObject(path); m == nil {
		return false
	}
	segs := strings.Split(m.key, "/")
	if len(segs) <= depth || (e.kind == kindObject && len(segs) != depth+1) {
		return false
	}
	e.seg = segs[depth]
	_, stem, _ := parseName(e.name)
	return hashStem(e.seg) == stem
}

// anyObject returns the header of some object under dir, or nil if none.
func anyObject(dir string) *meta {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, de := range des {
		kind, _, _ := parseName(de.Name())
		p := filepath.Join(dir, de.Name())
		switch {
		case kind == kindObject && de.Type().IsRegular():
			if f, m, _, err := openObject(p); err == nil {
				f.Close()
				return &m
			}
		case kind == kindDir && de.IsDir():
			if m := anyObject(p); m != nil {
				return m
			}
		}
	}
	return nil
}

// hasObject reports whether any object lives under dir; empty directories
// (left by a crash, or by a race with Delete) yield no common prefix.
func hasObject(dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, de := range des {
		if kind, _, _ := parseName(de.Name()); kind == kindObject && de.Type().IsRegular() {
			return true
		}
	}
	for _, de := range des {
		if kind, _, _ := parseName(de.Name()); kind == kindDir && de.IsDir() && hasObject(filepath.Join(dir, de.Name())) {
			return true
		}
	}
	return false
}
