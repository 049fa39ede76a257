package imaging

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file reads just enough of a HEIF file's structure (ISO/IEC 14496-12
// boxes, ISO/IEC 23008-12 items and properties) to learn the primary
// image's size and codec without running the decoder. That matters because
// the HEIC decoder (libheif in WebAssembly) allocates as the file says: the
// pixel limit has to be checked against every size the file declares, and
// an AVIF or JPEG-coded HEIF has to be refused as unsupported, not reported
// as corrupt.

// errHEIF marks structural problems; callers wrap it with ErrCorrupt.
var errHEIF = errors.New("heif")

func heifErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errHEIF, fmt.Sprintf(format, args...))
}

// heifInfo is what Inspect needs from a HEIF file.
type heifInfo struct {
	width, height int   // primary image as displayed (after clap and irot)
	maxPixels     int64 // largest pixel count any image in the file declares
}

// heifProperty is one entry of the ipco box; ipma refers to it by 1-based
// index.
type heifProperty struct {
	typ  string
	body []byte
}

// heifMeta is the parsed content of the meta box.
type heifMeta struct {
	primary    uint32
	hasPrimary bool
	itemTypes  map[uint32]string
	properties []heifProperty
	assoc      map[uint32][]int // item → property indices (1-based), in order
	locations  map[uint32]heifLocation
	idat       []byte
}

// heifLocation is an item's iloc entry.
type heifLocation struct {
	method  int // 0 file offset, 1 idat offset, 2 item offset
	extents [][2]uint64
}

// nextBox splits the box at the start of b into its type and body (the
// bytes after the header) and the rest of b.
func nextBox(b []byte) (typ string, body, rest []byte, err error) {
	if len(b) < 8 {
		return "", nil, nil, heifErr("truncated box header")
	}
	size := uint64(binary.BigEndian.Uint32(b[0:4]))
	typ = string(b[4:8])
	header := uint64(8)
	switch size {
	case 0: // box extends to the end of its container
		size = uint64(len(b))
	case 1:
		if len(b) < 16 {
			return "", nil, nil, heifErr("truncated box header")
		}
		size = binary.BigEndian.Uint64(b[8:16])
		header = 16
	}
	if size < header || size > uint64(len(b)) {
		return "", nil, nil, heifErr("box %q of %d bytes does not fit in %d", printable(typ), size, len(b))
	}
	return typ, b[header:size], b[size:], nil
}

