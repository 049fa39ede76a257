package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"testing"
)

// displayedCorner says where each stored corner (TL, TR, BL, BR) appears
// once orientation o is applied, written from the EXIF definitions ("the
// 0th row is the visual right-hand side, the 0th column the visual top" for
// 6, and so on), independently of the code under test.
var displayedCorner = [9][4]string{
	1: {"TL", "TR", "BL", "BR"},
	2: {"TR", "TL", "BR", "BL"},
	3: {"BR", "BL", "TR", "TL"},
	4: {"BL", "BR", "TL", "TR"},
	5: {"TL", "BL", "TR", "BR"},
	6: {"TR", "BR", "TL", "BL"},
	7: {"BR", "TR", "BL", "TL"},
	8: {"BL", "TL", "BR", "TR"},
}

// cornerPoint returns the pixel at a named corner of a w×h image.
func cornerPoint(name string, w, h int) image.Point {
	switch name {
	case "TR":
		return image.Pt(w-1, 0)
	case "BL":
		return image.Pt(0, h-1)
	case "BR":
		return image.Pt(w-1, h-1)
	}
	return image.Pt(0, 0)
}

// checkCorners verifies that img shows stored's corner colours where
// orientation o puts them.
func checkCorners(t *testing.T, img image.Image, stored [4]color.Color, o, tol int) {
	t.Helper()
	b := img.Bounds()
	for i, pos := range displayedCorner[o] {
		p := cornerPoint(pos, b.Dx(), b.Dy())
		if got := img.At(p.X, p.Y); !near(got, stored[i], tol) {
			t.Errorf("orientation %d: displayed %s %v = %v, want stored corner #%d %v", o, pos, p, got, i, stored[i])
		}
	}
}

func TestDecodeJPEGOrientation(t *testing.T) {
	t.Parallel()
	storedCorners := [4]color.Color{quadTL, quadTR, quadBL, quadBR}
	// 48×32 takes the planar 4:2:0 path; 47×31 the per-pixel chroma path.
	for _, size := range []image.Point{{48, 32}, {47, 31}} {
		plain := encodeJPEG(t, quadrants(size.X, size.Y))
		for o := 1; o <= 8; o++ {
			for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
				t.Run(fmt.Sprintf("%dx%d/%d/%v", size.X, size.Y, o, order), func(t *testing.T) {
					t.Parallel()
					data := withEXIF(plain, uint16(o), order)
					wantW, wantH := size.X, size.Y
					if o >= 5 {
						wantW, wantH = size.Y, size.X
					}
					want := Info{Format: JPEG, Width: wantW, Height: wantH, Orientation: o}
					if info, err := Inspect(data, Limits{}); err != nil || info != want {
						t.Fatalf("Inspect = %+v, %v; want %+v", info, err, want)
					}
					img, info, err := Decode(context.Background(), data, Limits{})
					if err != nil {
						t.Fatal(err)
					}
					if info != want || img.Bounds() != image.Rect(0, 0, wantW, wantH) {
						t.Fatalf("Decode = %+v bounds %v, want %+v", info, img.Bounds(), want)
					}
					checkCorners(t, img, storedCorners, o, 24)
				})
			}
		}
	}
}

func TestDecodeGrayJPEGOrientation(t *testing.T) {
	t.Parallel()
	g := Gray(quadrants(40, 24))
	stored := [4]color.Color{g.At(0, 0), g.At(39, 0), g.At(0, 23), g.At(39, 23)}
	plain := encodeJPEG(t, g)
	for o := 1; o <= 8; o++ {
		img, _, err := Decode(context.Background(), withEXIF(plain, uint16(o), binary.BigEndian), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := img.(*image.Gray); !ok {
			t.Errorf("orientation %d: %T, want *image.Gray", o, img)
		}
		checkCorners(t, img, stored, o, 6)
	}
}

func TestDecodeTIFFOrientation(t *testing.T) {
	t.Parallel()
	g := image.NewGray(image.Rect(0, 0, 6, 4))
	for y := range 4 {
		for x := range 6 {
			g.SetGray(x, y, color.Gray{uint8(10*y + x)}) // every pixel distinct
		}
	}
	stored := [4]color.Color{g.At(0, 0), g.At(5, 0), g.At(0, 3), g.At(5, 3)}
	for o := 1; o <= 8; o++ {
		for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
			data := grayTIFF(g, uint16(o), order)
			img, info, err := Decode(context.Background(), data, Limits{})
			if err != nil {
				t.Fatalf("orientation %d: %v", o, err)
			}
			if info.Orientation != o || info.Format != TIFF {
				t.Errorf("info %+v, want orientation %d", info, o)
			}
			checkCorners(t, img, stored, o, 0)
		}
	}
}

