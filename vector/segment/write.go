package segment

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/tallyhq/tally"
)

// Record is one vector with its id and metadata, the unit a segment stores.
// Meta values are string, float64 or bool; Write also accepts Go integer
// types and float32 and stores them as float64.
type Record struct {
	ID     string
	Vector []float32
	Meta   map[string]any
}

// BuildOptions selects the optional sections Write adds.
type BuildOptions struct {
	// Quantize adds an int8 copy of every vector with a per-vector scale,
	// for a first pass that reads a quarter of the bytes; survivors are
	// rescored exactly with the float32 vectors.
	Quantize bool

	// Graph is an ANN graph over the records' indices (input order) in the
	// ANN package's own encoding. The segment stores and checksums it and
	// hands it back unchanged from Graph; empty means no graph.
	Graph []byte
}

// Info summarizes a segment, as written by Write or opened by Parse.
type Info struct {
	Count      int   // records (upserts)
	Dims       int   // components per vector
	Tombstones int   // ids this segment deletes
	Bytes      int64 // size of the file
}

// Write encodes one segment to w. Records keep their order (index i of the
// segment is records[i]); tombstones are sorted and de-duplicated.
//
// Everything is validated before the first byte is written, so a rejected
// batch leaves w untouched: dims must be in 1..MaxDims, every id non-empty
// and unique, every vector exactly dims finite components, every meta key
// non-empty with a supported value, and no id may be both upserted and
// deleted by the same segment. Those errors wrap tally.ErrInvalidArgument;
// errors from w are returned wrapped as they are.
func Write(w io.Writer, dims int, records []Record, tombstones []string, opts BuildOptions) (Info, error) {
	b, err := build(dims, records, tombstones, opts)
	if err != nil {
		return Info{}, err
	}
	if err := b.writeTo(w); err != nil {
		return Info{}, fmt.Errorf("segment: write: %w", err)
	}
	return Info{Count: len(records), Dims: dims, Tombstones: int(b.h.tombstones), Bytes: int64(b.h.fileSize)}, nil
}

// section is one section being written: its bytes in memory, or a streamer
// for the bulk float32 vectors (which are written straight from the
// caller's slices on little-endian hosts).
type section struct {
	entry
	data   []byte
	stream func(w io.Writer) error
}

type builder struct {
	h        header
	sections []section
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("segment: "+format+": %w", append(args, tally.ErrInvalidArgument)...)
}

func build(dims int, records []Record, tombstones []string, opts BuildOptions) (*builder, error) {
	if dims <= 0 || dims > MaxDims {
		return nil, invalid("dims %d out of range 1..%d", dims, MaxDims)
	}
	if len(records) >= maxU32 || len(tombstones) >= maxU32 {
		return nil, invalid("too many records (%d) or tombstones (%d) for one segment", len(records), len(tombstones))
	}
	for i := range records {
		r := &records[i]
		if r.ID == "" {
			return nil, invalid("record %d: empty id", i)
		}
		if len(r.Vector) != dims {
			return nil, invalid("record %d (%q): vector has %d components, want %d", i, r.ID, len(r.Vector), dims)
		}
		for j, x := range r.Vector {
			if !finite32(x) {
				return nil, invalid("record %d (%q): component %d is %v", i, r.ID, j, x)
			}
		}
	}

	// order: indices sorted by id; adjacent equal ids are duplicates.
	order := make([]uint32, len(records))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(records[a].ID, records[b].ID) })
	for k := 1; k < len(order); k++ {
		if records[order[k-1]].ID == records[order[k]].ID {
			return nil, invalid("duplicate id %q (records %d and %d)", records[order[k]].ID, min(order[k-1], order[k]), max(order[k-1], order[k]))
		}
	}

	tombs := slices.Clone(tombstones)
	slices.Sort(tombs)
	tombs = slices.Compact(tombs)
	for _, t := range tombs {
		if t == "" {
			return nil, invalid("empty tombstone id")
		}
		if _, found := slices.BinarySearchFunc(order, t, func(i uint32, id string) int { return strings.Compare(records[i].ID, id) }); found {
			return nil, invalid("id %q is both upserted and deleted in one segment", t)
		}
	}

	keys, meta, err := encodeMeta(records)
	if err != nil {
		return nil, err
	}

	ids := newTable(len(records))
	idBytes := 0
	for i := range records {
		idBytes += len(records[i].ID)
	}
	ids.data = make([]byte, 0, idBytes)
	for i := range records {
		ids.data = append(ids.data, records[i].ID...)
		if err := ids.end("ids"); err != nil {
			return nil, err
		}
	}
	tt := newTable(len(tombs))
	for _, t := range tombs {
		tt.data = append(tt.data, t...)
		if err := tt.end("tombstones"); err != nil {
			return nil, err
		}
	}
	orderBytes := make([]byte, 4*len(order))
	for k, i := range order {
		le.PutUint32(orderBytes[4*k:], i)
	}

	b := &builder{h: header{
		version:    Version,
		dims:       uint32(dims),
		count:      uint32(len(records)),
		tombstones: uint32(len(tombs)),
	}}
	b.add(kindIDs, ids.bytes())
	b.add(kindOrder, orderBytes)
	b.add(kindMetaKeys, keys)
	b.add(kindMeta, meta)
	b.add(kindTombstones, tt.bytes())

	var codes []byte
	if opts.Quantize {
		b.h.flags |= flagQuant
		scales := make([]byte, 4*len(records))
		codes = make([]byte, len(records)*dims)
		for i := range records {
			q := unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(codes[i*dims:]))), dims)
			le.PutUint32(scales[4*i:], math.Float32bits(Quantize(q, records[i].Vector)))
		}
		b.add(kindQuantScales, scales)
	}
	b.addVectors(records, dims)
	if opts.Quantize {
		b.add(kindQuantCodes, codes)
	}
	if len(opts.Graph) > 0 {
		b.h.flags |= flagGraph
		b.add(kindGraph, opts.Graph)
	}

	off := dataStart(len(b.sections))
	for i := range b.sections {
		s := &b.sections[i]
		s.offset = off
		off = alignUp(off + s.length)
	}
	last := b.sections[len(b.sections)-1]
	b.h.fileSize = last.offset + last.length
	b.h.sections = uint32(len(b.sections))
	return b, nil
}

