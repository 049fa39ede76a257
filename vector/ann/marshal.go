package ann

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

const (
	magic         = 0x4e4e4154 // "TANN" little-endian
	formatVersion = 1
	headerWords   = 16
	headerSize    = headerWords * 4
)

// Header word positions.
const (
	hMagic = iota
	hVersion
	hN
	hDims
	hM
	hM0
	hEntry
	hMaxLevel
	hUpperWords
	hEfConstruction
	hSeedLo
	hSeedHi
)

// MarshalBinary serializes the graph in the layout described in the package
// doc. The result can be handed to Load, from a heap copy or a memory map.
// Unlike encoding.BinaryMarshaler it cannot fail, so it returns no error.
func (g *Graph) MarshalBinary() []byte {
	words := len(g.level0) + len(g.offsets) + len(g.upper)
	out := make([]byte, headerSize+4*words)
	le := binary.LittleEndian
	hdr := [headerWords]uint32{
		hMagic:          magic,
		hVersion:        formatVersion,
		hN:              uint32(g.n),
		hDims:           uint32(g.dims),
		hM:              uint32(g.m),
		hM0:             uint32(g.m0),
		hEntry:          g.entry,
		hMaxLevel:       uint32(g.maxLevel),
		hUpperWords:     uint32(len(g.upper)),
		hEfConstruction: uint32(g.efc),
		hSeedLo:         uint32(g.seed),
		hSeedHi:         uint32(g.seed >> 32),
	}
	for i, v := range hdr {
		le.PutUint32(out[4*i:], v)
	}
	o := headerSize
	for _, part := range [][]uint32{g.level0, g.offsets, g.upper} {
		for _, v := range part {
			le.PutUint32(out[o:], v)
			o += 4
		}
	}
	return out
}

// Load returns a Graph over data, a serialized graph for n vectors, after
// validating the header and every neighbour index, so that Search on the
// result can never read out of range. Any inconsistency is reported as an
// error wrapping ErrCorrupt.
//
// On little-endian machines with data 4-byte aligned (always true for a
// 64-byte aligned segment section) the graph aliases data without copying:
// data must then stay mapped and unmodified for the life of the Graph.
// Otherwise Load decodes a private copy.
func Load(data []byte, n int) (*Graph, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	if n < 0 || n > maxNodes {
		return nil, fmt.Errorf("%w: node count %d out of range", ErrInvalid, n)
	}
	if len(data) < headerSize {
		return nil, corrupt("%d bytes is shorter than the %d-byte header", len(data), headerSize)
	}
	le := binary.LittleEndian
	var h [headerWords]uint32
	for i := range h {
		h[i] = le.Uint32(data[4*i:])
	}
	switch {
	case h[hMagic] != magic:
		return nil, corrupt("bad magic %#08x", h[hMagic])
	case h[hVersion] != formatVersion:
		return nil, corrupt("unsupported version %d", h[hVersion])
	case int64(h[hN]) != int64(n):
		return nil, corrupt("graph has %d nodes, segment has %d vectors", h[hN], n)
	case h[hM] < 2 || h[hM] > maxM:
		return nil, corrupt("M %d out of range", h[hM])
	case h[hM0] < h[hM] || h[hM0] > 2*maxM:
		return nil, corrupt("M0 %d out of range", h[hM0])
	case h[hMaxLevel] > maxLevel:
		return nil, corrupt("max level %d out of range", h[hMaxLevel])
	case n > 0 && h[hDims] == 0:
		return nil, corrupt("zero dims")
	case n > 0 && h[hEntry] >= uint32(n):
		return nil, corrupt("entry point %d out of range", h[hEntry])
	case n == 0 && (h[hEntry] != noNode || h[hMaxLevel] != 0 || h[hUpperWords] != 0):
		return nil, corrupt("non-empty header for an empty graph")
	}
	for i := hSeedHi + 1; i < headerWords; i++ {
		if h[i] != 0 {
			return nil, corrupt("reserved header word %d is %#x", i, h[i])
		}
	}
	g := &Graph{
		n: n, dims: int(h[hDims]), m: int(h[hM]), m0: int(h[hM0]),
		entry: h[hEntry], maxLevel: int(h[hMaxLevel]), efc: int(h[hEfConstruction]),
		seed: uint64(h[hSeedLo]) | uint64(h[hSeedHi])<<32,
	}
	l0 := uint64(n) * uint64(g.m0+1)
	words := l0 + uint64(n) + 1 + uint64(h[hUpperWords])
	if uint64(len(data)) != headerSize+4*words {
		return nil, corrupt("%d bytes, want %d for %d nodes", len(data), headerSize+4*words, n)
	}
	all := uint32s(data[headerSize:], int(words))
	g.level0 = all[:l0:l0]
	g.offsets = all[l0 : l0+uint64(n)+1 : l0+uint64(n)+1]
	g.upper = all[l0+uint64(n)+1:]

	// Offsets: start at 0, grow by whole layer records, end at the upper
	// area's size, and no node may sit above the declared max level.
	stride := uint32(g.m + 1)
	if g.offsets[0] != 0 || g.offsets[n] != h[hUpperWords] {
		return nil, corrupt("upper-layer offsets do not span the upper area")
	}
	for i := range n {
		a, b := g.offsets[i], g.offsets[i+1]
		if b < a || (b-a)%stride != 0 || (b-a)/stride > h[hMaxLevel] {
			return nil, corrupt("node %d: bad upper-layer span [%d, %d)", i, a, b)
		}
	}
	if n > 0 && g.level(g.entry) != g.maxLevel {
		return nil, corrupt("entry point %d is on level %d, not the max level %d", g.entry, g.level(g.entry), g.maxLevel)
	}
	// Neighbour lists: counts within the record, ids within n, and on
	// upper layers only nodes that exist on that layer.
	for i := range n {
		base := i * (g.m0 + 1)
		c := g.level0[base]
		if c > uint32(g.m0) {
			return nil, corrupt("node %d: layer 0 count %d exceeds %d", i, c, g.m0)
		}
		for _, e := range g.level0[base+1 : base+1+int(c)] {
			if e >= uint32(n) {
				return nil, corrupt("node %d: layer 0 neighbour %d out of range", i, e)
			}
		}
		for l := 1; l <= g.level(uint32(i)); l++ {
			rb := int(g.offsets[i]) + (l-1)*(g.m+1)
			c := g.upper[rb]
			if c > uint32(g.m) {
				return nil, corrupt("node %d: layer %d count %d exceeds %d", i, l, c, g.m)
			}
			for _, e := range g.upper[rb+1 : rb+1+int(c)] {
				if e >= uint32(n) || g.level(e) < l {
					return nil, corrupt("node %d: layer %d neighbour %d invalid", i, l, e)
				}
			}
		}
	}
	return g, nil
}

// nativeLE reports whether this machine stores uint32 little-endian, the
// precondition for aliasing serialized words in place.
var nativeLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// uint32s views b's first count little-endian words as []uint32: in place
// when the layout matches memory, else as a decoded copy. The caller has
// checked len(b) >= 4*count.
func uint32s(b []byte, count int) []uint32 {
	if count == 0 {
		return []uint32{}
	}
	if nativeLE && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), count)
	}
	out := make([]uint32, count)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}
