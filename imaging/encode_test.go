package imaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func TestEncodePNGRoundTrip(t *testing.T) {
	t.Parallel()
	src := quadrants(33, 17)
	var buf bytes.Buffer
	if err := EncodePNG(&buf, src.SubImage(image.Rect(1, 1, 30, 16))); err != nil {
		t.Fatal(err)
	}
	img, info, err := Decode(context.Background(), buf.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != PNG || info.Width != 29 || info.Height != 15 {
		t.Fatalf("info %+v", info)
	}
	for y := range 15 {
		for x := range 29 {
			if !near(img.At(x, y), src.At(x+1, y+1), 0) {
				t.Fatalf("(%d,%d) = %v, want %v", x, y, img.At(x, y), src.At(x+1, y+1))
			}
		}
	}
	if err := EncodePNG(&buf, nil); err == nil {
		t.Error("nil image encoded")
	}
}

func TestEncodePNGUsesFastCompression(t *testing.T) {
	t.Parallel()
	if pngEncoder.CompressionLevel != png.BestSpeed {
		t.Errorf("compression level %v, want BestSpeed", pngEncoder.CompressionLevel)
	}
}

func TestEncodePGM(t *testing.T) {
	t.Parallel()
	g := image.NewGray(image.Rect(0, 0, 4, 3))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 10)
	}
	tests := []struct {
		name string
		img  *image.Gray
		want string
	}{
		{"whole", g, "P5\n4 3\n255\n" + string(g.Pix)},
		{"sub-image", g.SubImage(image.Rect(1, 1, 3, 3)).(*image.Gray), "P5\n2 2\n255\n" + string([]byte{50, 60, 90, 100})},
		{"empty", image.NewGray(image.Rectangle{}), "P5\n0 0\n255\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := EncodePGM(&buf, tt.img); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if buf.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, buf.String(), tt.want)
		}
	}
	if err := EncodePGM(&bytes.Buffer{}, nil); err == nil {
		t.Error("nil image encoded")
	}
}

// failingWriter fails after n bytes.
type failingWriter struct{ n int }

var errWrite = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestEncodeWriteErrors(t *testing.T) {
	t.Parallel()
	big := image.NewGray(image.Rect(0, 0, 512, 512)) // larger than the PGM buffer
	for _, limit := range []int{0, 10, 1000} {
		if err := EncodePGM(&failingWriter{n: limit}, big); !errors.Is(err, errWrite) {
			t.Errorf("PGM with writer failing after %d bytes: %v", limit, err)
		}
		noisy := image.NewRGBA(image.Rect(0, 0, 256, 256))
		for i := range noisy.Pix {
			noisy.Pix[i] = uint8(i * 7919 >> 3)
		}
		if err := EncodePNG(&failingWriter{n: limit}, noisy); !errors.Is(err, errWrite) {
			t.Errorf("PNG with writer failing after %d bytes: %v", limit, err)
		}
	}
}

func ExampleEncodePGM() {
	g := image.NewGray(image.Rect(0, 0, 2, 1))
	g.SetGray(1, 0, color.Gray{Y: 255})
	var buf bytes.Buffer
	_ = EncodePGM(&buf, g)
	fmt.Printf("%q\n", buf.String())
	// Output: "P5\n2 1\n255\n\x00\xff"
}
