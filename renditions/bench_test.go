package renditions

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"testing"

	"golang.org/x/image/draw"

	"github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/internal/fixtures"
)

// benchImages are the images the benchmarks render: a synthetic 1200×1600
// photo (a phone photo's receipt crop) and a real rectified receipt.
var benchImages = []struct {
	name string
	load func(b *testing.B) image.Image
}{
	{"photo1200x1600", func(*testing.B) image.Image { return photoLike(1200, 1600) }},
	{"costco760x2167", func(b *testing.B) image.Image {
		return loadPNG(b, fixtures.Path(b, "portfolio", "costco_wholesale.real.png"))
	}},
}

// BenchmarkEncode measures one encode per format and size, without the
// store, so the cost of each rendition can be read off separately (ms/op
// and the encoded bytes).
func BenchmarkEncode(b *testing.B) {
	for _, bi := range benchImages {
		full := packedRGBA(bi.load(b))
		for _, f := range AllFormats {
			for _, size := range DefaultSizes {
				img := Resize(full, size).(*image.RGBA)
				q := Options{}.withDefaults().quality(f)
				b.Run(fmt.Sprintf("%s/%s/%s", bi.name, f, sizeName(size)), func(b *testing.B) {
					var n int
					for b.Loop() {
						data, err := encodeContext(b.Context(), defaultEncoders[f], img, q)
						if err != nil {
							b.Fatal(err)
						}
						n = len(data)
					}
					b.ReportMetric(float64(n), "bytes")
					b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
				})
			}
		}
	}
}

// BenchmarkRender measures what the process stage pays per image with the
// default options (every size; AVIF up to 1200 px), stored in blob/file:
// each format alone with one encode at a time, then all formats with one
// and two at a time.
func BenchmarkRender(b *testing.B) {
	runs := []struct {
		name     string
		formats  []Format
		parallel int
	}{
		{"jpeg", []Format{JPEG}, 1},
		{"webp", []Format{WebP}, 1},
		{"avif", []Format{AVIF}, 1},
		{"all/parallel=1", AllFormats, 1},
		{"all/parallel=2", AllFormats, 2},
	}
	for _, bi := range benchImages {
		img := bi.load(b)
		for _, run := range runs {
			b.Run(bi.name+"/"+run.name, func(b *testing.B) {
				store, err := file.Open(b.TempDir(), file.Options{})
				if err != nil {
					b.Fatal(err)
				}
				opts := Options{Formats: run.formats, Parallel: run.parallel}
				var total int
				for b.Loop() {
					rendered, skipped, err := Render(b.Context(), store, img, ImagePrefix("IMG"), opts)
					if err != nil || len(rendered) == 0 {
						b.Fatal(err, skipped)
					}
					total = 0
					for _, r := range rendered {
						total += r.Bytes
					}
				}
				b.ReportMetric(float64(total), "bytes")
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
			})
		}
	}
}

// BenchmarkResize compares the filters Resize could use, from 1200×1600 to
// each default size, and measures the chain Render uses (each size from the
// previous one, with Catmull-Rom).
func BenchmarkResize(b *testing.B) {
	src := photoLike(1200, 1600)
	b.Run("chain/1200-600-300", func(b *testing.B) {
		for b.Loop() {
			prev := src
			for _, size := range []int{1200, 600, 300} {
				w, h := fit(1200, 1600, size)
				prev = scale(prev, w, h)
			}
		}
	})
	for _, k := range []struct {
		name   string
		scaler draw.Scaler
	}{
		{"CatmullRom", draw.CatmullRom},
		{"ApproxBiLinear", draw.ApproxBiLinear},
	} {
		for _, size := range []int{1200, 600, 300} {
			b.Run(fmt.Sprintf("%s/%d", k.name, size), func(b *testing.B) {
				w, h := fit(1200, 1600, size)
				dst := image.NewRGBA(image.Rect(0, 0, w, h))
				for b.Loop() {
					k.scaler.Scale(dst, dst.Rect, src, src.Rect, draw.Src, nil)
				}
			})
		}
	}
}

func loadPNG(tb testing.TB, path string) image.Image {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}
