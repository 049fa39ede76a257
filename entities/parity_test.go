package entities_test

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/ocr"
)

// Parity with the system Tally replaces, on its real data: the legacy OCR
// result of a flatbed scan goes through the OCR stage exactly as an
// external submission does (upload.SubmitOCR: ocrstage.Analyze on the
// decoded image with the submitted lines), then Build; the entities must
// match what the old system stored for the same result.

const scanImageID = "2f05267d-86df-42b3-8a14-e29c5ea567b3"

// Tolerances of the parity tests.
const (
	// imageTolerance: image-level lines, words and letters are the OCR
	// result's own coordinates, carried through unchanged.
	imageTolerance = 1e-6
	// receiptTolerance (normalized units, 1 %): receipt corners and
	// receipt-level coordinates depend on how the receipt is found and
	// rectified. With layout's fallback margin at 0 (as the old system,
	// which hugged the lines) the scan's corners agree within 0.05 % and its
	// receipt words within 0.2 %; a margin of half a line height would put
	// the corners 1.2 % and receipt words ~3 % off, failing this test.
	receiptTolerance = 0.01
	// photoTolerance (2 %) bounds the bar receipt photo's corners, which the
	// old system took from the lines' box on the real photo.
	photoTolerance = 0.02
)

// entry is the part of a text entity the parity tests compare.
type entry struct {
	key  string
	text string
	geom ocr.Geometry
}

func lineEntries(ls []entities.Line) []entry {
	out := make([]entry, len(ls))
	for i, l := range ls {
		out[i] = entry{fmt.Sprintf("line %d", l.LineID), l.Text, l.Geometry}
	}
	return out
}

func wordEntries(ws []entities.Word) []entry {
	out := make([]entry, len(ws))
	for i, w := range ws {
		out[i] = entry{fmt.Sprintf("line %d word %d", w.LineID, w.WordID), w.Text, w.Geometry}
	}
	return out
}

func letterEntries(cs []entities.Letter) []entry {
	out := make([]entry, len(cs))
	for i, c := range cs {
		out[i] = entry{fmt.Sprintf("line %d word %d letter %d", c.LineID, c.WordID, c.LetterID), c.Text, c.Geometry}
	}
	return out
}

func receiptLineEntries(ls []entities.ReceiptLine) []entry {
	out := make([]entry, len(ls))
	for i, l := range ls {
		out[i] = entry{fmt.Sprintf("receipt %d line %d", l.ReceiptID, l.LineID), l.Text, l.Geometry}
	}
	return out
}

func receiptWordEntries(ws []entities.ReceiptWord) []entry {
	out := make([]entry, len(ws))
	for i, w := range ws {
		out[i] = entry{fmt.Sprintf("receipt %d line %d word %d", w.ReceiptID, w.LineID, w.WordID), w.Text, w.Geometry}
	}
	return out
}

func receiptLetterEntries(cs []entities.ReceiptLetter) []entry {
	out := make([]entry, len(cs))
	for i, c := range cs {
		out[i] = entry{fmt.Sprintf("receipt %d line %d word %d letter %d", c.ReceiptID, c.LineID, c.WordID, c.LetterID), c.Text, c.Geometry}
	}
	return out
}

// compareEntries checks ids and texts exactly and coordinates within tol;
// it returns the largest coordinate difference. With angles set, the
// angles and confidence must agree within tol as well.
func compareEntries(t *testing.T, kind string, got, want []entry, tol float64, angles bool) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d, want %d", kind, len(got), len(want))
		return math.Inf(1)
	}
	worst, failures := 0.0, 0
	for i := range got {
		g, w := got[i], want[i]
		if g.key != w.key || g.text != w.text {
			t.Errorf("%s[%d]: %s %q, want %s %q", kind, i, g.key, g.text, w.key, w.text)
			failures++
		}
		d := geometryDiff(g.geom, w.geom)
		if angles {
			d = max(d, math.Abs(g.geom.AngleDegrees-w.geom.AngleDegrees), math.Abs(g.geom.AngleRadians-w.geom.AngleRadians),
				math.Abs(g.geom.Confidence-w.geom.Confidence))
		}
		worst = math.Max(worst, d)
		if d > tol {
			t.Errorf("%s[%d] (%s %q): coordinates differ by %.3g, more than %g", kind, i, g.key, g.text, d, tol)
			failures++
		}
		if failures > 10 {
			t.Fatalf("%s: too many differences", kind)
		}
	}
	return worst
}