func TestJPEGOrientationParsing(t *testing.T) {
	t.Parallel()
	soi := []byte{0xFF, 0xD8}
	jfif := []byte{0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	sos := []byte{0xFF, 0xDA, 0x00, 0x02}
	exif := func(o uint16, order byteOrder) []byte {
		return app1(append([]byte("Exif\x00\x00"), exifTIFF(o, order)...))
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	longEntry := exifTIFF(0, binary.BigEndian)
	binary.BigEndian.PutUint16(longEntry[12:], typeLong)
	binary.BigEndian.PutUint32(longEntry[18:], 8)
	badOffset := exifTIFF(6, binary.LittleEndian)
	binary.LittleEndian.PutUint32(badOffset[4:], 1<<30)
	manyEntries := exifTIFF(6, binary.LittleEndian)
	binary.LittleEndian.PutUint16(manyEntries[8:], 0xFFFF) // count far beyond the data
	truncated := exif(6, binary.LittleEndian)
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"no exif", join(soi, jfif, sos), 1},
		{"little-endian", join(soi, exif(6, binary.LittleEndian), sos), 6},
		{"big-endian", join(soi, exif(8, binary.BigEndian), sos), 8},
		{"after jfif", join(soi, jfif, exif(3, binary.BigEndian), sos), 3},
		{"fill bytes", join(soi, []byte{0xFF, 0xFF}, exif(5, binary.BigEndian)), 5},
		{"xmp before exif", join(soi, app1([]byte("http://ns.adobe.com/xap/1.0/\x00<x/>")), exif(7, binary.LittleEndian)), 7},
		{"exif after scan ignored", join(soi, sos, exif(6, binary.LittleEndian)), 1},
		{"value 9 invalid", join(soi, exif(9, binary.LittleEndian)), 1},
		{"value 0 invalid", join(soi, exif(0, binary.LittleEndian)), 1},
		{"long type", join(soi, app1(append([]byte("Exif\x00\x00"), longEntry...))), 8},
		{"0xff padding", join(soi, app1(append([]byte("Exif\x00\xff"), exifTIFF(2, binary.BigEndian)...))), 2},
		{"ifd offset out of range", join(soi, app1(append([]byte("Exif\x00\x00"), badOffset...))), 1},
		{"entry count beyond data", join(soi, app1(append([]byte("Exif\x00\x00"), manyEntries...))), 6},
		{"segment longer than file", join(soi, truncated[:len(truncated)-3]), 1},
		{"segment length 0", join(soi, []byte{0xFF, 0xE1, 0x00, 0x00}), 1},
		{"not a jpeg", exif(6, binary.LittleEndian), 1},
		{"soi only", soi, 1},
		{"garbage after soi", join(soi, []byte{0x12, 0x34}), 1},
	}
	for _, tt := range tests {
		if got := jpegOrientation(tt.data); got != tt.want {
			t.Errorf("%s: jpegOrientation = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func FuzzOrientation(f *testing.F) {
	f.Add([]byte{})
	f.Add(exifTIFF(6, binary.LittleEndian))
	f.Add(exifTIFF(8, binary.BigEndian))
	f.Add(withEXIF([]byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02}, 5, binary.LittleEndian))
	f.Add(grayTIFF(image.NewGray(image.Rect(0, 0, 2, 2)), 7, binary.BigEndian))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(where string, o int) {
			if o < 1 || o > 8 {
				t.Fatalf("%s: orientation %d outside 1–8", where, o)
			}
		}
		check("jpeg", jpegOrientation(data))
		tags, _ := readIFD0(data)
		check("tiff", tags.orientation)
		// The same bytes as the EXIF payload of a JPEG.
		if len(data) < 0xFFF0 {
			check("exif", jpegOrientation(append([]byte{0xFF, 0xD8}, app1(append([]byte("Exif\x00\x00"), data...))...)))
		}
	})
}
