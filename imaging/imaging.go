// Package imaging turns uploaded bytes into pixels safely. The upload API
// uses Inspect to reject bad input with a clear 4xx before anything is
// stored; the OCR worker uses Decode, which also applies the camera's EXIF
// orientation so text is upright.
//
// Decoders are called directly (nothing is registered with package image),
// so only the formats listed in Supported are ever decoded.
package imaging

import (
	"errors"
	"mime"
	"strings"
)

// Sentinel errors, tested with errors.Is. The upload API maps ErrUnsupported
// to 415, ErrTooLarge to 413, and ErrEmpty and ErrCorrupt to 400.
var (
	// ErrEmpty reports zero bytes of input.
	ErrEmpty = errors.New("imaging: empty image")
	// ErrUnsupported reports input that is not one of the Supported
	// formats, or a variant of one that no decoder here handles.
	ErrUnsupported = errors.New("imaging: unsupported image format")
	// ErrTooLarge reports an image whose pixel count exceeds the limit; it
	// is detected from the header, before any pixels are allocated.
	ErrTooLarge = errors.New("imaging: image too large")
	// ErrCorrupt reports a supported format whose data does not parse
	// (bad header, truncated data); the decoder's error is wrapped too.
	ErrCorrupt = errors.New("imaging: corrupt image")
)

// Format names an accepted image format; its value is a short lower-case
// name safe for logs and keys.
type Format string

// The accepted formats.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	WebP Format = "webp"
	HEIC Format = "heic"
	TIFF Format = "tiff"
)

// Supported lists the accepted formats, in the order used in error messages.
// It is for reading only (the upload API lists it in 415 responses).
var Supported = []Format{JPEG, PNG, WebP, HEIC, TIFF}

// formatInfo holds the fixed facts about a format. The map is private so
// that nothing a caller does to Supported changes what is decoded.
type formatInfo struct {
	name        string // as people write it
	contentType string
	ext         string
}

var formats = map[Format]formatInfo{
	JPEG: {"JPEG", "image/jpeg", ".jpg"},
	PNG:  {"PNG", "image/png", ".png"},
	WebP: {"WebP", "image/webp", ".webp"},
	HEIC: {"HEIC", "image/heic", ".heic"},
	TIFF: {"TIFF", "image/tiff", ".tiff"},
}

// supportedOrder is the private copy of Supported used for messages.
var supportedOrder = [...]Format{JPEG, PNG, WebP, HEIC, TIFF}

// ContentType returns the canonical MIME type to store and serve the image
// with, or "" for an unknown format.
func (f Format) ContentType() string { return formats[f].contentType }

// Ext returns the file name extension (with the dot) for stored files, or ""
// for an unknown format.
func (f Format) Ext() string { return formats[f].ext }

// Name returns the format's name as people write it ("JPEG", "WebP"), for
// messages; an unknown format returns its raw value.
func (f Format) Name() string {
	if fi, ok := formats[f]; ok {
		return fi.name
	}
	return string(f)
}

// SupportedText returns a sentence naming the accepted formats with their
// content types, for 415 messages.
func SupportedText() string {
	var b strings.Builder
	b.WriteString("accepted image types are ")
	for i, f := range supportedOrder {
		switch {
		case i == len(supportedOrder)-1:
			b.WriteString(" and ")
		case i > 0:
			b.WriteString(", ")
		}
		fi := formats[f]
		b.WriteString(fi.name + " (" + fi.contentType + ")")
	}
	return b.String()
}

// contentTypes maps the MIME types seen in the wild to formats. HEIF image
// sequences (image/heic-sequence, image/heif-sequence) are deliberately
// absent: the decoder reads only a file's primary still image, so a client
// declaring a sequence is told up front that it is not accepted.
var contentTypes = map[string]Format{
	"image/jpeg":   JPEG,
	"image/jpg":    JPEG,
	"image/pjpeg":  JPEG, // progressive JPEG, as old Internet Explorer sent it
	"image/png":    PNG,
	"image/x-png":  PNG,
	"image/webp":   WebP,
	"image/heic":   HEIC,
	"image/heif":   HEIC,
	"image/tiff":   TIFF,
	"image/tif":    TIFF,
	"image/x-tiff": TIFF,
}

// FormatFromContentType maps a declared Content-Type (case-insensitive,
// parameters such as "; charset=binary" ignored) to a format. It reports
// false for anything not accepted, including application/octet-stream:
// callers that want to accept unlabelled bytes should Sniff them instead.
func FormatFromContentType(ct string) (Format, bool) {
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil {
		// Malformed parameters should not hide a plain type.
		mediaType, _, _ = strings.Cut(ct, ";")
		mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	}
	f, ok := contentTypes[mediaType]
	return f, ok
}

// DefaultMaxPixels is the pixel limit used when Limits.MaxPixels is not set:
// a 48 MP phone photo (8064×6048) passes, a 20000×20000 bomb does not.
const DefaultMaxPixels int64 = 64_000_000

// Limits bounds what Inspect and Decode accept, so that a small upload cannot
// make a worker allocate gigabytes.
type Limits struct {
	// MaxPixels is the largest width×height accepted; 0 or less means
	// DefaultMaxPixels.
	MaxPixels int64
}

func (l Limits) maxPixels() int64 {
	if l.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return l.MaxPixels
}

// Info describes an image as it will be displayed.
type Info struct {
	Format Format
	// Width and Height are after the EXIF orientation is applied, i.e. the
	// size of the image Decode returns.
	Width, Height int
	// Orientation is the EXIF orientation (1–8) found in the file, 1 when
	// there is none. HEIC reports 1: its decoder applies the HEIF
	// rotation and mirroring (irot/imir) itself.
	Orientation int
}
