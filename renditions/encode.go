package renditions

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"

	"github.com/gen2brain/avif"
	"github.com/gen2brain/webp"

	"github.com/tallyhq/tally/internal/wasmcodecs"
)

// defaultEncoders are the production encoders. WebP and AVIF run libwebp
// and libavif compiled to WebAssembly (or a system shared library when one
// is found), so they need no cgo and work in a static Lambda binary.
var defaultEncoders = map[Format]encodeFunc{
	JPEG: encodeJPEG,
	WebP: encodeWebP,
	AVIF: encodeAVIF,
}

// Warm starts the WebP and AVIF encoders now. Their WebAssembly is compiled
// once per process on first use, which took 0.35 s (WebP) and 1.2 s (AVIF)
// on 2 cores; a worker can call Warm in the background at start-up so its
// first record does not pay that. A start-up failure is left for Render to
// report as a skip.
//
// Starting them one after the other matters: wazero's runtime
// constructor reads and writes a package variable unguarded
// (internal/version), so the two encoders must never start concurrently.
// Warm runs once per process, and every WebP or AVIF encode waits for it.
func Warm() { wasmcodecs.Start() }

func encodeJPEG(w *bytes.Buffer, img *image.RGBA, quality int) error {
	if err := jpeg.Encode(w, img, &jpeg.Options{Quality: quality}); err != nil {
		return fmt.Errorf("encode jpeg: %w", err)
	}
	return nil
}

// webpMethod trades size for speed (0 fastest, 6 smallest). On the costco
// receipt (760×2167) method 2 took 190 ms and 148 KB against method 4's
// (libwebp's default) 730 ms and 142 KB: a quarter of the time for 4% more
// bytes.
const webpMethod = 2

func encodeWebP(w *bytes.Buffer, img *image.RGBA, quality int) error {
	Warm()
	// libwebp reads the pixels as non-premultiplied; RGBA and NRGBA hold
	// the same bytes only where the image is opaque.
	var src image.Image = img
	if !img.Opaque() {
		src = toNRGBA(img)
	}
	if err := webp.Encode(w, src, webp.Options{Quality: quality, Method: webpMethod}); err != nil {
		return fmt.Errorf("encode webp: %w", err)
	}
	return nil
}

func encodeAVIF(w *bytes.Buffer, img *image.RGBA, quality int) error {
	Warm()
	opts := avif.Options{
		Quality:           quality,
		QualityAlpha:      quality,
		Speed:             avif.DefaultSpeed, // the fastest; slower speeds cost several times more
		ChromaSubsampling: image.YCbCrSubsampleRatio420,
	}
	if err := avif.Encode(w, img, opts); err != nil {
		return fmt.Errorf("encode avif: %w", err)
	}
	return nil
}

func toNRGBA(img *image.RGBA) *image.NRGBA {
	dst := image.NewNRGBA(img.Rect)
	draw.Draw(dst, dst.Rect, img, img.Rect.Min, draw.Src)
	return dst
}
