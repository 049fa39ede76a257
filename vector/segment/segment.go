package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// nativeLE reports whether the host is little-endian, so the file's float32
// arrays can be used in place. Tests flip it to exercise the decoding path.
var nativeLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Segment is a parsed, read-only segment. Its accessors are safe for
// concurrent use. Slices it returns (Vector, Quantized, Graph) alias the
// underlying bytes: they must not be modified, and for a segment from
// OpenFile they are valid only until Close.
type Segment struct {
	data     []byte
	h        header
	entries  []entry
	ids      blobTable
	order    []byte
	metaKeys blobTable
	meta     blobTable
	tombs    blobTable
	vectors  []float32
	qscales  []byte
	qcodes   []byte
	graph    []byte
	unmap    func() error
}

// ParseOptions tunes how much Parse checks.
type ParseOptions struct {
	// SkipVerify skips what Verify does: the CRC-32C of every section
	// (which reads every byte) and the per-record checks (ids sorted and
	// unique, metadata well formed). What keeps the accessors memory-safe
	// still runs — header and table checksums, bounds, offset tables — so a
	// damaged file can give wrong answers but never a panic. Use it for a
	// file verified once already, such as a local cache entry checked when
	// it was downloaded: opening then costs microseconds, not a pass over
	// the data.
	SkipVerify bool
}

// Parse checks data fully — header, section table, bounds, alignment, every
// checksum and the structure of every section — and returns a Segment that
// reads data in place (nothing is copied on little-endian hosts when the
// vectors are 4-byte aligned in memory). data must not change while the
// Segment is in use. Any problem is an error wrapping ErrCorrupt that says
// what is wrong; Parse never panics.
func Parse(data []byte) (*Segment, error) { return ParseWith(data, ParseOptions{}) }

// ParseWith is Parse with options.
func ParseWith(data []byte, opts ParseOptions) (*Segment, error) {
	s := &Segment{data: data}
	if err := s.parse(opts); err != nil {
		return nil, err
	}
	return s, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("segment: "+format+": %w", append(args, ErrCorrupt)...)
}

