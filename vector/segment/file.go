package segment

import (
	"fmt"
	"math"
	"os"
)

// OpenFile maps the segment at path read-only and parses it fully (see
// Parse). Nothing is read up front beyond what the checks touch; vectors are
// used in place from the page cache. The file must not be modified or
// truncated while mapped (segments are immutable). Close unmaps it.
func OpenFile(path string) (*Segment, error) { return OpenFileWith(path, ParseOptions{}) }

// OpenFileWith is OpenFile with parse options: SkipVerify makes opening a
// cached, already verified segment cost O(records) integer reads instead of
// a pass over every byte.
func OpenFileWith(path string, opts ParseOptions) (*Segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	size := st.Size()
	if size < headerSize {
		// Too small to map usefully (and mmap rejects length 0): read it so
		// Parse reports what it is.
		small := make([]byte, size)
		if _, err := f.ReadAt(small, 0); err != nil {
			return nil, fmt.Errorf("segment: read %s: %w", path, err)
		}
		_, err := Parse(small)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("%s: %d bytes cannot be mapped: %w", path, size, ErrCorrupt)
	}
	data, unmap, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("segment: map %s: %w", path, err)
	}
	s, err := ParseWith(data, opts)
	if err != nil {
		_ = unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.unmap = unmap
	return s, nil
}
