package segment

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// sample is a segment with every section non-empty.
func sample(t testing.TB) []byte {
	return write(t, 8, genRecords(12, 8, 21), []string{"t1", "t2"}, BuildOptions{Quantize: true, Graph: []byte("graph bytes")})
}

// reseal recomputes every checksum of data in place, so a test (or the
// fuzzer) can reach the structural checks behind them. It does nothing
// where the header or table bounds make no sense.
func reseal(data []byte) {
	if len(data) < headerSize {
		return
	}
	nsec := uint64(le.Uint32(data[24:]))
	if nsec > maxSections || uint64(len(data)) < headerSize+nsec*entrySize {
		le.PutUint32(data[60:], checksum(data[:60]))
		return
	}
	table := data[headerSize : headerSize+nsec*entrySize]
	for i := uint64(0); i < nsec; i++ {
		e := table[i*entrySize:]
		off, n := le.Uint64(e[8:]), le.Uint64(e[16:])
		if off <= uint64(len(data)) && n <= uint64(len(data))-off {
			le.PutUint32(e[24:], checksum(data[off:off+n]))
		}
	}
	le.PutUint32(data[56:], checksum(table))
	le.PutUint32(data[60:], checksum(data[:60]))
}

// section returns the table entry of kind in data.
func sectionOf(t *testing.T, data []byte, kind uint32) entry {
	t.Helper()
	s, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range s.entries {
		if e.kind == kind {
			return e
		}
	}
	t.Fatalf("no section %s", sectionName(kind))
	return entry{}
}

// expectCorrupt checks that Parse rejects data with an error naming want,
// and that SkipVerify either rejects it too or accepts it with accessors
// that do not panic and a Verify that fails.
func expectCorrupt(t *testing.T, data []byte, want string) {
	t.Helper()
	_, err := Parse(data)
	if err == nil {
		t.Fatalf("Parse accepted corrupt data (want %q)", want)
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q, want ErrCorrupt mentioning %q", err, want)
	}
	s, err := ParseWith(data, ParseOptions{SkipVerify: true})
	if err == nil {
		exerciseSegment(t, s, false)
		err = s.Verify()
		if err == nil {
			t.Fatalf("SkipVerify then Verify accepted corrupt data (want %q)", want)
		}
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("SkipVerify: err = %v, want ErrCorrupt", err)
	}
}