func (s *Segment) parse(opts ParseOptions) error {
	data := s.data
	n := len(data)
	if n < len(magic) {
		if string(data) == magic[:n] {
			return corrupt("truncated at byte %d (header is %d bytes)", n, headerSize)
		}
		return corrupt("not a tally segment (file starts % x)", data)
	}
	if string(data[:len(magic)]) != magic {
		return corrupt("not a tally segment (file starts % x)", data[:min(n, 16)])
	}
	if n < headerSize {
		return corrupt("truncated at byte %d (header is %d bytes)", n, headerSize)
	}
	hb := data[:headerSize]
	headerOK := le.Uint32(hb[60:]) == checksum(hb[:60])
	h := header{
		version:    le.Uint16(hb[8:]),
		flags:      le.Uint16(hb[10:]),
		dims:       le.Uint32(hb[12:]),
		count:      le.Uint32(hb[16:]),
		tombstones: le.Uint32(hb[20:]),
		sections:   le.Uint32(hb[24:]),
		fileSize:   le.Uint64(hb[32:]),
		tableCRC:   le.Uint32(hb[56:]),
	}
	if h.version != Version {
		if headerOK {
			return fmt.Errorf("segment: format version %d, this build reads %d: %w (%w)", h.version, Version, ErrUnsupportedVersion, ErrCorrupt)
		}
		return corrupt("checksum mismatch in header (and unknown format version %d)", h.version)
	}
	if !headerOK {
		return corrupt("checksum mismatch in header (stored %08x, computed %08x)", le.Uint32(hb[60:]), checksum(hb[:60]))
	}
	if le.Uint32(hb[28:]) != 0 || !allZero(hb[40:56]) {
		return corrupt("header: reserved bytes are not zero")
	}
	if h.flags&^knownFlags != 0 {
		return corrupt("header: unknown flags %#x", h.flags)
	}
	if h.dims == 0 || h.dims > MaxDims {
		return corrupt("header: dims %d out of range 1..%d", h.dims, MaxDims)
	}
	if h.sections == 0 || h.sections > maxSections {
		return corrupt("header: section count %d out of range 1..%d", h.sections, maxSections)
	}
	if uint64(n) < h.fileSize {
		return corrupt("truncated at byte %d (header says the file is %d bytes)", n, h.fileSize)
	}
	if uint64(n) > h.fileSize {
		return corrupt("%d unexpected bytes after the end of the segment at byte %d", uint64(n)-h.fileSize, h.fileSize)
	}
	nsec := int(h.sections)
	start := dataStart(nsec)
	if h.fileSize < start {
		return corrupt("header: file size %d is smaller than its section table", h.fileSize)
	}
	table := data[headerSize : headerSize+nsec*entrySize]
	if got := checksum(table); got != h.tableCRC {
		return corrupt("checksum mismatch in section table (stored %08x, computed %08x)", h.tableCRC, got)
	}
	if !allZero(data[headerSize+nsec*entrySize : start]) {
		return corrupt("section table: padding bytes are not zero")
	}
	s.h = h

	// The table: canonical placement, no duplicates, zero padding.
	s.entries = make([]entry, nsec)
	var byKind [maxKnownKind + 1][]byte
	seen := func(kind uint32) bool {
		for _, e := range s.entries {
			if e.kind == kind {
				return true
			}
		}
		return false
	}
	pos := start
	for i := range s.entries {
		eb := table[i*entrySize:]
		e := entry{kind: le.Uint32(eb[0:]), offset: le.Uint64(eb[8:]), length: le.Uint64(eb[16:]), crc: le.Uint32(eb[24:])}
		name := sectionName(e.kind)
		if e.kind == 0 || le.Uint32(eb[4:]) != 0 || le.Uint32(eb[28:]) != 0 {
			return corrupt("section table entry %d: bad kind or reserved bytes", i)
		}
		if seen(e.kind) {
			return corrupt("section %s appears twice", name)
		}
		if e.offset != pos {
			return corrupt("section %s: offset %d, want %d (64-byte aligned after the previous section)", name, e.offset, pos)
		}
		if e.length > h.fileSize-e.offset {
			return corrupt("section %s: %d bytes at %d run past the end of the file at %d", name, e.length, e.offset, h.fileSize)
		}
		end := e.offset + e.length
		if i == nsec-1 {
			if end != h.fileSize {
				return corrupt("section %s ends at %d but the file at %d", name, end, h.fileSize)
			}
		} else {
			pos = alignUp(end)
			if pos > h.fileSize {
				return corrupt("section %s: padding runs past the end of the file", name)
			}
			if !allZero(data[end:pos]) {
				return corrupt("section %s: padding bytes are not zero", name)
			}
		}
		s.entries[i] = e
		if e.kind <= maxKnownKind {
			byKind[e.kind] = data[e.offset:end:end]
		}
	}
	for kind := uint32(1); kind <= maxKnownKind; kind++ {
		want := true
		switch kind {
		case kindQuantScales, kindQuantCodes:
			want = h.flags&flagQuant != 0
		case kindGraph:
			want = h.flags&flagGraph != 0
		}
		if want != seen(kind) {
			if want {
				return corrupt("section %s is missing", sectionName(kind))
			}
			return corrupt("section %s is present but its header flag is not set", sectionName(kind))
		}
	}

	// Checksums first, so a damaged section is reported as such rather
	// than as whatever structural check its garbage happens to fail.
	if !opts.SkipVerify {
		if err := s.verifyChecksums(); err != nil {
			return err
		}
	}
	if err := s.parseSections(&byKind); err != nil {
		return err
	}
	if !opts.SkipVerify {
		return s.verifyRecords()
	}
	return nil
}

// Verify runs the checks ParseOptions.SkipVerify skipped: every section's
// checksum, then the per-record checks. Parse runs it by default.
func (s *Segment) Verify() error {
	if err := s.verifyChecksums(); err != nil {
		return err
	}
	return s.verifyRecords()
}

func (s *Segment) verifyChecksums() error {
	for _, e := range s.entries {
		if got := checksum(s.data[e.offset : e.offset+e.length]); got != e.crc {
			return corrupt("checksum mismatch in section %s (stored %08x, computed %08x)", sectionName(e.kind), e.crc, got)
		}
	}
	return nil
}

// parseSections checks what keeps every accessor in bounds whatever the
// bytes are: table offsets, section sizes, order entries in range. All of
// it reads O(records) integers; nothing here reads strings or vectors.
func (s *Segment) parseSections(sec *[maxKnownKind + 1][]byte) error {
	h := &s.h
	count, dims := uint64(h.count), uint64(h.dims)
	var err error
	if s.ids, err = parseBlobTable("ids", sec[kindIDs], count); err != nil {
		return err
	}
	if s.metaKeys, err = parseBlobTable("meta-keys", sec[kindMetaKeys], math.MaxUint32); err != nil {
		return err
	}
	if s.meta, err = parseBlobTable("meta", sec[kindMeta], count); err != nil {
		return err
	}
	if s.tombs, err = parseBlobTable("tombstones", sec[kindTombstones], uint64(h.tombstones)); err != nil {
		return err
	}
	s.order = sec[kindOrder]
	if uint64(len(s.order)) != 4*count {
		return corrupt("section order: %d bytes, want %d for %d records", len(s.order), 4*count, count)
	}
	for k := uint64(0); k < count; k++ {
		if i := le.Uint32(s.order[4*k:]); uint64(i) >= count {
			return corrupt("section order: entry %d is %d, want < %d", k, i, count)
		}
	}
	vec := sec[kindVectors]
	if uint64(len(vec)) != count*dims*4 {
		return corrupt("section vectors: %d bytes, want %d for %d × %d float32", len(vec), count*dims*4, count, dims)
	}
	s.vectors = floats(vec)
	if h.flags&flagQuant != 0 {
		s.qscales = sec[kindQuantScales]
		if uint64(len(s.qscales)) != 4*count {
			return corrupt("section quant-scales: %d bytes, want %d", len(s.qscales), 4*count)
		}
		s.qcodes = sec[kindQuantCodes]
		if uint64(len(s.qcodes)) != count*dims {
			return corrupt("section quant-codes: %d bytes, want %d", len(s.qcodes), count*dims)
		}
	}
	if h.flags&flagGraph != 0 {
		s.graph = sec[kindGraph]
	}
	return nil
}