// eachBox calls fn for every box in b, in order.
func eachBox(b []byte, fn func(typ string, body []byte) error) error {
	for len(b) > 0 {
		typ, body, rest, err := nextBox(b)
		if err != nil {
			return err
		}
		if err := fn(typ, body); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// cursor reads big-endian integers with bounds checks; the first failure
// sticks, so callers check err once after a group of reads.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) uint(n int) uint64 {
	if c.err != nil {
		return 0
	}
	if n < 0 || n > 8 || len(c.b) < n {
		c.err = heifErr("truncated box")
		return 0
	}
	var v uint64
	for _, x := range c.b[:n] {
		v = v<<8 | uint64(x)
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) u8() uint8   { return uint8(c.uint(1)) }
func (c *cursor) u16() uint16 { return uint16(c.uint(2)) }
func (c *cursor) u32() uint32 { return uint32(c.uint(4)) }

// id reads an item ID, 16 bits wide in old box versions and 32 in new.
func (c *cursor) id(wide bool) uint32 {
	if wide {
		return c.u32()
	}
	return uint32(c.u16())
}

// inspectHEIF reads the primary image's size and the largest declared image
// size of a HEIF file.
func inspectHEIF(data []byte) (heifInfo, error) {
	var metaBody []byte
	hasMovie := false
	err := eachBox(data, func(typ string, body []byte) error {
		switch typ {
		case "meta":
			if metaBody == nil {
				metaBody = body
			}
		case "moov":
			hasMovie = true
		}
		return nil
	})
	if err != nil && metaBody == nil {
		return heifInfo{}, err
	}
	if metaBody == nil {
		if hasMovie {
			return heifInfo{}, unsupported("HEIF image sequence without a still image")
		}
		return heifInfo{}, heifErr("no meta box")
	}
	m, err := parseHEIFMeta(metaBody)
	if err != nil {
		return heifInfo{}, err
	}
	if err := m.checkCodec(); err != nil {
		return heifInfo{}, err
	}
	return m.primaryInfo(data)
}

// parseHEIFMeta reads the meta box (a full box: version and flags first).
func parseHEIFMeta(meta []byte) (*heifMeta, error) {
	if len(meta) < 4 {
		return nil, heifErr("truncated meta box")
	}
	m := &heifMeta{
		itemTypes: map[uint32]string{},
		assoc:     map[uint32][]int{},
		locations: map[uint32]heifLocation{},
	}
	err := eachBox(meta[4:], func(typ string, body []byte) error {
		switch typ {
		case "pitm":
			c := cursor{b: body}
			version := c.u8()
			c.uint(3)
			m.primary = c.id(version != 0)
			m.hasPrimary = c.err == nil
			return c.err
		case "iinf":
			return m.parseIINF(body)
		case "iprp":
			return m.parseIPRP(body)
		case "iloc":
			return m.parseILOC(body)
		case "idat":
			m.idat = body
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !m.hasPrimary {
		return nil, heifErr("no primary item")
	}
	return m, nil
}

func (m *heifMeta) parseIINF(body []byte) error {
	c := cursor{b: body}
	version := c.u8()
	c.uint(3)
	c.id(version != 0) // entry count; the boxes themselves are authoritative
	if c.err != nil {
		return c.err
	}
	return eachBox(c.b, func(typ string, body []byte) error {
		if typ != "infe" {
			return nil
		}
		c := cursor{b: body}
		version := c.u8()
		c.uint(3)
		if version < 2 { // versions 0 and 1 carry no item type
			return nil
		}
		id := c.id(version >= 3)
		c.u16() // protection index
		itemType := string(byteSlice(c.uint(4), 4))
		if c.err != nil {
			return c.err
		}
		m.itemTypes[id] = itemType
		return nil
	})
}

// byteSlice turns the big-endian integer read by cursor.uint back into n
// bytes (for four-character codes).
func byteSlice(v uint64, n int) []byte {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func (m *heifMeta) parseIPRP(body []byte) error {
	return eachBox(body, func(typ string, body []byte) error {
		switch typ {
		case "ipco":
			return eachBox(body, func(typ string, body []byte) error {
				m.properties = append(m.properties, heifProperty{typ: typ, body: body})
				return nil
			})
		case "ipma":
			return m.parseIPMA(body)
		}
		return nil
	})
}

func (m *heifMeta) parseIPMA(body []byte) error {
	c := cursor{b: body}
	version := c.u8()
	flags := c.uint(3)
	entries := c.u32()
	for i := uint32(0); i < entries && c.err == nil; i++ {
		id := c.id(version >= 1)
		n := int(c.u8())
		for j := 0; j < n && c.err == nil; j++ {
			var index int
			if flags&1 != 0 {
				index = int(c.u16() & 0x7fff)
			} else {
				index = int(c.u8() & 0x7f)
			}
			if index > 0 && c.err == nil {
				m.assoc[id] = append(m.assoc[id], index)
			}
		}
	}
	return c.err
}

func (m *heifMeta) parseILOC(body []byte) error {
	c := cursor{b: body}
	version := c.u8()
	c.uint(3)
	sizes := c.u16()
	offsetSize, lengthSize := int(sizes>>12), int(sizes>>8&0xf)
	baseOffsetSize, indexSize := int(sizes>>4&0xf), int(sizes&0xf)
	if version == 0 {
		indexSize = 0
	}
	if version > 2 {
		return heifErr("iloc version %d", version)
	}
	count := c.id(version == 2)
	for i := uint32(0); i < count && c.err == nil; i++ {
		id := c.id(version == 2)
		var loc heifLocation
		if version >= 1 {
			loc.method = int(c.u16() & 0xf)
		}
		c.u16() // data reference index: 0 means this file
		base := c.uint(baseOffsetSize)
		extents := int(c.u16())
		for j := 0; j < extents && c.err == nil; j++ {
			c.uint(indexSize)
			offset := c.uint(offsetSize)
			length := c.uint(lengthSize)
			loc.extents = append(loc.extents, [2]uint64{base + offset, length})
		}
		if c.err == nil {
			m.locations[id] = loc
		}
	}
	return c.err
}

// checkCodec refuses files whose images are not HEVC-coded: the decoder
// here has no AV1, JPEG or uncompressed HEIF support.
func (m *heifMeta) checkCodec() error {
	primary, ok := m.itemTypes[m.primary]
	if !ok {
		return heifErr("primary item %d has no item info", m.primary)
	}
	switch primary {
	case "hvc1":
		return nil
	case "av01":
		return unsupported("AVIF")
	case "grid", "iovl", "iden":
		seen := map[string]bool{}
		for _, t := range m.itemTypes {
			seen[t] = true
		}
		switch {
		case seen["hvc1"]:
			return nil
		case seen["av01"]:
			return unsupported("AVIF")
		}
		return unsupported("HEIF without HEVC-coded images")
	}
	return unsupported(fmt.Sprintf("HEIF with %q-coded image", printable(primary)))
}

// primaryInfo computes the primary image's displayed size by applying its
// properties in order (ispe sets the size, clap crops, irot by 90° or 270°
// swaps), and the largest size declared anywhere.
func (m *heifMeta) primaryInfo(data []byte) (heifInfo, error) {
	var info heifInfo
	for _, p := range m.properties {
		if p.typ != "ispe" {
			continue
		}
		w, h, err := parseISPE(p.body)
		if err != nil {
			return heifInfo{}, err
		}
		info.maxPixels = max(info.maxPixels, int64(w)*int64(h))
	}
	var w, h uint64
	haveSize := false
	for _, index := range m.assoc[m.primary] {
		if index > len(m.properties) {
			return heifInfo{}, heifErr("property index %d out of range", index)
		}
		p := m.properties[index-1]
		switch p.typ {
		case "ispe":
			w, h, _ = parseISPE(p.body)
			haveSize = true
		case "clap":
			cw, ch, err := parseCLAP(p.body)
			if err != nil {
				return heifInfo{}, err
			}
			if haveSize {
				w, h = min(w, cw), min(h, ch)
			}
		case "irot":
			if len(p.body) < 1 {
				return heifInfo{}, heifErr("truncated irot")
			}
			if p.body[0]&1 == 1 { // 90° or 270°
				w, h = h, w
			}
		}
	}
	if typ := m.itemTypes[m.primary]; typ == "grid" || typ == "iovl" {
		cw, ch, err := m.canvasSize(data, typ)
		if err != nil {
			return heifInfo{}, err
		}
		info.maxPixels = max(info.maxPixels, int64(cw)*int64(ch))
		if !haveSize {
			w, h, haveSize = cw, ch, true
		}
	}
	if !haveSize {
		return heifInfo{}, heifErr("primary item has no size (ispe)")
	}
	if w == 0 || h == 0 || w > 1<<31-1 || h > 1<<31-1 {
		return heifInfo{}, heifErr("primary image size %d×%d", w, h)
	}
	info.width, info.height = int(w), int(h)
	info.maxPixels = max(info.maxPixels, int64(w)*int64(h))
	return info, nil
}

func parseISPE(body []byte) (w, h uint64, err error) {
	c := cursor{b: body}
	c.uint(4) // version, flags
	w, h = uint64(c.u32()), uint64(c.u32())
	return w, h, c.err
}

// parseCLAP returns the clean aperture's size, rounded to whole pixels.
func parseCLAP(body []byte) (w, h uint64, err error) {
	c := cursor{b: body}
	wn, wd := uint64(c.u32()), uint64(c.u32())
	hn, hd := uint64(c.u32()), uint64(c.u32())
	if c.err != nil {
		return 0, 0, c.err
	}
	if wd == 0 || hd == 0 {
		return 0, 0, heifErr("clap with zero denominator")
	}
	return (wn + wd/2) / wd, (hn + hd/2) / hd, nil
}

// canvasSize reads the output size from a grid or overlay item's data (the
// size the decoder allocates, which need not match its ispe).
func (m *heifMeta) canvasSize(data []byte, typ string) (w, h uint64, err error) {
	desc, err := m.itemData(data, m.primary, 32)
	if err != nil {
		return 0, 0, err
	}
	c := cursor{b: desc}
	c.u8() // version
	flags := c.u8()
	if typ == "grid" {
		c.u16() // rows and columns minus one
	} else {
		c.uint(8) // overlay fill colour: four 16-bit channels
	}
	fieldSize := 2
	if flags&1 != 0 {
		fieldSize = 4
	}
	w, h = c.uint(fieldSize), c.uint(fieldSize)
	if c.err != nil {
		return 0, 0, heifErr("%s description: %v", typ, c.err)
	}
	return w, h, nil
}

// itemData returns up to limit bytes of an item's data, following its iloc
// extents into the file or the idat box.
func (m *heifMeta) itemData(data []byte, id uint32, limit int) ([]byte, error) {
	loc, ok := m.locations[id]
	if !ok {
		return nil, heifErr("item %d has no location", id)
	}
	var source []byte
	switch loc.method {
	case 0:
		source = data
	case 1:
		source = m.idat
	default:
		return nil, heifErr("item %d uses construction method %d", id, loc.method)
	}
	var out []byte
	for _, e := range loc.extents {
		offset, length := e[0], e[1]
		if offset > uint64(len(source)) {
			return nil, heifErr("item %d extent at %d is outside its %d bytes", id, offset, len(source))
		}
		if length == 0 || length > uint64(len(source))-offset {
			length = uint64(len(source)) - offset // 0 means "to the end"; clamp truncation
		}
		n := min(length, uint64(limit-len(out)))
		out = append(out, source[offset:offset+n]...)
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}
