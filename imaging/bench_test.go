package imaging

import (
	"context"
	"encoding/binary"
	"image"
	"io"
	"os"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
)

// receiptJPEG is a real scanned receipt (463×1013, 4:2:0).
func receiptJPEG(b *testing.B) []byte {
	b.Helper()
	data, err := os.ReadFile(fixtures.Path(b, "sroie", "img", "000.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkDecodeJPEG(b *testing.B) {
	data := receiptJPEG(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(context.Background(), data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeJPEGRotated adds EXIF orientation 6, the common case of a
// portrait phone photo.
func BenchmarkDecodeJPEGRotated(b *testing.B) {
	data := withEXIF(receiptJPEG(b), 6, binary.LittleEndian)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(context.Background(), data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInspect(b *testing.B) {
	data := receiptJPEG(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGray(b *testing.B) {
	img, _, err := Decode(context.Background(), receiptJPEG(b), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	bounds := img.Bounds()
	rgba := image.NewRGBA(bounds)
	nrgba := image.NewNRGBA(bounds)
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			rgba.Set(x, y, img.At(x, y))
			nrgba.Set(x, y, img.At(x, y))
		}
	}
	cases := []struct {
		name string
		img  image.Image
	}{
		{"ycbcr", img},
		{"rgba", rgba},
		{"nrgba", nrgba},
		{"generic", atOnly{rgba}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(bounds.Dx() * bounds.Dy()))
			for b.Loop() {
				Gray(c.img)
			}
		})
	}
}

// BenchmarkOrient rotates a 12 MP 4:2:0 photo by 90°, the work EXIF
// orientation 6 adds to every portrait phone photo.
func BenchmarkOrient(b *testing.B) {
	img := image.NewYCbCr(image.Rect(0, 0, 4032, 3024), image.YCbCrSubsampleRatio420)
	b.SetBytes(int64(4032 * 3024))
	for b.Loop() {
		orient(img, 6)
	}
}

func BenchmarkEncodePGM(b *testing.B) {
	g := image.NewGray(image.Rect(0, 0, 2480, 3508)) // A4 at 300 dpi
	b.SetBytes(int64(len(g.Pix)))
	for b.Loop() {
		if err := EncodePGM(io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePNG(b *testing.B) {
	img, _, err := Decode(context.Background(), receiptJPEG(b), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	g := Gray(img)
	b.SetBytes(int64(len(g.Pix)))
	for b.Loop() {
		if err := EncodePNG(io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
}