// verifyRecords checks what a correct writer guarantees beyond bounds: ids
// non-empty, unique and sorted by the order section; dictionary and
// tombstones sorted; metadata records well formed; scales finite. Vector
// components are not checked for NaN: the checksum vouches for them.
func (s *Segment) verifyRecords() error {
	if err := s.metaKeys.checkSorted("meta-keys"); err != nil {
		return err
	}
	if err := s.tombs.checkSorted("tombstones"); err != nil {
		return err
	}
	// Strictly increasing ids along the order imply a permutation of unique
	// ids (n in-range indices with n distinct ids are n distinct indices).
	var prev []byte
	for k := 0; k < s.Len(); k++ {
		i := le.Uint32(s.order[4*k:])
		id := s.ids.get(int(i))
		if len(id) == 0 {
			return corrupt("section ids: record %d has an empty id", i)
		}
		if k > 0 && bytes.Compare(prev, id) >= 0 {
			return corrupt("section order: ids not strictly increasing at entry %d (%q after %q)", k, id, prev)
		}
		prev = id
	}
	nkeys := uint64(s.metaKeys.n)
	for i := 0; i < s.meta.n; i++ {
		if err := checkMeta(s.meta.get(i), nkeys); err != nil {
			return corrupt("section meta: record %d: %v", i, err)
		}
	}
	for i := 0; i < len(s.qscales)/4; i++ {
		if f := math.Float32frombits(le.Uint32(s.qscales[4*i:])); !finite32(f) || f < 0 {
			return corrupt("section quant-scales: scale %d is %v", i, f)
		}
	}
	return nil
}