func TestCorruptHeader(t *testing.T) {
	good := sample(t)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }

	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa")
	png = append(png, make([]byte, 100)...)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	_ = tw.WriteHeader(&tar.Header{Name: "chroma.sqlite3", Size: 5, Mode: 0o644})
	_, _ = tw.Write([]byte("hello"))
	_ = tw.Close()
	var gzBuf bytes.Buffer
	gw := gzip.NewWriter(&gzBuf)
	_, _ = gw.Write(good)
	_ = gw.Close()

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"nil", nil, "truncated at byte 0"},
		{"magic prefix", []byte("TALL"), "truncated at byte 4"},
		{"truncated header", good[:40], "truncated at byte 40 (header is 64 bytes)"},
		{"header only", good[:headerSize], fmt.Sprintf("truncated at byte 64 (header says the file is %d bytes)", len(good))},
		{"wrong magic", mod(func(b []byte) []byte { b[0] = 't'; return b }), "not a tally segment"},
		{"short garbage", []byte("hi"), "not a tally segment"},
		{"png", png, "not a tally segment (file starts 89 50 4e 47"},
		{"tar", tarBuf.Bytes(), "not a tally segment"},
		{"gzip of a segment", gzBuf.Bytes(), "not a tally segment (file starts 1f 8b"},
		{"json", []byte(`{"lines":[]}` + strings.Repeat(" ", 80)), "not a tally segment"},
		{"future version", mod(func(b []byte) []byte { le.PutUint16(b[8:], 2); reseal(b); return b }), "format version 2, this build reads 1"},
		{"version zero", mod(func(b []byte) []byte { le.PutUint16(b[8:], 0); reseal(b); return b }), "format version 0"},
		{"version flipped", mod(func(b []byte) []byte { b[8] ^= 0x04; return b }), "checksum mismatch in header (and unknown format version 5)"},
		{"header byte flipped", mod(func(b []byte) []byte { b[13] ^= 1; return b }), "checksum mismatch in header"},
		{"header crc flipped", mod(func(b []byte) []byte { b[62] ^= 1; return b }), "checksum mismatch in header"},
		{"table byte flipped", mod(func(b []byte) []byte { b[headerSize+9] ^= 1; return b }), "checksum mismatch in section table"},
		{"table crc flipped", mod(func(b []byte) []byte { b[57] ^= 1; return b }), "checksum mismatch in header"},
		{"table crc wrong", mod(func(b []byte) []byte { b[57] ^= 1; le.PutUint32(b[60:], checksum(b[:60])); return b }), "checksum mismatch in section table"},
		{"trailing bytes", append(bytes.Clone(good), 0, 0, 0), "3 unexpected bytes after the end"},
		{"unknown flags", mod(func(b []byte) []byte { b[10] |= 0x80; reseal(b); return b }), "unknown flags"},
		{"reserved", mod(func(b []byte) []byte { b[44] = 1; reseal(b); return b }), "reserved bytes"},
		{"dims zero", mod(func(b []byte) []byte { le.PutUint32(b[12:], 0); reseal(b); return b }), "dims 0 out of range"},
		{"dims huge", mod(func(b []byte) []byte { le.PutUint32(b[12:], 1<<30); reseal(b); return b }), "out of range"},
		{"no sections", mod(func(b []byte) []byte { le.PutUint32(b[24:], 0); reseal(b); return b }), "section count 0"},
		{"too many sections", mod(func(b []byte) []byte { le.PutUint32(b[24:], 1000); reseal(b); return b }), "section count 1000"},
		{"file size lies", mod(func(b []byte) []byte { le.PutUint64(b[32:], 1<<62); reseal(b); return b }), "truncated at byte"},
		{"graph flag cleared", mod(func(b []byte) []byte { b[10] &^= flagGraph; reseal(b); return b }), "section graph is present but its header flag is not set"},
		{"count lies", mod(func(b []byte) []byte { le.PutUint32(b[16:], 13); reseal(b); return b }), "section ids: 12 entries, want 13"},
		{"tombstone count lies", mod(func(b []byte) []byte { le.PutUint32(b[20:], 1); reseal(b); return b }), "section tombstones: 2 entries, want 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expectCorrupt(t, c.data, c.want) })
	}
}

func TestCorruptVersionIsDistinct(t *testing.T) {
	b := sample(t)
	le.PutUint16(b[8:], 7)
	reseal(b)
	_, err := Parse(b)
	if !errors.Is(err, ErrUnsupportedVersion) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrUnsupportedVersion and ErrCorrupt", err)
	}
	_, err = Parse(sample(t)[:100])
	if errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("truncation reported as version: %v", err)
	}
}

// TestCorruptEverySection flips one byte in the middle of each section and
// truncates the file inside each section.
func TestCorruptEverySection(t *testing.T) {
	good := sample(t)
	s, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range s.entries {
		name := sectionName(e.kind)
		if e.length == 0 {
			continue // an empty section has no byte to flip or cut
		}
		t.Run("flip/"+name, func(t *testing.T) {
			for _, at := range []uint64{0, e.length / 2, e.length - 1} {
				b := bytes.Clone(good)
				b[e.offset+at] ^= 0x10
				expectCorrupt(t, b, "checksum mismatch in section "+name+" ")
			}
		})
		t.Run("truncate/"+name, func(t *testing.T) {
			cut := e.offset + e.length/2
			expectCorrupt(t, good[:cut], fmt.Sprintf("truncated at byte %d", cut))
		})
	}
	t.Run("padding", func(t *testing.T) {
		ids := sectionOf(t, good, kindIDs)
		end := ids.offset + ids.length
		if end%align == 0 {
			t.Fatalf("the sample has no padding after its ids section (ends at %d); change the sample", end)
		}
		b := bytes.Clone(good)
		b[end] = 1
		expectCorrupt(t, b, "section ids: padding bytes are not zero")
	})
}

