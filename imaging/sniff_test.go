package imaging

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// ftyp returns an ISO-BMFF ftyp box with the given brands.
func ftyp(major string, compatible ...string) []byte {
	b := make([]byte, 16, 16+4*len(compatible))
	binary.BigEndian.PutUint32(b, uint32(16+4*len(compatible)))
	copy(b[4:], "ftyp")
	copy(b[8:], major)
	for _, c := range compatible {
		b = append(b, c...)
	}
	return b
}

func TestSniff(t *testing.T) {
	t.Parallel()
	random := make([]byte, 256)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	random[0] = 0x03 // not the start of any signature
	tests := []struct {
		name    string
		head    []byte
		want    Format
		err     error
		mention string // the unsupported message names this
	}{
		{"jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'}, JPEG, nil, ""},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), PNG, nil, ""},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), WebP, nil, ""},
		{"tiff little-endian", []byte("II*\x00\x08\x00\x00\x00"), TIFF, nil, ""},
		{"tiff big-endian", []byte("MM\x00*\x00\x00\x00\x08"), TIFF, nil, ""},
		{"heic major", ftyp("heic", "mif1", "heic"), HEIC, nil, ""},
		{"heix major", ftyp("heix", "mif1"), HEIC, nil, ""},
		{"hevc sequence", ftyp("hevc", "msf1"), HEIC, nil, ""},
		{"mif1 with heic", ftyp("mif1", "heic"), HEIC, nil, ""},
		{"generic mif1", ftyp("mif1", "miaf"), HEIC, nil, ""},
		{"avif", ftyp("avif", "mif1", "miaf"), "", ErrUnsupported, "AVIF"},
		{"avif sequence", ftyp("avis", "msf1"), "", ErrUnsupported, "AVIF"},
		{"mif1 with avif", ftyp("mif1", "avif"), "", ErrUnsupported, "AVIF"},
		{"mp4 video", ftyp("isom", "iso2", "mp41"), "", ErrUnsupported, "isom"},
		{"gif87", []byte("GIF87a\x01\x00\x01\x00"), "", ErrUnsupported, "GIF"},
		{"gif89", []byte("GIF89a\x01\x00\x01\x00"), "", ErrUnsupported, "GIF"},
		{"bmp", []byte("BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"), "", ErrUnsupported, "BMP"},
		{"pdf", []byte("%PDF-1.7\n"), "", ErrUnsupported, "PDF"},
		{"bigtiff", []byte("II+\x00\x08\x00\x00\x00"), "", ErrUnsupported, "BigTIFF"},
		{"jpeg xl", []byte{0xFF, 0x0A, 0xFA}, "", ErrUnsupported, "JPEG XL"},
		{"riff wave", []byte("RIFF\x24\x00\x00\x00WAVEfmt "), "", ErrUnsupported, "RIFF"},
		{"text", []byte("Total: $12.50\nThank you!\n"), "", ErrUnsupported, "text"},
		{"svg", []byte("  <svg xmlns=\"http://www.w3.org/2000/svg\">"), "", ErrUnsupported, "SVG"},
		{"random", random, "", ErrUnsupported, "unrecognised"},
		{"one byte", []byte{0xFF}, "", ErrUnsupported, ""},
		{"short ftyp", []byte("\x00\x00\x00\x08ftyp"), "", ErrUnsupported, ""},
		{"empty", nil, "", ErrEmpty, ""},
	}
	for _, tt := range tests {
		got, err := Sniff(tt.head)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%s: Sniff = %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
			continue
		}
		if tt.err == ErrUnsupported {
			msg := err.Error()
			if !strings.Contains(msg, tt.mention) || !strings.Contains(msg, "image/jpeg") || !strings.Contains(msg, "image/heic") {
				t.Errorf("%s: message %q should name %q and the accepted types", tt.name, msg, tt.mention)
			}
		}
	}
}
