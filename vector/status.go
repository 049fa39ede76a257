package vector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/tallyhq/tally"
)

// Status is a collection's state as an operator sees it: what is published,
// what waits to be merged, what was set aside, and whether every file the
// published version needs is there.
type Status struct {
	Collection string
	// Version is the head version; 0 when nothing was published.
	Version  int64
	Segments int
	Records  int
	// Pending counts deltas not yet merged (quarantined ones excluded);
	// OldestPending is when the oldest of them was registered.
	Pending       int
	OldestPending time.Time
	// Quarantined are deltas the compactor could not read.
	Quarantined []Delta
	// Missing are blob keys the head manifest references that the store
	// does not have: a reader of this version would fail.
	Missing []string
}

// Status reads coll's head, its registered deltas, and checks (by a HEAD
// request each) that every segment and mask of the head version exists.
func (s *Store) Status(ctx context.Context, coll string) (Status, error) {
	if err := ValidateCollection(coll); err != nil {
		return Status{}, err
	}
	st := Status{Collection: coll}
	h, err := s.readHead(ctx, coll)
	if err != nil {
		return st, err
	}
	m, err := s.loadManifest(ctx, coll, h)
	if err != nil {
		if errors.Is(err, tally.ErrNotFound) {
			st.Version, st.Missing = h.Version, []string{h.Manifest}
			return st, nil
		}
		return st, err
	}
	st.Version, st.Segments, st.Records = m.Version, len(m.Segments), m.Records
	for _, si := range m.Segments {
		for _, key := range si.files() {
			if _, err := s.blob.Head(ctx, key); errors.Is(err, tally.ErrNotFound) {
				st.Missing = append(st.Missing, key)
			} else if err != nil {
				return st, fmt.Errorf("status of %s: %w", coll, err)
			}
		}
	}
	deltas, err := s.Deltas(ctx, coll, false, 0)
	if err != nil {
		return st, err
	}
	for _, d := range deltas {
		switch {
		case d.Quarantined != "":
			st.Quarantined = append(st.Quarantined, d)
		case d.AppliedVersion == 0:
			st.Pending++
			if st.OldestPending.IsZero() || d.RegisteredAt.Before(st.OldestPending) {
				st.OldestPending = d.RegisteredAt
			}
		}
	}
	return st, nil
}

// Size is what the local segment cache holds on disk.
func (c *Cache) Size() (bytes int64, files int, err error) {
	err = filepath.WalkDir(c.c.dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			bytes += info.Size()
			files++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("size of vector cache %s: %w", c.c.dir, err)
	}
	return bytes, files, nil
}

// ProbeTook is how long the start-up mount probe took (0 when the mode
// needs no mount).
func (c *Cache) ProbeTook() time.Duration { return c.probeTook }
