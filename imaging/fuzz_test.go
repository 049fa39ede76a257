package imaging

import (
	"context"
	"encoding/binary"
	"errors"
	"image"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Inspect and Decode: neither may panic,
// every error must carry exactly one sentinel, and a decoded image must
// match what Inspect promised. HEIC is only inspected here (its decoder
// runs WebAssembly and is slow to fuzz); its box parser is what this
// package wrote.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeJPEG(f, quadrants(16, 8)))
	f.Add(withEXIF(encodeJPEG(f, quadrants(8, 16)), 6, binary.LittleEndian))
	f.Add(encodePNG(f, quadrants(5, 3)))
	f.Add(pngHeader(20000, 20000))
	f.Add(grayTIFF(image.NewGray(image.Rect(0, 0, 3, 2)), 8, binary.BigEndian))
	f.Add(heifFile("hvc1", [][]byte{ispe(4000, 3000), irot(1)}, ipma(1, 2), nil))
	f.Add(heifFile("grid", [][]byte{ispe(200, 100)}, ipma(1), [][]byte{infe(2, "hvc1")}, gridDescription(200, 100)...))
	for _, dir := range []string{"golang.org/x/image@v0.48.0/testdata/*.webp", "github.com/gen2brain/heic@v0.4.5/testdata/*.heic"} {
		cache := os.Getenv("GOMODCACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, "go", "pkg", "mod")
		}
		files, _ := filepath.Glob(filepath.Join(cache, dir))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil && len(data) < 64<<10 {
				f.Add(data)
			}
		}
	}
	sentinels := []error{ErrEmpty, ErrUnsupported, ErrTooLarge, ErrCorrupt}
	checkErr := func(t *testing.T, err error) {
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %q carries %d sentinels", err, n)
		}
	}
	lim := Limits{MaxPixels: 1 << 20} // keep each input cheap
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Inspect(data, lim)
		if err != nil {
			checkErr(t, err)
			return
		}
		if info.Width <= 0 || info.Height <= 0 || int64(info.Width)*int64(info.Height) > lim.MaxPixels ||
			info.Orientation < 1 || info.Orientation > 8 {
			t.Fatalf("Inspect accepted %+v", info)
		}
		if info.Format == HEIC {
			return
		}
		img, dinfo, err := Decode(context.Background(), data, lim)
		if err != nil {
			checkErr(t, err)
			return
		}
		if b := img.Bounds(); b.Dx() != dinfo.Width || b.Dy() != dinfo.Height {
			t.Fatalf("Decode info %+v for bounds %v", dinfo, b)
		}
		_ = Gray(img)
	})
}