func (b *builder) add(kind uint32, data []byte) {
	b.sections = append(b.sections, section{entry: entry{kind: kind, length: uint64(len(data)), crc: checksum(data)}, data: data})
}

// addVectors adds the float32 section without copying it on little-endian
// hosts: the checksum and the write both read the callers' slices.
func (b *builder) addVectors(records []Record, dims int) {
	var crc uint32
	var scratch []byte
	for i := range records {
		row := rowBytes(records[i].Vector, &scratch)
		crc = crc32.Update(crc, castagnoli, row)
	}
	b.sections = append(b.sections, section{
		entry: entry{kind: kindVectors, length: uint64(len(records)) * uint64(dims) * 4, crc: crc},
		stream: func(w io.Writer) error {
			var scratch []byte
			for i := range records {
				if _, err := w.Write(rowBytes(records[i].Vector, &scratch)); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

// rowBytes is v in the file's encoding: v's own memory on little-endian
// hosts, an encoded copy in *scratch otherwise.
func rowBytes(v []float32, scratch *[]byte) []byte {
	if len(v) == 0 {
		return nil
	}
	if nativeLE {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
	}
	buf := slices.Grow((*scratch)[:0], 4*len(v))[:4*len(v)]
	for j, x := range v {
		le.PutUint32(buf[4*j:], math.Float32bits(x))
	}
	*scratch = buf
	return buf
}

func (b *builder) writeTo(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	table := make([]byte, int(dataStart(len(b.sections))))
	for i := range b.sections {
		b.sections[i].encode(table[headerSize+i*entrySize:])
	}
	b.h.tableCRC = checksum(table[headerSize : headerSize+len(b.sections)*entrySize])
	b.h.encode(table[:headerSize])
	if _, err := bw.Write(table); err != nil {
		return err
	}
	pos := uint64(len(table))
	var zeros [align]byte
	for i := range b.sections {
		s := &b.sections[i]
		if _, err := bw.Write(zeros[:s.offset-pos]); err != nil {
			return err
		}
		var err error
		if s.stream != nil {
			err = s.stream(bw)
		} else {
			_, err = bw.Write(s.data)
		}
		if err != nil {
			return err
		}
		pos = s.offset + s.length
	}
	return bw.Flush()
}

// tableBuilder accumulates a blob table: append an entry's bytes to data,
// then call end.
type tableBuilder struct {
	offs []uint32
	data []byte
}

func newTable(n int) *tableBuilder {
	return &tableBuilder{offs: make([]uint32, 1, n+1)}
}

func (t *tableBuilder) end(name string) error {
	if uint64(len(t.data)) > maxBlobBytes {
		return invalid("%s exceed %d bytes", name, uint64(maxBlobBytes))
	}
	t.offs = append(t.offs, uint32(len(t.data)))
	return nil
}

func (t *tableBuilder) bytes() []byte {
	n := len(t.offs) - 1
	out := make([]byte, 4+4*len(t.offs)+len(t.data))
	le.PutUint32(out, uint32(n))
	for i, o := range t.offs {
		le.PutUint32(out[4+4*i:], o)
	}
	copy(out[4+4*len(t.offs):], t.data)
	return out
}

// encodeMeta builds the key dictionary and the per-record metadata table.
func encodeMeta(records []Record) (keysSection, metaSection []byte, err error) {
	keySet := map[string]struct{}{}
	for i := range records {
		for k := range records[i].Meta {
			if k == "" {
				return nil, nil, invalid("record %d (%q): empty meta key", i, records[i].ID)
			}
			keySet[k] = struct{}{}
		}
	}
	keys := make([]string, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	index := make(map[string]uint32, len(keys))
	kt := newTable(len(keys))
	for i, k := range keys {
		index[k] = uint32(i)
		kt.data = append(kt.data, k...)
		if err := kt.end("meta keys"); err != nil {
			return nil, nil, err
		}
	}

	mt := newTable(len(records))
	var fieldKeys []uint32
	for i := range records {
		m := records[i].Meta
		fieldKeys = fieldKeys[:0]
		for k := range m {
			fieldKeys = append(fieldKeys, index[k])
		}
		slices.Sort(fieldKeys)
		for _, ki := range fieldKeys {
			k := keys[ki]
			mt.data, err = appendField(mt.data, ki, m[k])
			if err != nil {
				return nil, nil, invalid("record %d (%q): meta %q: %v", i, records[i].ID, k, err)
			}
		}
		if err := mt.end("meta"); err != nil {
			return nil, nil, err
		}
	}
	return kt.bytes(), mt.bytes(), nil
}

// maxExactInt is the largest integer a float64 holds exactly; larger
// integers are rejected rather than silently rounded.
const maxExactInt = 1 << 53

// appendField encodes one field, normalizing Go numeric types to float64.
func appendField(b []byte, key uint32, v any) ([]byte, error) {
	var f float64
	switch x := v.(type) {
	case string:
		b = binary.AppendUvarint(b, uint64(key))
		b = append(b, metaString)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	case bool:
		b = binary.AppendUvarint(b, uint64(key))
		if x {
			return append(b, metaTrue), nil
		}
		return append(b, metaFalse), nil
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		return appendInt(b, key, int64(x))
	case int8:
		return appendInt(b, key, int64(x))
	case int16:
		return appendInt(b, key, int64(x))
	case int32:
		return appendInt(b, key, int64(x))
	case int64:
		return appendInt(b, key, x)
	case uint:
		return appendUint(b, key, uint64(x))
	case uint8:
		return appendUint(b, key, uint64(x))
	case uint16:
		return appendUint(b, key, uint64(x))
	case uint32:
		return appendUint(b, key, uint64(x))
	case uint64:
		return appendUint(b, key, x)
	case nil:
		return b, fmt.Errorf("nil value (want string, number or bool)")
	default:
		return b, fmt.Errorf("unsupported value type %T (want string, number or bool)", v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("number %v is not finite", f)
	}
	return appendNumber(b, key, f), nil
}

func appendInt(b []byte, key uint32, x int64) ([]byte, error) {
	if x > maxExactInt || x < -maxExactInt {
		return b, fmt.Errorf("integer %d does not fit a float64 exactly", x)
	}
	return appendNumber(b, key, float64(x)), nil
}

func appendUint(b []byte, key uint32, x uint64) ([]byte, error) {
	if x > maxExactInt {
		return b, fmt.Errorf("integer %d does not fit a float64 exactly", x)
	}
	return appendNumber(b, key, float64(x)), nil
}

func appendNumber(b []byte, key uint32, f float64) []byte {
	b = binary.AppendUvarint(b, uint64(key))
	b = append(b, metaNumber)
	return le.AppendUint64(b, math.Float64bits(f))
}

// finite32 reports whether x is neither NaN nor ±Inf.
func finite32(x float32) bool { return math.Float32bits(x)&0x7f800000 != 0x7f800000 }
