package segment

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strconv"
)

// ErrCorrupt means bytes handed to Parse or OpenFile are not a valid segment:
// not a segment at all, a format version this build cannot read, truncated,
// or damaged (a checksum or a structural check failed). The wrapped message
// says which. Re-fetching the file may help; re-parsing the same bytes cannot.
var ErrCorrupt = errors.New("corrupt segment")

// ErrUnsupportedVersion means the bytes are a segment in a format version
// this build cannot read — most likely written by a newer Tally during a
// rolling upgrade. Such errors also wrap ErrCorrupt, but a caller that can
// tell them apart should not discard or rebuild the file: a newer reader can
// use it.
var ErrUnsupportedVersion = errors.New("unsupported segment format version")

// Version is the format version Write produces and the only one Parse reads.
const Version = 1

// MaxDims is the largest vector width a segment accepts. It bounds the size
// of a row and matches what embedding models produce (≤ 8192 components).
const MaxDims = 8192

const (
	magic        = "TALLYSEG"
	headerSize   = 64
	entrySize    = 32
	align        = 64
	maxSections  = 64
	flagQuant    = 1 << 0
	flagGraph    = 1 << 1
	knownFlags   = flagQuant | flagGraph
	maxU32       = 1<<32 - 1
	maxBlobBytes = maxU32 // offsets are u32
)

// Section kinds (see the package doc).
const (
	kindIDs         = 1
	kindOrder       = 2
	kindMetaKeys    = 3
	kindMeta        = 4
	kindTombstones  = 5
	kindQuantScales = 6
	kindVectors     = 7
	kindQuantCodes  = 8
	kindGraph       = 9
	maxKnownKind    = kindGraph
)

// sectionNames names each kind in error messages.
var sectionNames = [...]string{
	kindIDs:         "ids",
	kindOrder:       "order",
	kindMetaKeys:    "meta-keys",
	kindMeta:        "meta",
	kindTombstones:  "tombstones",
	kindQuantScales: "quant-scales",
	kindVectors:     "vectors",
	kindQuantCodes:  "quant-codes",
	kindGraph:       "graph",
}

func sectionName(kind uint32) string {
	if kind >= 1 && kind <= maxKnownKind {
		return sectionNames[kind]
	}
	return "kind-" + strconv.FormatUint(uint64(kind), 10)
}

// Metadata field kinds as stored on disk.
const (
	metaString = 1
	metaNumber = 2
	metaFalse  = 3
	metaTrue   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// alignUp rounds n up to the next multiple of align.
func alignUp(n uint64) uint64 { return (n + align - 1) &^ (align - 1) }

var le = binary.LittleEndian

// header is the decoded fixed-size header.
type header struct {
	version    uint16
	flags      uint16
	dims       uint32
	count      uint32
	tombstones uint32
	sections   uint32
	fileSize   uint64
	tableCRC   uint32
}

func (h *header) encode(b []byte) {
	copy(b[0:8], magic)
	le.PutUint16(b[8:], h.version)
	le.PutUint16(b[10:], h.flags)
	le.PutUint32(b[12:], h.dims)
	le.PutUint32(b[16:], h.count)
	le.PutUint32(b[20:], h.tombstones)
	le.PutUint32(b[24:], h.sections)
	le.PutUint64(b[32:], h.fileSize)
	le.PutUint32(b[56:], h.tableCRC)
	le.PutUint32(b[60:], checksum(b[:60]))
}

// entry is one decoded section table entry.
type entry struct {
	kind   uint32
	offset uint64
	length uint64
	crc    uint32
}

func (e *entry) encode(b []byte) {
	le.PutUint32(b[0:], e.kind)
	le.PutUint64(b[8:], e.offset)
	le.PutUint64(b[16:], e.length)
	le.PutUint32(b[24:], e.crc)
}

// dataStart is where the first section begins for a table of n entries.
func dataStart(n int) uint64 { return alignUp(uint64(headerSize + n*entrySize)) }
