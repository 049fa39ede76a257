package imaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"github.com/gen2brain/heic"
	"github.com/tallyhq/tally/internal/wasmcodecs"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// Inspect validates data from its headers alone, without decoding pixels:
// it sniffs the format, reads the dimensions and the EXIF orientation, and
// applies the pixel limit. The upload API calls it to answer 4xx before
// storing anything. Errors wrap ErrEmpty, ErrUnsupported, ErrTooLarge or
// ErrCorrupt.
func Inspect(data []byte, lim Limits) (Info, error) {
	f, err := Sniff(data)
	if err != nil {
		return Info{}, err
	}
	info := Info{Format: f, Orientation: 1}
	var declared int64 // largest pixel count the file asks the decoder for
	switch f {
	case HEIC:
		hi, err := inspectHEIF(data)
		if err != nil {
			return Info{}, classify(f, err)
		}
		info.Width, info.Height, declared = hi.width, hi.height, hi.maxPixels
	default:
		if f == WebP && isAnimatedWebP(data) {
			return Info{}, unsupported("animated WebP")
		}
		cfg, err := decodeConfig(f, data)
		if err != nil {
			return Info{}, classify(f, err)
		}
		switch f {
		case JPEG:
			info.Orientation = jpegOrientation(data)
		case TIFF:
			tags, _ := readIFD0(data)
			if !tiffCompressions[tags.compression] {
				return Info{}, unsupported(fmt.Sprintf("TIFF with compression scheme %d", tags.compression))
			}
			info.Orientation = tags.orientation
		}
		info.Width, info.Height = orientedSize(cfg.Width, cfg.Height, info.Orientation)
		declared = int64(cfg.Width) * int64(cfg.Height)
	}
	if info.Width <= 0 || info.Height <= 0 {
		return Info{}, fmt.Errorf("%w: %s header gives a size of %d×%d", ErrCorrupt, f.Name(), info.Width, info.Height)
	}
	if limit := lim.maxPixels(); declared > limit {
		return Info{}, fmt.Errorf("%w: %s of %d×%d pixels is over the limit of %d pixels",
			ErrTooLarge, f.Name(), info.Width, info.Height, limit)
	}
	return info, nil
}

// tiffCompressions are the TIFF compression schemes x/image/tiff decodes
// (none, CCITT fax 3 and 4, LZW, Deflate, PackBits). JPEG-in-TIFF (6, 7) is
// common in scans and is refused at upload rather than failing later.
var tiffCompressions = map[int]bool{1: true, 3: true, 4: true, 5: true, 8: true, 32773: true, 32946: true}

// isAnimatedWebP reports whether an extended WebP (VP8X chunk first) sets
// its animation flag; the WebP decoder reads still images only.
func isAnimatedWebP(data []byte) bool {
	return len(data) > 20 && string(data[12:16]) == "VP8X" && data[20]&0x02 != 0
}

// decodeConfig reads a header with the format's own decoder.
func decodeConfig(f Format, data []byte) (cfg image.Config, err error) {
	defer recoverDecoder(f, &err)
	r := bytes.NewReader(data)
	switch f {
	case JPEG:
		return jpeg.DecodeConfig(r)
	case PNG:
		return png.DecodeConfig(r)
	case WebP:
		wasmcodecs.Start()
		return webp.DecodeConfig(r)
	case TIFF:
		return tiff.DecodeConfig(r)
	}
	return image.Config{}, unsupported(string(f))
}

// Decode returns the pixels of data as displayed: it runs Inspect (so the
// pixel limit holds before any allocation), decodes, and applies the EXIF
// orientation. The returned Info describes the returned image. ctx is
// checked before and after decoding; a decode in progress is not
// interrupted. Truncated or damaged data gives ErrCorrupt wrapping the
// decoder's error.
func Decode(ctx context.Context, data []byte, lim Limits) (image.Image, Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, Info{}, err
	}
	info, err := Inspect(data, lim)
	if err != nil {
		return nil, Info{}, err
	}
	img, err := decodePixels(info.Format, data)
	if err != nil {
		return nil, Info{}, classify(info.Format, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, Info{}, err
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, Info{}, fmt.Errorf("%w: %s decoded to an empty image", ErrCorrupt, info.Format.Name())
	}
	if limit := lim.maxPixels(); int64(b.Dx())*int64(b.Dy()) > limit {
		// Only reachable if a decoder disagrees with its own header.
		return nil, Info{}, fmt.Errorf("%w: %s decoded to %d×%d pixels, over the limit of %d pixels",
			ErrTooLarge, info.Format.Name(), b.Dx(), b.Dy(), limit)
	}
	img = orient(img, info.Orientation)
	b = img.Bounds()
	info.Width, info.Height = b.Dx(), b.Dy()
	return img, info, nil
}

// decodePixels runs the format's decoder.
func decodePixels(f Format, data []byte) (img image.Image, err error) {
	defer recoverDecoder(f, &err)
	r := bytes.NewReader(data)
	switch f {
	case JPEG:
		return jpeg.Decode(r)
	case PNG:
		return png.Decode(r)
	case WebP:
		wasmcodecs.Start()
		return webp.Decode(r)
	case TIFF:
		return tiff.Decode(r)
	case HEIC:
		// The decoder orients the image itself (HEIF irot/imir) and
		// returns pixels that alias the whole WebAssembly memory of the
		// decode; a copy lets that memory go.
		wasmcodecs.Start()
		img, err := heic.Decode(r)
		if err != nil {
			return nil, err
		}
		return transform(img, 1), nil
	}
	return nil, unsupported(string(f))
}

// recoverDecoder turns a decoder panic into an error: no input may crash
// the process.
func recoverDecoder(f Format, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s decoder panicked: %v", f.Name(), r)
	}
}

// classify wraps a decoder error with the sentinel callers test: decoders
// that report "valid but unimplemented" give ErrUnsupported, everything
// else ErrCorrupt. Errors already carrying a sentinel pass through.
func classify(f Format, err error) error {
	if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrEmpty) {
		return err
	}
	var (
		jpegUnsupported jpeg.UnsupportedError
		pngUnsupported  png.UnsupportedError
		tiffUnsupported tiff.UnsupportedError
	)
	if errors.As(err, &jpegUnsupported) || errors.As(err, &pngUnsupported) || errors.As(err, &tiffUnsupported) {
		return fmt.Errorf("%w: %s variant: %w; %s", ErrUnsupported, f.Name(), err, SupportedText())
	}
	return fmt.Errorf("%w: decode %s: %w", ErrCorrupt, f.Name(), err)
}
