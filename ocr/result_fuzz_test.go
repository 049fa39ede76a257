package ocr_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/ocr"
)

// fuzzGeometry is an upright box in range.
func fuzzGeometry(x, y float64) ocr.Geometry {
	return ocr.NewGeometry(ocr.Quad{
		TopLeft: ocr.Point{X: x, Y: y + 0.05}, TopRight: ocr.Point{X: x + 0.2, Y: y + 0.05},
		BottomRight: ocr.Point{X: x + 0.2, Y: y}, BottomLeft: ocr.Point{X: x, Y: y},
	}, 0.9)
}

// trimmed keeps the first n lines (and receipts' lines) of a real result,
// so that seeds stay small.
func trimmed(r *ocr.Result, n int) *ocr.Result {
	if len(r.Lines) > n {
		r.Lines = r.Lines[:n]
	}
	for i := range r.Receipts {
		rc := &r.Receipts[i]
		if len(rc.Lines) > n {
			rc.Lines = rc.Lines[:n]
		}
		var idx []int
		for _, j := range rc.LineIndices {
			if j < len(r.Lines) {
				idx = append(idx, j)
			}
		}
		rc.LineIndices = idx
	}
	return r
}

// FuzzDecodeResult: any document either decodes or is ErrMalformed, never
// a panic; what decodes encodes deterministically and decodes back to the
// same value, in the same form (legacy or single-pass), with the same
// validation verdict; a validation error is ErrGeometry or ErrMalformed.
func FuzzDecodeResult(f *testing.F) {
	g := fuzzGeometry(0.1, 0.8)
	legacy := &ocr.Result{Lines: []ocr.Line{{Text: "TOTAL 5.00", Geometry: g,
		Words: []ocr.Word{{Text: "TOTAL", Geometry: g, Letters: []ocr.Letter{{Text: "T", Geometry: g}}},
			{Text: "5.00", Geometry: g, ExtractedData: &ocr.ExtractedData{Type: ocr.ExtractDate, Value: "x"}}}}}}
	single := &ocr.Result{Lines: legacy.Lines,
		Classification: &ocr.Classification{ImageType: ocr.TypePhoto, Margins: ocr.Margins{Left: 0.1}, ImageWidth: 3024, ImageHeight: 4032},
		Clustering:     &ocr.Clustering{Method: "dbscan", Epsilon: 0.1, Clusters: 1, Noise: []int{0}},
		Receipts: []ocr.Receipt{{ClusterID: 1, Bounds: g.Quad(), WarpedWidth: 1000, WarpedHeight: 2400, S3Key: "k",
			LineIndices: []int{0}, Lines: legacy.Lines}}}
	for _, r := range []*ocr.Result{legacy, single} {
		b, err := ocr.Encode(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"lines":[]}`, `{"lines":[],"barcodes":[1,2],"x":{"y":null}}`,
		`{"lines":[],"classification":{"image_type":"SCAN"},"receipts":[{"cluster_id":1,"line_indices":[0],"lines":[],"line_items":[]}]}`,
		`{"lines":[{"text":"a","bounding_box":{"x":0,"y":0,"width":1,"height":1},"top_left":{"x":2,"y":0},"confidence":0.5,"words":[]}]}`,
		`{"lines":[],"receipts":[{"cluster_id":1,"line_indices":[-1]}]}`,
		`{"Lines":[],"lines":[]}`, `{"lines":null}`, ``, `null`, `[]`, `{}`, `{"lines":{}}`, `{"lines":[{"text":5}]}`,
		`{"lines":[],"receipts":{}}`, `{"lines":[`,
	} {
		f.Add([]byte(s))
	}
	if dir := fixtures.Find(); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "portfolio", "*.vision.json"))
		files = append(files[:min(len(files), 2)], filepath.Join(dir, "portfolio", "swift_single_pass_contract.json"))
		for _, p := range files {
			raw, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			r, err := ocr.Decode(raw)
			if err != nil {
				f.Fatalf("%s: %v", p, err)
			}
			if b, err := ocr.Encode(trimmed(r, 3)); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ocr.Decode(data)
		if err != nil {
			if r != nil || !errors.Is(err, ocr.ErrMalformed) {
				t.Fatalf("Decode = %v, %v; want nil and ErrMalformed", r, err)
			}
			return
		}
		if r.Lines == nil {
			t.Fatal("decoded without a lines array")
		}
		verr := r.Validate()
		if verr != nil && !errors.Is(verr, ocr.ErrGeometry) && !errors.Is(verr, ocr.ErrMalformed) {
			t.Fatalf("Validate = %v, want ErrGeometry or ErrMalformed", verr)
		}
		out, err := ocr.Encode(r)
		if err != nil {
			t.Fatalf("Encode of a decoded result: %v", err)
		}
		r2, err := ocr.Decode(out)
		if err != nil {
			t.Fatalf("Decode of an encoded result: %v\n%s", err, out)
		}
		if r.SinglePass() != r2.SinglePass() {
			t.Fatalf("form changed in a round trip: single-pass %v then %v", r.SinglePass(), r2.SinglePass())
		}
		if v2 := r2.Validate(); (verr == nil) != (v2 == nil) {
			t.Fatalf("validation changed in a round trip: %v then %v", verr, v2)
		}
		out2, err := ocr.Encode(r2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second encoding differs (%v):\n%s\n%s", err, out, out2)
		}
		r3, err := ocr.Decode(out2)
		if err != nil || !reflect.DeepEqual(r2, r3) {
			t.Fatalf("decoded value changed in a round trip (%v)", err)
		}
	})
}
