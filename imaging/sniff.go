package imaging

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// SniffLen is how many leading bytes Sniff looks at: callers reading a
// stream need only buffer this much (ISO-BMFF files list their brands in
// the first box, well within it).
const SniffLen = 512

// unsupported builds the error for a recognised but unaccepted format (or
// unrecognised bytes), naming what was found and what is accepted.
func unsupported(what string) error {
	return fmt.Errorf("%w: %s; %s", ErrUnsupported, what, SupportedText())
}

// Sniff identifies the format from the first bytes of a file (SniffLen are
// enough; more are ignored), so that a declared Content-Type is never
// trusted. It returns ErrEmpty for no bytes and ErrUnsupported, naming the
// format when it is a known one (GIF, BMP, AVIF, PDF…), for anything else.
func Sniff(head []byte) (Format, error) {
	if len(head) == 0 {
		return "", ErrEmpty
	}
	head = head[:min(len(head), SniffLen)]
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG, nil
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return WebP, nil
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return TIFF, nil
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		return sniffBMFF(head)
	}
	return "", unsupported(describeUnknown(head))
}

// HEIF brands (ISO/IEC 23008-12) whose images are coded with HEVC, which
// the HEIC decoder handles.
var hevcBrands = map[string]bool{
	"heic": true, "heix": true, "hevc": true, "hevx": true,
	"heim": true, "heis": true, "hevm": true, "hevs": true,
}

// Generic HEIF brands: the codec is only known from the items, which Inspect
// checks, so these are sniffed as HEIC.
var heifBrands = map[string]bool{"mif1": true, "msf1": true, "mif2": true, "miaf": true}

// AV1 image brands (AVIF), which no decoder here handles.
var avifBrands = map[string]bool{"avif": true, "avis": true, "avio": true}

// sniffBMFF classifies an ISO base media file by its ftyp box: the major
// brand first, then the compatible brands.
func sniffBMFF(head []byte) (Format, error) {
	size := int(binary.BigEndian.Uint32(head[0:4]))
	end := min(len(head), max(size, 12))
	major := string(head[8:12])
	var compatible []string
	for i := 16; i+4 <= end; i += 4 {
		compatible = append(compatible, string(head[i:i+4]))
	}
	switch {
	case hevcBrands[major]:
		return HEIC, nil
	case avifBrands[major]:
		return "", unsupported("AVIF")
	}
	for _, b := range compatible {
		if hevcBrands[b] {
			return HEIC, nil
		}
	}
	for _, b := range compatible {
		if avifBrands[b] {
			return "", unsupported("AVIF")
		}
	}
	if heifBrands[major] {
		return HEIC, nil
	}
	for _, b := range compatible {
		if heifBrands[b] {
			return HEIC, nil
		}
	}
	switch major {
	case "crx ":
		return "", unsupported("Canon CR3 raw")
	case "jpx ", "jp2 ":
		return "", unsupported("JPEG 2000")
	case "jxl ":
		return "", unsupported("JPEG XL")
	}
	return "", unsupported(fmt.Sprintf("ISO media file (brand %q), not a still image", printable(major)))
}

// knownSignatures names common formats that are not accepted, so the 415
// message says what was uploaded.
var knownSignatures = []struct {
	prefix string
	name   string
}{
	{"GIF87a", "GIF"},
	{"GIF89a", "GIF"},
	{"%PDF-", "PDF"},
	{"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"},
	{"\xff\x4f\xff\x51", "JPEG 2000"},
	{"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"},
	{"\xff\x0a", "JPEG XL"},
	{"II+\x00", "BigTIFF"},
	{"MM\x00+", "BigTIFF"},
	{"8BPS", "Photoshop PSD"},
	{"PK\x03\x04", "ZIP archive"},
	{"\x1f\x8b", "gzip data"},
	{"RIFF", "RIFF data (not WebP)"},
}

// describeUnknown names bytes that are not an accepted image.
func describeUnknown(head []byte) string {
	for _, s := range knownSignatures {
		if bytes.HasPrefix(head, []byte(s.prefix)) {
			return s.name
		}
	}
	// BMP: "BM", file size, then two reserved 16-bit fields that are zero.
	if len(head) >= 14 && head[0] == 'B' && head[1] == 'M' && binary.LittleEndian.Uint32(head[6:10]) == 0 {
		return "BMP"
	}
	if looksLikeText(head) {
		if t := bytes.TrimSpace(head); bytes.HasPrefix(t, []byte("<svg")) || bytes.HasPrefix(t, []byte("<?xml")) {
			return "SVG or XML text"
		}
		return "text, not an image"
	}
	return "unrecognised data"
}

// looksLikeText reports whether head is UTF-8 without control characters
// other than whitespace (a truncated final rune is allowed).
func looksLikeText(head []byte) bool {
	for i := 0; i < len(head); {
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n <= 1 {
			return len(head)-i < utf8.UTFMax && !utf8.FullRune(head[i:])
		}
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' && r != '\f' || r == 0x7f {
			return false
		}
		i += n
	}
	return true
}

// printable replaces non-printable bytes of a four-character code so it can
// go into a message.
func printable(code string) string {
	b := []byte(code)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