func TestParityScan(t *testing.T) {
	t.Parallel()
	res := analyzeLegacy(t, "scan_2f05267d.vision.json", 2480, 3508, 235)
	s, err := entities.Build(entities.Source{ImageID: scanImageID, Width: 2480, Height: 3508, Result: res})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Export()
	want := readExport(t, "scan_2f05267d.expected.json")

	if len(got.Images) != 1 || len(want.Images) != 1 {
		t.Fatalf("%d images, want 1", len(got.Images))
	}
	if g, w := got.Images[0], want.Images[0]; g.ImageID != w.ImageID || g.Width != w.Width || g.Height != w.Height {
		t.Errorf("image %s %d×%d, want %s %d×%d", g.ImageID, g.Width, g.Height, w.ImageID, w.Width, w.Height)
	}
	d := compareEntries(t, "lines", lineEntries(got.Lines), lineEntries(want.Lines), imageTolerance, true)
	d = max(d, compareEntries(t, "words", wordEntries(got.Words), wordEntries(want.Words), imageTolerance, true))
	d = max(d, compareEntries(t, "letters", letterEntries(got.Letters), letterEntries(want.Letters), imageTolerance, true))
	t.Logf("image level: %d lines, %d words, %d letters; largest difference %.2g", len(got.Lines), len(got.Words), len(got.Letters), d)

	if len(got.Receipts) != len(want.Receipts) || len(got.Receipts) != 1 {
		t.Fatalf("%d receipts, want %d", len(got.Receipts), len(want.Receipts))
	}
	g, w := got.Receipts[0], want.Receipts[0]
	if g.ReceiptID != w.ReceiptID || g.ImageID != w.ImageID {
		t.Errorf("receipt %s/%d, want %s/%d", g.ImageID, g.ReceiptID, w.ImageID, w.ReceiptID)
	}
	cd := quadDiff(g.Corners(), w.Corners())
	t.Logf("receipt corners differ by %.4f (tolerance %g); crop %d×%d, old %d×%d", cd, receiptTolerance, g.Width, g.Height, w.Width, w.Height)
	if cd > receiptTolerance {
		t.Errorf("receipt corners differ by %.4f, more than %g:\n got %+v\nwant %+v", cd, receiptTolerance, g.Corners(), w.Corners())
	}
	if rw, rh := relDiff(g.Width, w.Width), relDiff(g.Height, w.Height); rw > receiptTolerance || rh > receiptTolerance {
		t.Errorf("crop %d×%d, old %d×%d: %.1f %% and %.1f %% off", g.Width, g.Height, w.Width, w.Height, 100*rw, 100*rh)
	}
	d = compareEntries(t, "receipt lines", receiptLineEntries(got.ReceiptLines), receiptLineEntries(want.ReceiptLines), receiptTolerance, false)
	d = max(d, compareEntries(t, "receipt words", receiptWordEntries(got.ReceiptWords), receiptWordEntries(want.ReceiptWords), receiptTolerance, false))
	d = max(d, compareEntries(t, "receipt letters", receiptLetterEntries(got.ReceiptLetters), receiptLetterEntries(want.ReceiptLetters), receiptTolerance, false))
	t.Logf("receipt level: %d lines, %d words, %d letters, %d rows; largest difference %.4f", len(got.ReceiptLines),
		len(got.ReceiptWords), len(got.ReceiptLetters), len(got.ReceiptRows), d)
}

func relDiff(a, b int) float64 { return math.Abs(float64(a)-float64(b)) / math.Max(float64(b), 1) }

