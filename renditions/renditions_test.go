package renditions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gen2brain/avif"
	xwebp "golang.org/x/image/webp"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/blob/file"
)

func TestMain(m *testing.M) {
	// gen2brain/avif's encoder and decoder start-ups write one shared
	// variable that the other reads; starting both before any test runs
	// keeps parallel tests from racing inside the library. Starting them
	// here also keeps start-up out of the benchmarks.
	Warm()
	avif.InitDecoder()
	os.Exit(m.Run())
}

func newStore(t *testing.T) *file.Store {
	t.Helper()
	s, err := file.Open(t.TempDir(), file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// halves is a w×h opaque image, red on the left half and blue on the right,
// so a decoded rendition can be checked for the right pixels, not just the
// right size.
func halves(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{220, 30, 30, 255}
			if x >= w/2 {
				c = color.RGBA{30, 30, 220, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func decode(t *testing.T, f Format, data []byte) image.Image {
	t.Helper()
	var img image.Image
	var err error
	switch f {
	case JPEG:
		img, err = jpeg.Decode(bytes.NewReader(data))
	case WebP:
		img, err = xwebp.Decode(bytes.NewReader(data))
	case AVIF:
		img, err = avif.Decode(bytes.NewReader(data))
	default:
		t.Fatalf("no decoder for %q", f)
	}
	if err != nil {
		t.Fatalf("decode %s: %v", f, err)
	}
	return img
}

// checkHalves asserts that img is red at a quarter of its width and blue at
// three quarters, allowing for lossy compression.
func checkHalves(t *testing.T, what string, img image.Image) {
	t.Helper()
	b := img.Bounds()
	y := b.Min.Y + b.Dy()/2
	left := color.NRGBAModel.Convert(img.At(b.Min.X+b.Dx()/4, y)).(color.NRGBA)
	right := color.NRGBAModel.Convert(img.At(b.Min.X+3*b.Dx()/4, y)).(color.NRGBA)
	if left.R < 150 || left.B > 100 || right.B < 150 || right.R > 100 {
		t.Errorf("%s: left %v right %v, want red then blue", what, left, right)
	}
}

type size struct{ w, h int }

func TestRenderStoresDecodableRenditions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		img    image.Image
		opts   Options
		want   map[string]size // size name → dimensions, for every format
		skips  []Skip
		prefix string
	}{
		{
			name: "small sizes",
			img:  halves(160, 120),
			opts: Options{Sizes: []int{40, 80, 0}},
			want: map[string]size{"full": {160, 120}, "80": {80, 60}, "40": {40, 30}},
		},
		{
			name:  "default sizes, AVIF stops at 1200",
			img:   halves(1300, 40),
			want:  map[string]size{"full": {1300, 40}, "1200": {1200, 37}, "600": {600, 18}, "300": {300, 9}},
			skips: []Skip{{Format: AVIF, SizeName: "full"}},
		},
		{
			name: "portrait receipt crop made with SubImage",
			img:  halves(400, 300).SubImage(image.Rect(100, 20, 300, 300)),
			opts: Options{Sizes: []int{70, 0}},
			want: map[string]size{"full": {200, 280}, "70": {50, 70}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newStore(t)
			prefix := ReceiptPrefix("IMG", 1)
			rendered, skipped, err := Render(t.Context(), store, tt.img, prefix, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := skipKeys(skipped); !slices.Equal(got, skipKeys(tt.skips)) {
				t.Errorf("skipped %v, want %v", skipped, tt.skips)
			}
			wantCount := len(AllFormats)*len(tt.want) - len(tt.skips)
			if len(rendered) != wantCount {
				t.Errorf("rendered %d, want %d: %+v", len(rendered), wantCount, rendered)
			}
			for _, r := range rendered {
				want, ok := tt.want[r.SizeName]
				if !ok {
					t.Errorf("unexpected size %q", r.SizeName)
					continue
				}
				if r.Width != want.w || r.Height != want.h {
					t.Errorf("%s %s: %d×%d, want %d×%d", r.Format, r.SizeName, r.Width, r.Height, want.w, want.h)
				}
				if wantKey := "assets/IMG/1_" + r.SizeName + "." + r.Format.Ext(); r.Key != wantKey {
					t.Errorf("key %q, want %q", r.Key, wantKey)
				}
				info, err := store.Head(t.Context(), r.Key)
				if err != nil {
					t.Fatal(err)
				}
				if info.ContentType != r.ContentType || r.ContentType != "image/"+string(r.Format) {
					t.Errorf("%s: stored content type %q, rendition says %q", r.Key, info.ContentType, r.ContentType)
				}
				data, err := blob.ReadAll(t.Context(), store, r.Key)
				if err != nil {
					t.Fatal(err)
				}
				if len(data) != r.Bytes {
					t.Errorf("%s: %d bytes stored, rendition says %d", r.Key, len(data), r.Bytes)
				}
				img := decode(t, r.Format, data)
				if b := img.Bounds(); b.Dx() != want.w || b.Dy() != want.h {
					t.Errorf("%s decodes to %v, want %d×%d", r.Key, b, want.w, want.h)
				}
				checkHalves(t, r.Key, img)
			}
		})
	}
}

func skipKeys(skips []Skip) []string {
	var keys []string
	for _, s := range skips {
		keys = append(keys, string(s.Format)+"/"+s.SizeName)
	}
	slices.Sort(keys)
	return keys
}

func TestRenderNeverUpscales(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	rendered, skipped, err := Render(t.Context(), store, halves(200, 100), "assets/IMG/image", Options{})
	if err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	var keys []string
	for _, r := range rendered {
		keys = append(keys, r.Key)
		if r.Width != 200 || r.Height != 100 {
			t.Errorf("%s: %d×%d, want 200×100", r.Key, r.Width, r.Height)
		}
	}
	want := []string{"assets/IMG/image_full.jpg", "assets/IMG/image_full.webp", "assets/IMG/image_full.avif"}
	if !slices.Equal(keys, want) {
		t.Errorf("rendered %v, want %v", keys, want)
	}
	page, err := store.List(t.Context(), blob.ListOptions{Prefix: "assets/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != len(want) {
		t.Errorf("store holds %d objects, want %d", len(page.Objects), len(want))
	}
}

func TestPlannedSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		w, h      int
		requested []int
		sizes     []int
		negative  []int
	}{
		{"defaults on a photo", 3024, 4032, DefaultSizes, []int{0, 1200, 600, 300}, nil},
		{"unordered and repeated", 1000, 500, []int{300, 0, 600, 300}, []int{0, 600, 300}, nil},
		{"small image keeps only full", 200, 100, DefaultSizes, []int{0}, nil},
		{"size equal to the long side is full", 600, 300, DefaultSizes, []int{0, 300}, nil},
		{"collapsed size adds full when not requested", 500, 500, []int{300, 600}, []int{0, 300}, nil},
		{"full not requested", 2000, 1000, []int{300}, []int{300}, nil},
		{"negative sizes set apart once", 2000, 1000, []int{-1, 300, -1}, []int{300}, []int{-1}},
		{"nothing requested", 2000, 1000, []int{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sizes, negative := plannedSizes(image.Rect(0, 0, tt.w, tt.h), tt.requested)
			if !slices.Equal(sizes, tt.sizes) || !slices.Equal(negative, tt.negative) {
				t.Errorf("plannedSizes(%d×%d, %v) = %v, %v; want %v, %v", tt.w, tt.h, tt.requested, sizes, negative, tt.sizes, tt.negative)
			}
		})
	}
}

func TestRenderAVIFMaxSide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		maxSide     int
		wantAVIF    []string
		wantSkipped []string
	}{
		{"limit between sizes", 50, []string{"40"}, []string{"full", "80"}},
		{"limit equal to a size keeps it", 80, []string{"80", "40"}, []string{"full"}},
		{"negative means no limit", -1, []string{"full", "80", "40"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{Formats: []Format{AVIF}, Sizes: []int{40, 80, 0}, AVIFMaxSide: tt.maxSide}
			rendered, skipped, err := Render(t.Context(), newStore(t), halves(160, 120), "assets/IMG/image", opts)
			if err != nil {
				t.Fatal(err)
			}
			var got, gotSkipped []string
			for _, r := range rendered {
				got = append(got, r.SizeName)
			}
			for _, s := range skipped {
				gotSkipped = append(gotSkipped, s.SizeName)
				if s.Format != AVIF || !strings.Contains(s.Reason, "AVIFMaxSide") {
					t.Errorf("skip %+v: want AVIF with a reason naming AVIFMaxSide", s)
				}
			}
			if !slices.Equal(got, tt.wantAVIF) || !slices.Equal(gotSkipped, tt.wantSkipped) {
				t.Errorf("rendered %v skipped %v, want %v and %v", got, gotSkipped, tt.wantAVIF, tt.wantSkipped)
			}
		})
	}
}

func TestRenderTranslucentWebPKeepsColour(t *testing.T) {
	t.Parallel()
	// Half-transparent red: premultiplied in RGBA as (128, 0, 0, 128).
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:], []uint8{128, 0, 0, 128})
	}
	store := newStore(t)
	rendered, skipped, err := Render(t.Context(), store, img, "assets/IMG/image", Options{Formats: []Format{WebP}, Sizes: []int{0}})
	if err != nil || len(rendered) != 1 {
		t.Fatal(err, skipped)
	}
	data, err := blob.ReadAll(t.Context(), store, rendered[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	got := color.NRGBAModel.Convert(decode(t, WebP, data).At(16, 16)).(color.NRGBA)
	if got.R < 200 || got.A < 100 || got.A > 156 {
		t.Errorf("decoded %v, want about {255 0 0 128}", got)
	}
}

// fakeEncoders return tiny fixed outputs, so tests of Render's control flow
// run in microseconds; failing formats are replaced per test.
func fakeEncoders(replace map[Format]encodeFunc) map[Format]encodeFunc {
	ok := func(w *bytes.Buffer, img *image.RGBA, _ int) error {
		fmt.Fprintf(w, "%d×%d", img.Rect.Dx(), img.Rect.Dy())
		return nil
	}
	m := map[Format]encodeFunc{JPEG: ok, WebP: ok, AVIF: ok}
	for f, e := range replace {
		m[f] = e
	}
	return m
}

func TestRenderSkipsWhatCannotBeEncoded(t *testing.T) {
	t.Parallel()
	failing := func(*bytes.Buffer, *image.RGBA, int) error { return errors.New("wasm: out of memory") }
	panicking := func(*bytes.Buffer, *image.RGBA, int) error { panic("wazero: compile failed") }
	silent := func(*bytes.Buffer, *image.RGBA, int) error { return nil }
	tests := []struct {
		name      string
		img       image.Image
		opts      Options
		encoders  map[Format]encodeFunc
		rendered  int
		skipped   []string // format/size
		reasonHas string
	}{
		{"failing encoder", halves(100, 50), Options{Sizes: []int{50, 0}}, fakeEncoders(map[Format]encodeFunc{WebP: failing}), 4, []string{"webp/50", "webp/full"}, "out of memory"},
		{"panicking encoder", halves(100, 50), Options{Sizes: []int{0}}, fakeEncoders(map[Format]encodeFunc{AVIF: panicking}), 2, []string{"avif/full"}, "compile failed"},
		{"encoder writing nothing", halves(100, 50), Options{Sizes: []int{0}}, fakeEncoders(map[Format]encodeFunc{JPEG: silent}), 2, []string{"jpeg/full"}, "wrote nothing"},
		{"unknown format", halves(100, 50), Options{Formats: []Format{"gif", JPEG, JPEG}, Sizes: []int{0}}, fakeEncoders(nil), 1, []string{"gif/"}, "unknown format"},
		{"negative size", halves(100, 50), Options{Formats: []Format{JPEG}, Sizes: []int{-5, 0}}, fakeEncoders(nil), 1, []string{"jpeg/-5"}, "negative"},
		{"nil image", nil, Options{Formats: []Format{JPEG, WebP}}, fakeEncoders(nil), 0, []string{"jpeg/", "webp/"}, "empty image"},
		{"empty image", image.NewRGBA(image.Rect(5, 5, 5, 9)), Options{Formats: []Format{JPEG}}, fakeEncoders(nil), 0, []string{"jpeg/"}, "empty image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rendered, skipped, err := render(t.Context(), newStore(t), tt.img, "assets/IMG/image", tt.opts, tt.encoders)
			if err != nil {
				t.Fatalf("err = %v, want nil: a rendition must never fail the record", err)
			}
			if len(rendered) != tt.rendered {
				t.Errorf("rendered %d, want %d", len(rendered), tt.rendered)
			}
			want := slices.Clone(tt.skipped)
			slices.Sort(want)
			if got := skipKeys(skipped); !slices.Equal(got, want) {
				t.Errorf("skipped %v, want %v", got, want)
			}
			for _, s := range skipped {
				if !strings.Contains(s.Reason, tt.reasonHas) {
					t.Errorf("skip reason %q, want it to mention %q", s.Reason, tt.reasonHas)
				}
			}
		})
	}
}

