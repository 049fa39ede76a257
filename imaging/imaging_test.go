package imaging

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFormatFromContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ct   string
		want Format
		ok   bool
	}{
		{"image/jpeg", JPEG, true},
		{"image/jpg", JPEG, true},
		{"IMAGE/JPEG", JPEG, true},
		{"image/pjpeg", JPEG, true},
		{"image/jpeg; charset=binary", JPEG, true},
		{" image/png ", PNG, true},
		{"image/x-png", PNG, true},
		{"image/webp", WebP, true},
		{"image/heic", HEIC, true},
		{"image/heif", HEIC, true},
		{"image/HEIF;foo=bar", HEIC, true},
		{"image/tiff", TIFF, true},
		{"image/x-tiff", TIFF, true},
		{"image/jpeg; broken=", JPEG, true}, // malformed parameters do not hide the type
		{"image/heic-sequence", "", false},
		{"image/heif-sequence", "", false},
		{"image/avif", "", false},
		{"image/gif", "", false},
		{"image/bmp", "", false},
		{"application/pdf", "", false},
		{"application/octet-stream", "", false},
		{"text/plain", "", false},
		{"", "", false},
		{"jpeg", "", false},
	}
	for _, tt := range tests {
		got, ok := FormatFromContentType(tt.ct)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FormatFromContentType(%q) = %q, %v; want %q, %v", tt.ct, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFormatFacts(t *testing.T) {
	t.Parallel()
	want := map[Format][2]string{
		JPEG: {"image/jpeg", ".jpg"},
		PNG:  {"image/png", ".png"},
		WebP: {"image/webp", ".webp"},
		HEIC: {"image/heic", ".heic"},
		TIFF: {"image/tiff", ".tiff"},
	}
	if len(Supported) != len(want) {
		t.Fatalf("Supported = %v, want %d formats", Supported, len(want))
	}
	text := SupportedText()
	for _, f := range Supported {
		w, ok := want[f]
		if !ok {
			t.Fatalf("unexpected format %q in Supported", f)
		}
		if f.ContentType() != w[0] || f.Ext() != w[1] {
			t.Errorf("%s: ContentType %q Ext %q, want %q %q", f, f.ContentType(), f.Ext(), w[0], w[1])
		}
		if back, ok := FormatFromContentType(f.ContentType()); !ok || back != f {
			t.Errorf("%s: content type does not map back: %q %v", f, back, ok)
		}
		if !strings.Contains(text, f.ContentType()) || !strings.Contains(text, f.Name()) {
			t.Errorf("SupportedText() = %q, does not name %s (%s)", text, f.Name(), f.ContentType())
		}
	}
	if !slices.Equal(Supported, supportedOrder[:]) {
		t.Errorf("Supported = %v, private order %v", Supported, supportedOrder)
	}
	if Format("gif").ContentType() != "" || Format("gif").Ext() != "" {
		t.Error("unknown format has a content type or extension")
	}
}

func TestSentinelsDistinct(t *testing.T) {
	t.Parallel()
	all := []error{ErrEmpty, ErrUnsupported, ErrTooLarge, ErrCorrupt}
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}

func TestLimitsDefault(t *testing.T) {
	t.Parallel()
	for _, l := range []Limits{{}, {MaxPixels: -5}} {
		if got := l.maxPixels(); got != DefaultMaxPixels {
			t.Errorf("%+v.maxPixels() = %d, want %d", l, got, DefaultMaxPixels)
		}
	}
	if got := (Limits{MaxPixels: 10}).maxPixels(); got != 10 {
		t.Errorf("maxPixels = %d, want 10", got)
	}
	if 8064*6048 > DefaultMaxPixels || 20000*20000 <= DefaultMaxPixels {
		t.Error("DefaultMaxPixels must admit a 48 MP photo and refuse 20000×20000")
	}
}