// floats views b as little-endian float32s: in place when the host is
// little-endian and b is 4-byte aligned in memory (always true for a mapped
// file, whose sections are 64-byte aligned), else as a decoded copy.
func floats(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	if nativeLE && uintptr(p)%4 == 0 {
		return unsafe.Slice((*float32)(p), len(b)/4)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// blobTable is a validated view of a blob table (see the package doc).
type blobTable struct {
	n    int
	offs []byte // (n+1) × u32
	data []byte
}

// parseBlobTable validates b as a blob table of want entries (any number up
// to want when want is math.MaxUint32).
func parseBlobTable(name string, b []byte, want uint64) (blobTable, error) {
	if len(b) < 4 {
		return blobTable{}, corrupt("section %s: %d bytes, too short for a table", name, len(b))
	}
	n := uint64(le.Uint32(b))
	if want != math.MaxUint32 && n != want {
		return blobTable{}, corrupt("section %s: %d entries, want %d", name, n, want)
	}
	offEnd := 4 + 4*(n+1)
	if offEnd > uint64(len(b)) {
		return blobTable{}, corrupt("section %s: offsets for %d entries need %d bytes, have %d", name, n, offEnd, len(b))
	}
	t := blobTable{n: int(n), offs: b[4:offEnd], data: b[offEnd:]}
	if le.Uint32(t.offs) != 0 {
		return blobTable{}, corrupt("section %s: first offset is not 0", name)
	}
	prev := uint32(0)
	for i := uint64(1); i <= n; i++ {
		o := le.Uint32(t.offs[4*i:])
		if o < prev {
			return blobTable{}, corrupt("section %s: offset %d decreases", name, i)
		}
		prev = o
	}
	if uint64(prev) != uint64(len(t.data)) {
		return blobTable{}, corrupt("section %s: offsets end at %d, data is %d bytes", name, prev, len(t.data))
	}
	return t, nil
}

func (t *blobTable) get(i int) []byte {
	a, b := le.Uint32(t.offs[4*i:]), le.Uint32(t.offs[4*i+4:])
	return t.data[a:b:b]
}

// checkSorted requires non-empty, strictly increasing entries.
func (t *blobTable) checkSorted(name string) error {
	var prev []byte
	for i := 0; i < t.n; i++ {
		e := t.get(i)
		if len(e) == 0 {
			return corrupt("section %s: entry %d is empty", name, i)
		}
		if i > 0 && bytes.Compare(prev, e) >= 0 {
			return corrupt("section %s: entries not strictly increasing at %d", name, i)
		}
		prev = e
	}
	return nil
}

// search finds s in a sorted table.
func (t *blobTable) search(s string) (int, bool) {
	lo, hi := 0, t.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if string(t.get(m)) < s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < t.n && string(t.get(lo)) == s
}

// Len is the number of records.
func (s *Segment) Len() int { return int(s.h.count) }

// Dims is the number of components of every vector.
func (s *Segment) Dims() int { return int(s.h.dims) }

// Info summarizes the segment.
func (s *Segment) Info() Info {
	return Info{Count: s.Len(), Dims: s.Dims(), Tombstones: s.tombs.n, Bytes: int64(len(s.data))}
}

// ID returns the id of record i (0 ≤ i < Len()). The string is a copy, so
// it outlives Close.
func (s *Segment) ID(i int) string { return string(s.ids.get(i)) }

// Vector returns record i's vector, aliasing the segment's bytes (no copy on
// little-endian hosts). It is read-only — writing to a mapped file's vector
// crashes the process — and valid until Close. Its capacity is dims, so an
// append cannot overwrite the next row.
func (s *Segment) Vector(i int) []float32 {
	d := int(s.h.dims)
	return s.vectors[i*d : (i+1)*d : (i+1)*d]
}

// Vectors returns every record's vector as one row-major slice of Len() ×
// Dims() floats (aliasing the segment's bytes, read-only, valid until
// Close): the layout the ANN index and exact scans read in place.
func (s *Segment) Vectors() []float32 {
	return s.vectors[:len(s.vectors):len(s.vectors)]
}

// HasQuantized reports whether the segment carries the int8 copy.
func (s *Segment) HasQuantized() bool { return s.h.flags&flagQuant != 0 }

// Quantized returns record i's int8 codes (aliasing the segment's bytes,
// read-only, valid until Close) and its scale: component j ≈ codes[j] ×
// scale. It returns nil, 0 when HasQuantized is false.
func (s *Segment) Quantized(i int) ([]int8, float32) {
	if !s.HasQuantized() {
		return nil, 0
	}
	d := int(s.h.dims)
	row := s.qcodes[i*d : (i+1)*d : (i+1)*d]
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(row))), d), math.Float32frombits(le.Uint32(s.qscales[4*i:]))
}

// Graph returns the ANN graph bytes given to Write (aliasing the segment,
// read-only, valid until Close), or nil if there is none.
func (s *Segment) Graph() []byte { return s.graph }

// Lookup returns the index of the record with the given id.
func (s *Segment) Lookup(id string) (int, bool) {
	lo, hi := 0, int(s.h.count)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if string(s.ids.get(int(le.Uint32(s.order[4*m:])))) < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < int(s.h.count) {
		i := int(le.Uint32(s.order[4*lo:]))
		if string(s.ids.get(i)) == id {
			return i, true
		}
	}
	return -1, false
}

// Tombstones returns the ids this segment deletes, sorted.
func (s *Segment) Tombstones() []string {
	out := make([]string, s.tombs.n)
	for i := range out {
		out[i] = string(s.tombs.get(i))
	}
	return out
}

// Deletes reports whether id is among this segment's tombstones, without
// allocating: how a reader merging newer deltas over older segments hides
// deleted records.
func (s *Segment) Deletes(id string) bool {
	_, ok := s.tombs.search(id)
	return ok
}

// Record returns a copy of record i that outlives Close, e.g. for
// compaction to rewrite it into a new segment.
func (s *Segment) Record(i int) Record {
	return Record{ID: s.ID(i), Vector: append([]float32(nil), s.Vector(i)...), Meta: s.Meta(i)}
}

// Close releases the file mapping of a segment from OpenFile (a no-op for
// one from Parse). Slices returned by Vector, Quantized and Graph must not
// be used afterwards. Close is idempotent but must not race with reads.
func (s *Segment) Close() error {
	unmap := s.unmap
	s.unmap = nil
	if unmap == nil {
		return nil
	}
	s.data, s.vectors, s.qcodes, s.qscales, s.graph, s.order = nil, nil, nil, nil, nil, nil
	s.ids, s.meta, s.metaKeys, s.tombs = blobTable{}, blobTable{}, blobTable{}, blobTable{}
	s.h.count, s.h.flags = 0, 0
	return unmap()
}
