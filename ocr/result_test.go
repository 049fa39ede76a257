package ocr_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/ocr"
)

// TestRoundTripFixtures decodes every real OCR result and encodes it back:
// the JSON must be equal in fields, values and order of lines, words and
// letters (their ids are their positions).
func TestRoundTripFixtures(t *testing.T) {
	t.Parallel()
	dir := fixtures.Dir(t)
	files, err := filepath.Glob(filepath.Join(dir, "portfolio", "*.vision.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(dir, "portfolio", "swift_single_pass_contract.json"))
	if len(files) < 3 {
		t.Fatalf("found %d fixtures, want at least 3", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ocr.Decode(raw)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(r.Lines) == 0 {
				t.Fatal("no lines decoded")
			}
			if err := r.Validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
			out, err := ocr.Encode(r)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			var want, got any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("round trip differs: %s", firstDiff("", want, got))
			}
			// A second round trip is byte-identical (encoding is deterministic).
			r2, err := ocr.Decode(out)
			if err != nil {
				t.Fatal(err)
			}
			out2, _ := ocr.Encode(r2)
			if string(out) != string(out2) {
				t.Error("second encoding differs from the first")
			}
		})
	}
}

func TestSinglePassFields(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(fixtures.Path(t, "portfolio", "swift_single_pass_contract.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ocr.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !r.SinglePass() || r.Classification.ImageType != ocr.TypePhoto || r.Classification.ImageWidth != 3024 {
		t.Fatalf("classification = %+v", r.Classification)
	}
	if len(r.Receipts) != 1 {
		t.Fatalf("receipts = %d, want 1", len(r.Receipts))
	}
	rc := r.Receipts[0]
	if rc.ClusterID != 1 || rc.WarpedWidth != 1000 || rc.WarpedHeight != 2400 || len(rc.Lines) == 0 {
		t.Errorf("receipt = id %d %dx%d lines %d", rc.ClusterID, rc.WarpedWidth, rc.WarpedHeight, len(rc.Lines))
	}
	for _, k := range []string{"line_items", "barcodes", "sections", "reconciliation"} {
		if _, ok := rc.Extra[k]; !ok {
			t.Errorf("receipt extra %q not kept", k)
		}
	}
	if _, ok := r.Extra["barcodes"]; !ok {
		t.Error("top-level barcodes not kept")
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `null`, `[]`, `{}`, `{"lines":{}}`, `{"lines":[{"text":5}]}`, `{"lines":[],"receipts":{}}`, `{"lines":[`} {
		if _, err := ocr.Decode([]byte(in)); !errors.Is(err, ocr.ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", in, err)
		}
	}
}

func TestValidateGeometry(t *testing.T) {
	t.Parallel()
	good := ocr.NewGeometry(ocr.Quad{
		TopLeft: ocr.Point{X: 0.1, Y: 0.9}, TopRight: ocr.Point{X: 0.5, Y: 0.9},
		BottomRight: ocr.Point{X: 0.5, Y: 0.8}, BottomLeft: ocr.Point{X: 0.1, Y: 0.8},
	}, 0.9)
	tests := []struct {
		name string
		mod  func(*ocr.Geometry)
		ok   bool
	}{
		{"good", func(*ocr.Geometry) {}, true},
		{"x over 1", func(g *ocr.Geometry) { g.TopRight.X = 1.2 }, false},
		{"negative y", func(g *ocr.Geometry) { g.BottomLeft.Y = -0.1 }, false},
		{"NaN", func(g *ocr.Geometry) { g.TopLeft.X = math.NaN() }, false},
		{"confidence 2", func(g *ocr.Geometry) { g.Confidence = 2 }, false},
	}
	for _, tt := range tests {
		g := good
		tt.mod(&g)
		r := &ocr.Result{Lines: []ocr.Line{{Text: "x", Geometry: g}}}
		err := r.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ocr.ErrGeometry)) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
	r := &ocr.Result{Lines: []ocr.Line{{Text: "x", Geometry: good}}, Receipts: []ocr.Receipt{{ClusterID: 1, LineIndices: []int{3}}}}
	if err := r.Validate(); !errors.Is(err, ocr.ErrMalformed) {
		t.Errorf("bad line index: %v", err)
	}
}

func TestGeometryFromPixels(t *testing.T) {
	t.Parallel()
	// A box from (100,200) to (300,250) in a 1000×500 image, tilted so its
	// right side is 20 px higher.
	w, h := 1000, 500
	q := ocr.Quad{
		TopLeft:     ocr.FromPixel(100, 200, w, h),
		TopRight:    ocr.FromPixel(300, 180, w, h),
		BottomRight: ocr.FromPixel(300, 230, w, h),
		BottomLeft:  ocr.FromPixel(100, 250, w, h),
	}
	g := ocr.NewGeometry(q, 0.5)
	if g.TopLeft.Y <= g.BottomLeft.Y {
		t.Errorf("y must point up: top %v bottom %v", g.TopLeft.Y, g.BottomLeft.Y)
	}
	if g.AngleDegrees <= 0 {
		t.Errorf("rising top edge gives angle %v, want > 0", g.AngleDegrees)
	}
	bb := g.BoundingBox
	if !near(bb.X, 0.1) || !near(bb.Y, 0.5) || !near(bb.Width, 0.2) || !near(bb.Height, 0.14) {
		t.Errorf("bounding box = %+v", bb)
	}
	x, y := g.TopRight.Pixel(w, h)
	if !near(x, 300) || !near(y, 180) {
		t.Errorf("back to pixels = %v,%v", x, y)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// firstDiff names the first path where two decoded JSON values differ.
func firstDiff(path string, a, b any) string {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return path + ": type"
		}
		for k := range av {
			if _, ok := bv[k]; !ok {
				return path + "." + k + ": missing"
			}
			if !reflect.DeepEqual(av[k], bv[k]) {
				return firstDiff(path+"."+k, av[k], bv[k])
			}
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				return path + "." + k + ": extra"
			}
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return path + ": length"
		}
		for i := range av {
			if !reflect.DeepEqual(av[i], bv[i]) {
				return firstDiff(path+"["+strconv.Itoa(i)+"]", av[i], bv[i])
			}
		}
	}
	return path + ": value"
}
