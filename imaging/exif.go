package imaging

import (
	"bytes"
	"encoding/binary"
)

// TIFF tags read from IFD0.
const (
	tagCompression = 0x0103
	tagOrientation = 0x0112
)

// TIFF field types that can carry a small unsigned integer.
const (
	typeShort = 3
	typeLong  = 4
)

// ifd0 holds the few IFD0 fields this package needs.
type ifd0 struct {
	orientation int // EXIF orientation 1–8; 1 when absent or invalid
	compression int // TIFF compression scheme; 1 (none) when absent
}

// readIFD0 reads IFD0 of a TIFF structure: a TIFF file, or the EXIF payload
// that follows "Exif\0\0" in a JPEG. Every offset is bounds-checked; entries
// that do not fit are ignored, so any input yields a result. ok is false
// when there is no TIFF header at all.
func readIFD0(b []byte) (tags ifd0, ok bool) {
	tags = ifd0{orientation: 1, compression: 1}
	if len(b) < 8 {
		return tags, false
	}
	var order binary.ByteOrder
	switch string(b[0:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return tags, false
	}
	if order.Uint16(b[2:4]) != 42 {
		return tags, false
	}
	off := uint64(order.Uint32(b[4:8]))
	if off+2 > uint64(len(b)) {
		return tags, true
	}
	n := uint64(order.Uint16(b[off:]))
	for i := range n {
		e := off + 2 + 12*i
		if e+12 > uint64(len(b)) {
			break
		}
		entry := b[e : e+12]
		value, valid := smallValue(order, entry)
		if !valid {
			continue
		}
		switch order.Uint16(entry[0:2]) {
		case tagOrientation:
			if value >= 1 && value <= 8 {
				tags.orientation = int(value)
			}
		case tagCompression:
			tags.compression = int(value)
		}
	}
	return tags, true
}

// smallValue returns the first value of a SHORT or LONG entry, which fits
// in the entry's own 4-byte value field when count is at least 1.
func smallValue(order binary.ByteOrder, entry []byte) (uint32, bool) {
	if order.Uint32(entry[4:8]) < 1 {
		return 0, false
	}
	switch order.Uint16(entry[2:4]) {
	case typeShort:
		return uint32(order.Uint16(entry[8:10])), true
	case typeLong:
		return order.Uint32(entry[8:12]), true
	}
	return 0, false
}

// exifHeader starts the APP1 segment that carries EXIF; the sixth byte is
// padding (0 by the standard, though a few writers put 0xFF).
const exifHeader = "Exif\x00"

// jpegOrientation returns the EXIF orientation of a JPEG (1 when it has
// none), from the first APP1 "Exif" segment before the image data. It walks
// the marker segments with bounds checks and gives up, returning 1, at the
// first sign of damage.
func jpegOrientation(data []byte) int {
	if !bytes.HasPrefix(data, []byte{0xFF, 0xD8}) {
		return 1
	}
	i := 2
	for i+2 <= len(data) {
		if data[i] != 0xFF {
			return 1
		}
		marker := data[i+1]
		if marker == 0xFF { // fill byte before a marker
			i++
			continue
		}
		i += 2
		switch {
		case marker == 0xD8, marker == 0x01, marker >= 0xD0 && marker <= 0xD7:
			continue // markers without a length
		case marker == 0xD9, marker == 0xDA:
			return 1 // EXIF comes before the scan; none found
		}
		if i+2 > len(data) {
			return 1
		}
		length := int(binary.BigEndian.Uint16(data[i : i+2]))
		if length < 2 || i+length > len(data) {
			return 1
		}
		segment := data[i+2 : i+length]
		if marker == 0xE1 && len(segment) >= len(exifHeader)+1 && string(segment[:len(exifHeader)]) == exifHeader {
			if tags, ok := readIFD0(segment[len(exifHeader)+1:]); ok {
				return tags.orientation
			}
		}
		i += length
	}
	return 1
}
