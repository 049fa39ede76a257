// Package segment is the on-disk format of Tally's vector store: one
// immutable file holding one batch of records of one collection, either a
// piece of a full snapshot or a small delta (upserts plus tombstones).
//
// A segment is written once (Write), never modified, and cached by name, so
// the format is built for readers: every section starts on a 64-byte
// boundary and every fixed-width array is little-endian, so a reader can
// memory-map the file (OpenFile) and use the vectors in place. Vector(i)
// aliases the mapped bytes; ID(i), Meta(i) and MetaField(i, name) are O(1)
// through offset tables. Every section carries a CRC-32C (Castagnoli), and so
// do the header and the section table, so a torn upload or a flipped bit is
// reported as ErrCorrupt naming what is wrong instead of returning garbage —
// the failure mode of the ChromaDB tarballs this format replaces.
//
// # Opening
//
// Parse (and OpenFile, which maps the file read-only with mmap and parses
// it) checks everything by default: header, section table, bounds,
// alignment, every checksum and every record — a pass over all the bytes,
// about 5 ms for a 27 MB segment of 10k 512-dim vectors. A reader that
// verified a file once, for example when it downloaded it into its local
// cache, can reopen it with ParseOptions.SkipVerify: only the checks that
// keep the accessors memory-safe run (O(records) integer reads, tens of
// microseconds), and Verify can run the rest later. Nothing is copied in
// either mode on little-endian hosts; on a big-endian host, or when the
// bytes handed to Parse are not 4-byte aligned in memory, the vectors are
// decoded into a copy instead.
//
// # Record order and Lookup
//
// Records keep the order they were given to Write: index i of a segment is
// index i of the input. The ANN package builds its graph over those indices
// before the segment is written, so reordering would break it. Lookup uses a
// separate order section, a permutation of the indices sorted by id
// (byte-wise), and binary-searches it: O(log n), no allocation, no map built
// at open.
//
// # Byte layout (format version 1)
//
// All integers are little-endian. The file is a 64-byte header, a section
// table, and the sections.
//
// Header (64 bytes):
//
//	offset  size  field
//	     0     8  magic "TALLYSEG"
//	     8     2  format version (1)
//	    10     2  flags: bit 0 quantized copy present, bit 1 graph present;
//	              other bits must be zero
//	    12     4  dims (1..8192)
//	    16     4  record count
//	    20     4  tombstone count
//	    24     4  section count (number of table entries, at most 64)
//	    28     4  reserved, zero
//	    32     8  file size in bytes
//	    40    16  reserved, zero
//	    56     4  CRC-32C of the section table
//	    60     4  CRC-32C of header bytes 0..59
//
// Section table: at offset 64, one 32-byte entry per section:
//
//	offset  size  field
//	     0     4  kind (see below)
//	     4     4  reserved, zero
//	     8     8  offset of the section in the file
//	    16     8  length of the section in bytes (without padding)
//	    24     4  CRC-32C of the section's bytes
//	    28     4  reserved, zero
//
// The first section starts at the table's end rounded up to a multiple of 64;
// each next one at the previous one's end rounded up to 64. Padding bytes are
// zero. The file ends exactly where the last section ends.
//
// Sections, in the order Write emits them:
//
//	kind  name          required    contents
//	   1  ids           always      blob table of count ids (non-empty)
//	   2  order         always      count × uint32: record indices in
//	                                ascending id order (ids are unique)
//	   3  meta-keys     always      blob table of the distinct metadata field
//	                                names, sorted and unique (the dictionary)
//	   4  meta          always      blob table of count metadata records
//	   5  tombstones    always      blob table of the ids this segment
//	                                deletes, sorted and unique
//	   6  quant-scales  flag bit 0  count × float32: per-vector scale
//	   7  vectors       always      count × dims × float32, row-major
//	   8  quant-codes   flag bit 0  count × dims × int8, row-major
//	   9  graph         flag bit 1  opaque bytes owned by the ANN package
//
// Empty sections are present with length zero. A kind may appear once; kinds
// above 9 are checksummed and otherwise ignored, so a later writer may add an
// optional section without a version bump (anything an old reader must
// understand bumps the version instead).
//
// A blob table is n variable-length byte strings with O(1) access:
//
//	u32 n | (n+1) × u32 offsets | bytes
//
// where offsets[0] = 0, offsets never decrease, and offsets[n] is the length
// of bytes; entry k is bytes[offsets[k]:offsets[k+1]].
//
// A metadata record is a sequence of fields, in ascending key index:
//
//	uvarint key index (into meta-keys) | kind byte | payload
//
// with kinds 1 string (uvarint length, then bytes), 2 number (float64, 8
// bytes, finite), 3 false and 4 true (no payload). A record with no fields is
// empty. Field names are stored once in the dictionary, so a name repeated on
// every record costs one byte (its index) per record.
//
// The quantized copy is int8 symmetric per vector: scale = max|x|/127 and
// code = round(x/scale), so x ≈ code × scale and dot(a, b) ≈
// DotInt8(qa, qb) × scaleA × scaleB — a cheap first pass whose best
// candidates are rescored exactly with the float32 vectors.
package segment