// The export must use the old field names: every field the old system
// wrote is present, and the only extras are Tally's optional ones.
func TestParityFieldNames(t *testing.T) {
	t.Parallel()
	res := analyzeLegacy(t, "scan_2f05267d.vision.json", 2480, 3508, 235)
	s, err := entities.Build(entities.Source{ImageID: scanImageID, Width: 2480, Height: 3508, RawBucket: "raw", RawKey: "raw/a.png",
		SHA256: "00", Result: res, Crops: []entities.CropInfo{{Bucket: "raw", Key: "raw/a_RECEIPT_00001.png", SHA256: "01"}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Images[0].CDNBucket, s.Images[0].CDNKey = "cdn", "assets/a.png"
	s.Receipts[0].CDNBucket, s.Receipts[0].CDNKey = "cdn", "assets/a_RECEIPT_00001.png"
	ours := fieldNames(t, s.Export())
	old := fieldNames(t, json.RawMessage(readFixture(t, "scan_2f05267d.expected.json")))
	extras := map[string]bool{"image_type": true, "extracted_data": true}
	for _, kind := range []string{"images", "lines", "words", "letters", "receipts", "receipt_lines", "receipt_words", "receipt_letters"} {
		for _, name := range old[kind] {
			if !slices.Contains(ours[kind], name) {
				t.Errorf("%s lack the old field %s", kind, name)
			}
		}
		for _, name := range ours[kind] {
			if !slices.Contains(old[kind], name) && !extras[name] {
				t.Errorf("%s have field %s the old system did not write", kind, name)
			}
		}
	}
}

// fieldNames lists, per array of an export object, the field names its
// elements use.
func fieldNames(t *testing.T, v any) map[string][]string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for kind, arr := range raw {
		var objs []map[string]json.RawMessage
		if json.Unmarshal(arr, &objs) != nil {
			continue
		}
		seen := map[string]bool{}
		for _, o := range objs {
			for name := range o {
				if !seen[name] {
					seen[name] = true
					out[kind] = append(out[kind], name)
				}
			}
		}
		sort.Strings(out[kind])
	}
	return out
}

// The bar receipt photo: the one receipt found matches the old system's.
// Its export stores the receipt's corners with the origin at the TOP-left
// (y down), unlike every line; they are flipped before comparing.
func TestParityBarReceiptPhoto(t *testing.T) {
	t.Parallel()
	var old struct {
		Image    entities.Image     `json:"image"`
		Lines    []entities.Line    `json:"lines"`
		Receipts []entities.Receipt `json:"receipts"`
	}
	if err := json.Unmarshal(readFixture(t, "bar_receipt.export.json"), &old); err != nil {
		t.Fatal(err)
	}
	res := analyzeLegacy(t, "bar_receipt.vision.json", old.Image.Width, old.Image.Height, 128)
	s, err := entities.Build(entities.Source{ImageID: old.Image.ImageID, Width: old.Image.Width, Height: old.Image.Height, Result: res})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Export()
	if im := got.Images[0]; im.ImageType != old.Image.ImageType || im.Width != 3024 || im.Height != 4032 {
		t.Errorf("image %d×%d %s, want 3024×4032 %s", im.Width, im.Height, im.ImageType, old.Image.ImageType)
	}
	d := compareEntries(t, "lines", lineEntries(got.Lines), lineEntries(old.Lines), imageTolerance, true)
	t.Logf("%d lines, largest difference %.2g", len(got.Lines), d)
	if len(got.Receipts) != 1 || len(old.Receipts) != 1 {
		t.Fatalf("%d receipts, want 1", len(got.Receipts))
	}
	g, w := got.Receipts[0], old.Receipts[0]
	flip := func(p ocr.Point) ocr.Point { return ocr.Point{X: p.X, Y: 1 - p.Y} }
	wantCorners := ocr.Quad{TopLeft: flip(w.TopLeft), TopRight: flip(w.TopRight), BottomRight: flip(w.BottomRight), BottomLeft: flip(w.BottomLeft)}
	cd := quadDiff(g.Corners(), wantCorners)
	t.Logf("bar receipt corners differ by %.4f (tolerance %g); crop %d×%d, old %d×%d", cd, photoTolerance, g.Width, g.Height, w.Width, w.Height)
	if cd > photoTolerance {
		t.Errorf("corners differ by %.4f, more than %g:\n got %+v\nwant %+v", cd, photoTolerance, g.Corners(), wantCorners)
	}
	if rw, rh := relDiff(g.Width, w.Width), relDiff(g.Height, w.Height); rw > 0.05 || rh > 0.05 {
		t.Errorf("crop %d×%d, old %d×%d: %.1f %% and %.1f %% off", g.Width, g.Height, w.Width, w.Height, 100*rw, 100*rh)
	}
	if len(got.ReceiptLines) != len(got.Lines) {
		t.Errorf("receipt holds %d of %d lines", len(got.ReceiptLines), len(got.Lines))
	}
}
