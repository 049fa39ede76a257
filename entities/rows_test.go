package entities_test

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/ocr"
)

// twoColumnReceipt lays out a receipt (w×h pixels) whose printed rows are
// an item name on the left and a price on the right (and a centred header,
// a three-part row, a centred footer), rows pitch pixels apart with lines
// lineHeight tall, the whole receipt turned tilt degrees about its centre.
// The lines come in a scrambled order, as OCR engines may give them; it
// returns them and the expected rows (texts left to right).
func twoColumnReceipt(w, h int, tilt, lineHeight, pitch float64) ([]entities.ReceiptLine, [][]string) {
	type part struct {
		text   string
		cx, wd float64
	}
	printed := [][]part{
		{{"CORNER STORE", 300, 240}},
		{{"BREAD", 110, 120}, {"2.99", 520, 80}},
		{{"MILK 2%", 130, 160}, {"3.49", 520, 80}},
		{{"QTY 2", 90, 100}, {"EGGS", 260, 80}, {"3.00", 520, 80}},
		{{"SUBTOTAL", 140, 180}, {"9.48", 520, 80}},
		{{"TAX", 70, 60}, {"0.52", 520, 80}},
		{{"TOTAL", 90, 100}, {"10.00", 510, 100}},
		{{"THANK YOU", 300, 180}},
	}
	rad := tilt * math.Pi / 180
	ox, oy := float64(w)/2, float64(h)/2
	var all []ocr.Line
	var want [][]string
	for r, row := range printed {
		y := float64(h) - 100 - float64(r)*pitch // y up: the first row on top
		var texts []string
		for _, p := range row {
			dx, dy := p.cx-ox, y-oy
			cx, cy := ox+dx*math.Cos(rad)-dy*math.Sin(rad), oy+dx*math.Sin(rad)+dy*math.Cos(rad)
			all = append(all, textLine(p.text, cx, cy, p.wd, lineHeight, tilt, w, h))
			texts = append(texts, p.text)
		}
		want = append(want, texts)
	}
	// Scramble: every third line first, then the rest.
	var order []int
	for start := range 3 {
		for i := start; i < len(all); i += 3 {
			order = append(order, i)
		}
	}
	lines := make([]entities.ReceiptLine, len(all))
	for id, i := range order {
		lines[id] = entities.ReceiptLine{ImageID: testImageID, ReceiptID: 1, LineID: id + 1, Text: all[i].Text, Geometry: all[i].Geometry}
	}
	return lines, want
}

func TestGroupRowsTwoColumns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tilt, height, pitch float64
	}{
		{0, 24, 40},
		{2.5, 24, 40},  // left and right ends of a row ~18 px apart: more than half a line
		{-2.5, 24, 40}, // the other way
		{1, 30, 36},    // rows barely more than a line apart
		{-4, 20, 44},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("tilt %g height %g pitch %g", tt.tilt, tt.height, tt.pitch), func(t *testing.T) {
			t.Parallel()
			const w, h = 600, 1200
			lines, want := twoColumnReceipt(w, h, tt.tilt, tt.height, tt.pitch)
			rows := entities.GroupRows(lines, w, h)
			var got [][]string
			for i, row := range rows {
				if row.RowID != i+1 || row.ReceiptID != 1 || row.ImageID != testImageID || row.GroupingVersion != entities.GroupingVersion {
					t.Errorf("row %d: %+v", i, row)
				}
				var texts []string
				for _, id := range row.LineIDs {
					texts = append(texts, lines[id-1].Text)
				}
				if row.Text != strings.Join(texts, " ") {
					t.Errorf("row %d text %q, lines %q", row.RowID, row.Text, texts)
				}
				got = append(got, texts)
				for _, id := range row.LineIDs {
					if !contains(row.BoundingBox, lines[id-1].BoundingBox) {
						t.Errorf("row %d box %+v does not hold line %d's %+v", row.RowID, row.BoundingBox, id, lines[id-1].BoundingBox)
					}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rows\n got %q\nwant %q", got, want)
			}
		})
	}
}

func contains(outer, inner ocr.BoundingBox) bool {
	const eps = 1e-12
	return outer.X <= inner.X+eps && outer.Y <= inner.Y+eps &&
		outer.X+outer.Width >= inner.X+inner.Width-eps && outer.Y+outer.Height >= inner.Y+inner.Height-eps
}

func TestGroupRowsDegenerate(t *testing.T) {
	t.Parallel()
	if rows := entities.GroupRows(nil, 100, 100); len(rows) != 0 {
		t.Errorf("no lines gave %d rows", len(rows))
	}
	point := ocr.NewGeometry(ocr.Quad{}, 1) // every corner at the origin
	lines := []entities.ReceiptLine{{LineID: 1, Text: "a", Geometry: point}, {LineID: 2, Text: "b", Geometry: point}}
	for _, size := range [][2]int{{0, 0}, {-5, 10}, {100, 100}} {
		rows := entities.GroupRows(lines, size[0], size[1])
		n := 0
		for _, r := range rows {
			n += len(r.LineIDs)
		}
		if n != 2 {
			t.Errorf("size %v: rows %+v lose or repeat lines", size, rows)
		}
	}
}

// On the real scan, rows join what the old receipt printed on one row.
func TestGroupRowsScanFixture(t *testing.T) {
	t.Parallel()
	res := analyzeLegacy(t, "scan_2f05267d.vision.json", 2480, 3508, 235)
	s, err := entities.Build(entities.Source{ImageID: scanImageID, Width: 2480, Height: 3508, Result: res})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	seen := map[int]bool{}
	for _, row := range s.ReceiptRows {
		texts = append(texts, row.Text)
		for _, id := range row.LineIDs {
			if seen[id] {
				t.Errorf("line %d in two rows", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != len(s.ReceiptLines) {
		t.Errorf("rows hold %d of %d lines", len(seen), len(s.ReceiptLines))
	}
	for _, want := range []string{"VONS", "TAX 0.00", "**** BALANCE 3.60", "PAYMENT AMOUNT 3.60", "Mastercard 3.60", "CHANGE 0.00"} {
		if !slices.Contains(texts, want) {
			t.Errorf("no row %q in %q", want, texts)
		}
	}
	if texts[0] != "VONS" {
		t.Errorf("first row %q, want the header VONS", texts[0])
	}
}