// TestCorruptStructure breaks a section's structure and fixes up the
// checksums, the case of a buggy writer rather than a damaged file.
func TestCorruptStructure(t *testing.T) {
	good := sample(t)
	at := func(kind uint32) uint64 { return sectionOf(t, good, kind).offset }
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); reseal(b); return b }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"ids first offset", mod(func(b []byte) { le.PutUint32(b[at(kindIDs)+4:], 1) }), "section ids: first offset is not 0"},
		{"ids offset decreases", mod(func(b []byte) { le.PutUint32(b[at(kindIDs)+12:], 0) }), "section ids: offset 2 decreases"},
		{"ids table too long", mod(func(b []byte) { le.PutUint32(b[at(kindIDs):], 1<<30) }), "section ids: 1073741824 entries"},
		{"order out of range", mod(func(b []byte) { le.PutUint32(b[at(kindOrder)+4:], 99) }), "section order: entry 1 is 99"},
		{"order repeats", mod(func(b []byte) { copy(b[at(kindOrder)+4:at(kindOrder)+8], b[at(kindOrder):]) }), "section order: ids not strictly increasing at entry 1"},
		{"order swapped", mod(func(b []byte) {
			o := at(kindOrder)
			x, y := le.Uint32(b[o:]), le.Uint32(b[o+4:])
			le.PutUint32(b[o:], y)
			le.PutUint32(b[o+4:], x)
		}), "ids not strictly increasing"},
		{"meta-keys unsorted", mod(func(b []byte) { o := at(kindMetaKeys); b[o+4+4*6] = 'z' }), "section meta-keys: entries not strictly increasing"},
		{"meta unknown kind", mod(func(b []byte) {
			m := sectionOf(t, good, kindMeta)
			n := uint64(le.Uint32(b[m.offset:]))
			b[m.offset+4+4*(n+1)+1] = 9 // record 0, first field's kind
		}), "section meta: record 0: unknown value kind 9"},
		{"meta bad key", mod(func(b []byte) {
			m := sectionOf(t, good, kindMeta)
			n := uint64(le.Uint32(b[m.offset:]))
			b[m.offset+4+4*(n+1)] = 100
		}), "key index 100, dictionary has"},
		{"quant scale NaN", mod(func(b []byte) { le.PutUint32(b[at(kindQuantScales):], 0x7fc00000) }), "section quant-scales: scale 0 is NaN"},
		{"offset moved", mod(func(b []byte) { le.PutUint64(b[headerSize+entrySize+8:], at(kindOrder)+64) }), "section order: offset"},
		{"length past end", mod(func(b []byte) { le.PutUint64(b[headerSize+16:], 1<<40) }), "run past the end of the file"},
		{"duplicate section", mod(func(b []byte) { le.PutUint32(b[headerSize+entrySize:], kindIDs) }), "section ids appears twice"},
		{"missing section", mod(func(b []byte) { le.PutUint32(b[headerSize+entrySize:], 77) }), "section order is missing"},
		{"zero kind", mod(func(b []byte) { le.PutUint32(b[headerSize:], 0) }), "entry 0: bad kind"},
		{"tombstones unsorted", mod(func(b []byte) {
			tb := sectionOf(t, good, kindTombstones)
			n := uint64(le.Uint32(b[tb.offset:]))
			copy(b[tb.offset+4+4*(n+1):], "t3") // t3, t2
		}), "section tombstones: entries not strictly increasing at 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expectCorrupt(t, c.data, c.want) })
	}
}

func TestUnknownSectionIgnored(t *testing.T) {
	// A later writer may append an optional section; this reader checks its
	// checksum and otherwise ignores it.
	good := sample(t)
	g := sectionOf(t, good, kindGraph)
	b := bytes.Clone(good)
	le.PutUint32(b[headerSize+8*entrySize:], 42) // the graph entry becomes kind 42
	b[10] &^= flagGraph
	reseal(b)
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Graph() != nil || s.Len() != 12 {
		t.Fatal("unknown section not ignored")
	}
	b[g.offset] ^= 1
	expectCorrupt(t, b, "checksum mismatch in section kind-42")
}
