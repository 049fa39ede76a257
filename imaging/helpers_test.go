package imaging

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// Test pattern: four quadrants of clearly different colours, so any flip
// or rotation moves a recognisable colour into each corner.
var (
	quadTL = color.RGBA{220, 30, 30, 255}   // red
	quadTR = color.RGBA{30, 200, 30, 255}   // green
	quadBL = color.RGBA{30, 30, 220, 255}   // blue
	quadBR = color.RGBA{240, 240, 240, 255} // white
)

// quadrants returns a w×h RGBA image with the four quadrant colours.
func quadrants(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := quadTL
			switch {
			case x >= w/2 && y < h/2:
				c = quadTR
			case x < w/2 && y >= h/2:
				c = quadBL
			case x >= w/2 && y >= h/2:
				c = quadBR
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// byteOrder is what both binary.LittleEndian and binary.BigEndian offer.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// exifTIFF returns a TIFF structure whose IFD0 holds one Orientation entry.
func exifTIFF(orientation uint16, order binary.ByteOrder) []byte {
	b := make([]byte, 8+2+12+4)
	if order == binary.LittleEndian {
		copy(b, "II")
	} else {
		copy(b, "MM")
	}
	order.PutUint16(b[2:], 42)
	order.PutUint32(b[4:], 8) // IFD0 right after the header
	order.PutUint16(b[8:], 1) // one entry
	order.PutUint16(b[10:], tagOrientation)
	order.PutUint16(b[12:], typeShort)
	order.PutUint32(b[14:], 1)
	order.PutUint16(b[18:], orientation)
	return b // next-IFD offset left 0
}

// app1 returns an APP1 segment (marker included) with the given payload.
func app1(payload []byte) []byte {
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// withEXIF inserts an APP1 EXIF segment carrying orientation right after a
// JPEG's SOI marker.
func withEXIF(jpg []byte, orientation uint16, order binary.ByteOrder) []byte {
	payload := append([]byte("Exif\x00\x00"), exifTIFF(orientation, order)...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, app1(payload)...)
	return append(out, jpg[2:]...)
}

// pngChunk returns a PNG chunk with a correct CRC.
func pngChunk(typ string, data []byte) []byte {
	c := make([]byte, 4, 12+len(data))
	binary.BigEndian.PutUint32(c, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// pngHeader returns the signature and IHDR chunk of an 8-bit RGB PNG of the
// given size, and nothing else: enough for DecodeConfig, no pixel data.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // bit depth 8, colour type RGB
	return append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
}

// grayTIFF writes a minimal uncompressed 8-bit grey TIFF with the given
// orientation tag (0 for none) in either byte order.
func grayTIFF(img *image.Gray, orientation uint16, order byteOrder) []byte {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	type entry struct{ tag, typ, value uint32 }
	pixelsAt := uint32(8)
	entries := []entry{
		{256, typeLong, uint32(w)},
		{257, typeLong, uint32(h)},
		{258, typeShort, 8},
		{259, typeShort, 1},
		{262, typeShort, 1}, // BlackIsZero
		{273, typeLong, pixelsAt},
	}
	if orientation != 0 {
		entries = append(entries, entry{tagOrientation, typeShort, uint32(orientation)})
	}
	entries = append(entries,
		entry{277, typeShort, 1},
		entry{278, typeLong, uint32(h)},
		entry{279, typeLong, uint32(w * h)},
	)
	b := make([]byte, 8, 8+w*h+2+12*len(entries)+4)
	if order == binary.LittleEndian {
		copy(b, "II")
	} else {
		copy(b, "MM")
	}
	order.PutUint16(b[2:], 42)
	for y := range h {
		b = append(b, img.Pix[y*img.Stride:y*img.Stride+w]...)
	}
	order.PutUint32(b[4:], uint32(len(b)))
	b = order.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		b = order.AppendUint16(b, uint16(e.tag))
		b = order.AppendUint16(b, uint16(e.typ))
		b = order.AppendUint32(b, 1)
		if e.typ == typeShort {
			b = order.AppendUint16(b, uint16(e.value))
			b = append(b, 0, 0)
		} else {
			b = order.AppendUint32(b, e.value)
		}
	}
	return order.AppendUint32(b, 0)
}

// moduleFile returns the path of a file inside a module in the module
// cache, skipping the test when it is not there.
func moduleFile(t testing.TB, module string, parts ...string) string {
	t.Helper()
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, _ := os.UserHomeDir()
			gopath = filepath.Join(home, "go")
		}
		cache = filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
	}
	p := filepath.Join(append([]string{cache, module}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("module cache file absent (go mod download puts it there): %v", err)
	}
	return p
}

func readModuleFile(t testing.TB, module string, parts ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(moduleFile(t, module, parts...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const (
	xImageModule = "golang.org/x/image@v0.48.0"
	heicModule   = "github.com/gen2brain/heic@v0.4.5"
)

// near reports whether two colours agree within tol per 8-bit channel.
func near(a, b color.Color, tol int) bool {
	ar, ag, ab, aa := a.RGBA()
	br, bg, bb, ba := b.RGBA()
	d := func(x, y uint32) bool {
		diff := int(x>>8) - int(y>>8)
		return diff <= tol && diff >= -tol
	}
	return d(ar, br) && d(ag, bg) && d(ab, bb) && d(aa, ba)
}
