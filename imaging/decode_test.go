package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"io"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

func encodeTIFF(t testing.TB, img image.Image, compression tiff.CompressionType) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tiff.Encode(&buf, img, &tiff.Options{Compression: compression}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeFormats(t *testing.T) {
	t.Parallel()
	pattern := quadrants(64, 48)
	tests := []struct {
		name   string
		data   func(t *testing.T) []byte
		format Format
		w, h   int
		tol    int // per-channel tolerance for lossy formats; <0 skips the colour check
	}{
		{"jpeg", func(t *testing.T) []byte { return encodeJPEG(t, pattern) }, JPEG, 64, 48, 24},
		{"png", func(t *testing.T) []byte { return encodePNG(t, pattern) }, PNG, 64, 48, 0},
		{"tiff uncompressed", func(t *testing.T) []byte { return encodeTIFF(t, pattern, tiff.Uncompressed) }, TIFF, 64, 48, 0},
		{"tiff deflate", func(t *testing.T) []byte { return encodeTIFF(t, pattern, tiff.Deflate) }, TIFF, 64, 48, 0},
		{"tiff gray big-endian", func(t *testing.T) []byte {
			return grayTIFF(Gray(pattern), 0, binary.BigEndian)
		}, TIFF, 64, 48, -1},
		{"webp lossy", func(t *testing.T) []byte { return readModuleFile(t, xImageModule, "testdata", "video-001.lossy.webp") }, WebP, 150, 103, -1},
		{"webp lossless", func(t *testing.T) []byte { return readModuleFile(t, xImageModule, "testdata", "tux.lossless.webp") }, WebP, 386, 395, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := tt.data(t)
			info, err := Inspect(data, Limits{})
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			want := Info{Format: tt.format, Width: tt.w, Height: tt.h, Orientation: 1}
			if info != want {
				t.Errorf("Inspect = %+v, want %+v", info, want)
			}
			img, dinfo, err := Decode(context.Background(), data, Limits{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if dinfo != want {
				t.Errorf("Decode info = %+v, want %+v", dinfo, want)
			}
			if b := img.Bounds(); b != image.Rect(0, 0, tt.w, tt.h) {
				t.Errorf("bounds %v, want %dx%d", b, tt.w, tt.h)
			}
			if tt.tol < 0 {
				return
			}
			corners := map[image.Point]color.RGBA{
				{0, 0}: quadTL, {tt.w - 1, 0}: quadTR, {0, tt.h - 1}: quadBL, {tt.w - 1, tt.h - 1}: quadBR,
			}
			for p, c := range corners {
				if got := img.At(p.X, p.Y); !near(got, c, tt.tol) {
					t.Errorf("pixel %v = %v, want %v", p, got, c)
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	pattern := quadrants(64, 48)
	validJPEG := encodeJPEG(t, pattern)
	validPNG := encodePNG(t, pattern)
	var gifBuf, bmpBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, pattern, nil); err != nil {
		t.Fatal(err)
	}
	if err := bmp.Encode(&bmpBuf, pattern); err != nil {
		t.Fatal(err)
	}
	// A PNG whose IDAT chunk is damaged after the header.
	badPNG := bytes.Clone(validPNG)
	badPNG[len(badPNG)-20] ^= 0xFF
	// A TIFF that says its strips are JPEG-compressed (scheme 7).
	jpegTIFF := grayTIFF(image.NewGray(image.Rect(0, 0, 8, 8)), 0, binary.LittleEndian)
	if i := bytes.Index(jpegTIFF, []byte{0x03, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00}); i < 0 {
		t.Fatal("compression entry not found")
	} else {
		jpegTIFF[i+8] = 7
	}
	// An extended WebP header with the animation flag set.
	animated := []byte("RIFF\x1e\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x02\x00\x00\x00\x0f\x00\x00\x0f\x00\x00")

	tests := []struct {
		name    string
		data    []byte
		want    error
		mention string
	}{
		{"empty", nil, ErrEmpty, ""},
		{"zero bytes", []byte{}, ErrEmpty, ""},
		{"text", []byte("this is not an image, it is a shopping list\n"), ErrUnsupported, "image/png"},
		{"random", bytes.Repeat([]byte{0x13, 0x37, 0xC0, 0xDE}, 64), ErrUnsupported, "image/jpeg"},
		{"truncated jpeg", validJPEG[:len(validJPEG)/2], ErrCorrupt, "JPEG"},
		{"jpeg header only", validJPEG[:3], ErrCorrupt, ""},
		{"damaged png", badPNG, ErrCorrupt, "PNG"},
		{"png signature only", validPNG[:8], ErrCorrupt, ""},
		{"gif", gifBuf.Bytes(), ErrUnsupported, "GIF"},
		{"bmp", bmpBuf.Bytes(), ErrUnsupported, "BMP"},
		{"avif", append(ftyp("avif", "mif1", "miaf"), 0, 0, 0, 8, 'm', 'e', 't', 'a'), ErrUnsupported, "AVIF"},
		{"tiff with jpeg compression", jpegTIFF, ErrUnsupported, "compression"},
		{"animated webp", animated, ErrUnsupported, "animated"},
		{"webp header only", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), ErrCorrupt, ""},
		{"tiff header only", []byte("II*\x00\x08\x00\x00\x00"), ErrCorrupt, ""},
		{"heic header only", ftyp("heic", "mif1"), ErrCorrupt, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Decode(context.Background(), tt.data, Limits{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			for _, other := range []error{ErrEmpty, ErrUnsupported, ErrTooLarge, ErrCorrupt} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %q also matches %v", err, other)
				}
			}
		})
	}
}

func TestTruncatedJPEGWrapsDecoderError(t *testing.T) {
	t.Parallel()
	data := encodeJPEG(t, quadrants(64, 48))
	_, _, err := Decode(context.Background(), data[:len(data)/2], Limits{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want the decoder's error wrapped", err)
	}
}

func TestInspectTooLarge(t *testing.T) {
	// Not parallel: it measures allocations.
	bomb := pngHeader(20000, 20000)
	_, err := Inspect(bomb, Limits{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Inspect(20000×20000) = %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "20000×20000") {
		t.Errorf("message %q does not give the size", err)
	}
	_, _, err = Decode(context.Background(), bomb, Limits{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode(20000×20000) = %v, want ErrTooLarge", err)
	}
	// The pixels (1.2 GB) must never be allocated: a handful of small
	// allocations for the header is all Inspect and Decode may do.
	allocs := testing.AllocsPerRun(20, func() {
		_, _, _ = Decode(context.Background(), bomb, Limits{})
	})
	if allocs > 50 {
		t.Errorf("Decode of a rejected header made %.0f allocations", allocs)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_, _, _ = Decode(context.Background(), bomb, Limits{})
	}
	runtime.ReadMemStats(&after)
	if perCall := (after.TotalAlloc - before.TotalAlloc) / 10; perCall > 1<<20 {
		t.Errorf("Decode of a rejected header allocated %d bytes per call", perCall)
	}
}

func TestPixelLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"48 MP phone photo header", pngHeader(8064, 6048), Limits{}, nil},
		{"exactly the limit", pngHeader(8000, 8000), Limits{}, nil},
		{"one row over", pngHeader(8000, 8001), Limits{}, ErrTooLarge},
		{"custom limit", pngHeader(100, 100), Limits{MaxPixels: 9999}, ErrTooLarge},
		{"custom limit exact", pngHeader(100, 100), Limits{MaxPixels: 10000}, nil},
		{"jpeg over a custom limit", encodeJPEG(t, quadrants(64, 48)), Limits{MaxPixels: 64*48 - 1}, ErrTooLarge},
		{"tiff over a custom limit", encodeTIFF(t, quadrants(64, 48), tiff.Uncompressed), Limits{MaxPixels: 1000}, ErrTooLarge},
		{"zero width", pngHeader(0, 10), Limits{}, ErrCorrupt},
	}
	for _, tt := range tests {
		_, err := Inspect(tt.data, tt.lim)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Inspect = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestDecodeContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := Decode(ctx, encodePNG(t, quadrants(8, 8)), Limits{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Decode with a cancelled context = %v", err)
	}
}