// putFunc wraps a store, replacing Put.
type putFunc struct {
	blob.Store
	put func(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (blob.Info, error)
}

func (p putFunc) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (blob.Info, error) {
	return p.put(ctx, key, r, opts)
}

func TestRenderStoreFailureIsAnError(t *testing.T) {
	t.Parallel()
	errDiskFull := errors.New("disk full")
	var puts atomic.Int32
	store := putFunc{Store: newStore(t), put: func(context.Context, string, io.Reader, blob.PutOptions) (blob.Info, error) {
		puts.Add(1)
		return blob.Info{}, errDiskFull
	}}
	rendered, _, err := render(t.Context(), store, halves(100, 50), "assets/IMG/image", Options{Parallel: 1}, fakeEncoders(nil))
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("err = %v, want the store's error", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("err = %v: a store failure must not look like a cancellation", err)
	}
	if len(rendered) != 0 || puts.Load() != 1 {
		t.Errorf("rendered %d after %d puts, want 0 after 1 (stop at the first failure)", len(rendered), puts.Load())
	}
}

func TestRenderStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	t.Run("already cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		store := newStore(t)
		_, _, err := Render(ctx, store, halves(100, 50), "assets/IMG/image", Options{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		page, err := store.List(t.Context(), blob.ListOptions{})
		if err != nil || len(page.Objects) != 0 {
			t.Errorf("stored %d objects (%v), want none", len(page.Objects), err)
		}
	})
	t.Run("cancelled with a cause after the first put", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancelCause(t.Context())
		defer cancel(nil)
		inner := newStore(t)
		store := putFunc{Store: inner, put: func(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (blob.Info, error) {
			info, err := inner.Put(ctx, key, r, opts)
			cancel(errors.New("worker shutting down"))
			return info, err
		}}
		rendered, _, err := render(ctx, store, halves(100, 50), "assets/IMG/image", Options{Parallel: 1}, fakeEncoders(nil))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if len(rendered) != 1 || rendered[0].Key != "assets/IMG/image_full.jpg" {
			t.Errorf("rendered %+v, want only the first JPEG", rendered)
		}
	})
	t.Run("during an encode that cannot be interrupted", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		started, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		blocking := func(w *bytes.Buffer, _ *image.RGBA, _ int) error {
			once.Do(func() { close(started) })
			<-release
			w.WriteString("late")
			return nil
		}
		go func() {
			<-started
			cancel()
		}()
		// Render must return while the encoder is still blocked: release
		// only runs after it has.
		defer close(release)
		store := newStore(t)
		_, _, err := render(ctx, store, halves(100, 50), "assets/IMG/image", Options{Formats: []Format{AVIF}}, fakeEncoders(map[Format]encodeFunc{AVIF: blocking}))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestRenderRejectsBadArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		store  blob.Store
		prefix string
	}{
		{"nil store", nil, "assets/IMG/image"},
		{"empty prefix segment", newStore(t), "assets//image"},
		{"absolute prefix", newStore(t), "/assets/IMG/image"},
		{"dot-dot prefix", newStore(t), "../IMG/image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Render(t.Context(), tt.store, halves(10, 10), tt.prefix, Options{})
			if !errors.Is(err, tally.ErrInvalidArgument) {
				t.Errorf("err = %v, want tally.ErrInvalidArgument", err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{Key(ImagePrefix("abc"), JPEG, "300"), "assets/abc/image_300.jpg"},
		{Key(ImagePrefix("abc"), AVIF, FullSize), "assets/abc/image_full.avif"},
		{Key(ReceiptPrefix("abc", 2), WebP, "1200"), "assets/abc/2_1200.webp"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("key %q, want %q", tt.got, tt.want)
		}
	}
	for _, f := range AllFormats {
		if f.Ext() == "" || !strings.HasPrefix(f.ContentType(), "image/") {
			t.Errorf("%s: ext %q, content type %q", f, f.Ext(), f.ContentType())
		}
	}
	if Format("gif").Ext() != "" || Format("gif").ContentType() != "" {
		t.Error("unknown format has an extension or content type")
	}
}
