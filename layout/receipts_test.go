package layout

import (
	"image"
	"math"
	"slices"
	"testing"

	"github.com/tallyhq/tally/internal/geom"
	"github.com/tallyhq/tally/ocr"
)

// cornerError is the largest per-axis distance (as a fraction of the image
// width or height) between found bounds and true pixel corners.
func cornerError(b ocr.Quad, truth [4]geom.Pt, w, h int) float64 {
	worst := 0.0
	for i, p := range b.Points() {
		t := ocr.FromPixel(truth[i].X, truth[i].Y, w, h)
		worst = math.Max(worst, math.Max(math.Abs(p.X-t.X), math.Abs(p.Y-t.Y)))
	}
	return worst
}

// darkShare is the share of dark pixels in row y between columns x0 and x1.
func darkShare(g *image.Gray, y, x0, x1 int) float64 {
	x0, x1 = max(0, x0), min(g.Rect.Dx(), x1)
	if x1 <= x0 || y < 0 || y >= g.Rect.Dy() {
		return 0
	}
	n := 0
	for x := x0; x < x1; x++ {
		if g.GrayAt(x, y).Y < 128 {
			n++
		}
	}
	return float64(n) / float64(x1-x0)
}

// darkBands counts the runs of rows whose dark share exceeds 10 %: upright
// text lines make one band each.
func darkBands(g *image.Gray) int {
	bands, in := 0, false
	for y := range g.Rect.Dy() {
		on := darkShare(g, y, 0, g.Rect.Dx()) > 0.1
		if on && !in {
			bands++
		}
		in = on
	}
	return bands
}

// rowsOf groups a sheet's bars into text rows (bars sharing v0).
func rowsOf(bars []bar) [][]bar {
	var rows [][]bar
	for _, b := range bars {
		if n := len(rows); n > 0 && rows[n-1][0].v0 == b.v0 {
			rows[n-1] = append(rows[n-1], b)
			continue
		}
		rows = append(rows, []bar{b})
	}
	return rows
}

// checkUpright asserts that a crop of sheet s is the sheet straightened:
// the right aspect ratio, every bar dark across its middle row, the gaps
// between rows clear, one dark band per text row.
func checkUpright(t *testing.T, crop *image.Gray, s sheet) {
	t.Helper()
	W, H := crop.Rect.Dx(), crop.Rect.Dy()
	want := s.width / s.height
	got := float64(W) / float64(H)
	if math.Abs(got/want-1) > 0.04 {
		t.Errorf("crop %d×%d: aspect %.3f, want %.3f (±4 %%)", W, H, got, want)
	}
	rows := rowsOf(s.bars)
	for i, row := range rows {
		for _, b := range row {
			y := int((b.v0 + b.v1) / 2 * float64(H))
			pad := 0.02 * float64(W)
			if d := darkShare(crop, y, int(b.u0*float64(W)+pad), int(b.u1*float64(W)-pad)); d < 0.9 {
				t.Errorf("row %d bar %.2f–%.2f: dark share %.2f on its middle row, want ≥ 0.9", i, b.u0, b.u1, d)
			}
		}
		if i+1 < len(rows) {
			y := int((row[0].v1 + rows[i+1][0].v0) / 2 * float64(H))
			if d := darkShare(crop, y, 0, W); d > 0.02 {
				t.Errorf("gap after row %d: dark share %.2f, want ≤ 0.02", i, d)
			}
		}
	}
	if n := darkBands(crop); n != len(rows) {
		t.Errorf("dark bands in the crop: %d, want %d (one per text row)", n, len(rows))
	}
}

// sameSets compares regions' line indices with the scene's owners.
func checkLines(t *testing.T, regions []Region, owners [][]int) {
	t.Helper()
	if len(regions) != len(owners) {
		t.Fatalf("regions: %d, want %d", len(regions), len(owners))
	}
	for i, r := range regions {
		if !slices.Equal(r.LineIndices, owners[i]) {
			t.Errorf("region %d lines %v, want %v", r.ClusterID, r.LineIndices, owners[i])
		}
		if r.ClusterID != i+1 {
			t.Errorf("region %d has ClusterID %d", i, r.ClusterID)
		}
	}
}

func TestFindReceiptsSynthetic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		scene    scene
		wantType string
		method   string
	}{
		{"photo one receipt", photoScene(900, 1200), ocr.TypePhoto, MethodDBSCAN},
		{"photo two receipts", twoPhotoScene(1200, 900), ocr.TypePhoto, MethodDBSCAN},
		{"scan one receipt", scanScene(), ocr.TypeScan, MethodXAxis},
		{"scan two receipts", twoScanScene(), ocr.TypeScan, MethodXAxis},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := tc.scene.render(t)
			lines, owners := tc.scene.lines(t)
			c := Classify(img, lines)
			if c.ImageType != tc.wantType {
				t.Fatalf("Classify = %s (scan %.2f, photo %.2f), want %s", c.ImageType, c.ScanDistance, c.PhotoDistance, tc.wantType)
			}
			regions, cl := FindReceipts(img, lines, c)
			if cl.Method != tc.method || cl.Clusters != len(regions) || len(cl.Noise) != 0 {
				t.Errorf("clustering %+v, want method %s, %d clusters, no noise", cl, tc.method, len(regions))
			}
			checkLines(t, regions, owners)
			for i, r := range regions {
				s := tc.scene.sheets[i]
				if !r.FromPaper {
					t.Errorf("region %d: corners not from the paper", r.ClusterID)
				}
				if e := cornerError(r.Bounds, s.corners, img.Rect.Dx(), img.Rect.Dy()); e > 0.02 {
					t.Errorf("region %d: corners %+v off by %.4f of the image, want ≤ 0.02 (truth %v)", r.ClusterID, r.Bounds, e, s.corners)
				} else {
					t.Logf("region %d: corner error %.4f of the image", r.ClusterID, e)
				}
				crop, tr, err := Rectify(img, r, c.ImageType)
				if err != nil {
					t.Fatalf("Rectify region %d: %v", r.ClusterID, err)
				}
				wantKind := map[string]string{ocr.TypePhoto: KindPerspective, ocr.TypeScan: KindAffine}[tc.wantType]
				if tr.Kind != wantKind || tr.Width != crop.Rect.Dx() || tr.Height != crop.Rect.Dy() {
					t.Errorf("transform %s %d×%d for crop %v, want kind %s", tr.Kind, tr.Width, tr.Height, crop.Rect, wantKind)
				}
				checkUpright(t, crop, s)
				// The crop's corners map back onto the receipt's bounds.
				for j, p := range []ocr.Point{{X: 0, Y: 1}, {X: 1, Y: 1}, {X: 1, Y: 0}, {X: 0, Y: 0}} {
					got, want := tr.ToImage(p), r.Bounds.Points()[j]
					if math.Abs(got.X-want.X) > 1e-6 || math.Abs(got.Y-want.Y) > 1e-6 {
						t.Errorf("crop corner %d maps to %+v, want %+v", j, got, want)
					}
				}
			}
		})
	}
}

func TestFindReceiptsNative(t *testing.T) {
	t.Parallel()
	sc := nativeScene()
	img := sc.render(t)
	lines, owners := sc.lines(t)
	c := Classify(img, lines)
	if c.ImageType != ocr.TypeNative {
		t.Fatalf("Classify = %s with margins %+v, want NATIVE", c.ImageType, c.Margins)
	}
	regions, cl := FindReceipts(img, lines, c)
	if cl.Method != MethodSingle || cl.Clusters != 1 {
		t.Errorf("clustering %+v", cl)
	}
	checkLines(t, regions, owners)
	if regions[0].Bounds != wholeImage() {
		t.Errorf("bounds %+v, want the whole image", regions[0].Bounds)
	}
	crop, tr, err := Rectify(img, regions[0], c.ImageType)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Kind != KindCrop || !slices.Equal(crop.Pix, img.Pix) || crop.Rect != img.Rect {
		t.Errorf("native crop %v kind %s differs from the image %v", crop.Rect, tr.Kind, img.Rect)
	}
}

// TestPhotoPaperNotSeparable: a receipt on a white table cannot be told
// from its background, so corners come from the lines (plus a margin).
func TestPhotoPaperNotSeparable(t *testing.T) {
	t.Parallel()
	sc := photoScene(600, 800)
	sc.background = flatBackground(240)
	img := sc.render(t)
	lines, owners := sc.lines(t)
	regions, _ := FindReceipts(img, lines, ocr.Classification{ImageType: ocr.TypePhoto})
	checkLines(t, regions, owners)
	r := regions[0]
	if r.FromPaper {
		t.Errorf("corners claimed from paper on a white table")
	}
	// Every line corner lies inside the bounds.
	var poly []geom.Pt
	for _, p := range r.Bounds.Points() {
		x, y := p.Pixel(600, 800)
		poly = append(poly, geom.Pt{X: x, Y: y})
	}
	for _, l := range lines {
		for _, p := range l.Quad().Points() {
			x, y := p.Pixel(600, 800)
			if !geom.InsideConvex(poly, geom.Pt{X: x, Y: y}) {
				t.Fatalf("line corner (%.0f, %.0f) outside bounds %v", x, y, poly)
			}
		}
	}
}

// TestTouchingReceipts: two receipts whose sheets touch make one bright blob;
// neither may take that blob's outline as its own.
func TestTouchingReceipts(t *testing.T) {
	t.Parallel()
	w, h := 1000, 800
	a := newSheet(330, 400, 300, 600, 0, 0, 12, 51)
	b := newSheet(630, 400, 300, 600, 0, 0, 12, 52)
	// Keep the text of the two receipts well apart so DBSCAN splits them.
	for i := range a.bars {
		a.bars[i].u1 = math.Min(a.bars[i].u1, 0.5)
		b.bars[i].u0 = math.Max(b.bars[i].u0, 0.6)
		if b.bars[i].u0 >= b.bars[i].u1 {
			b.bars[i].u0 = b.bars[i].u1 - 0.1
		}
	}
	sc := scene{w: w, h: h, background: tableBackground(9), sheets: []sheet{a, b}}
	img := sc.render(t)
	lines, owners := sc.lines(t)
	regions, _ := FindReceipts(img, lines, ocr.Classification{ImageType: ocr.TypePhoto})
	checkLines(t, regions, owners)
	for _, r := range regions {
		if r.FromPaper {
			t.Errorf("region %d took the shared sheet's outline", r.ClusterID)
		}
	}
}

// TestStrayLineJoinsSheet: a line far from the others but on the same paper
// belongs to that receipt, not to noise.
func TestStrayLineJoinsSheet(t *testing.T) {
	t.Parallel()
	sc := photoScene(900, 1200)
	s := &sc.sheets[0]
	s.bars = s.bars[:8] // text in the top half only
	s.bars = append(s.bars, bar{0.3, 0.93, 0.7, 0.96})
	img := sc.render(t)
	lines, owners := sc.lines(t)
	regions, cl := FindReceipts(img, lines, ocr.Classification{ImageType: ocr.TypePhoto})
	checkLines(t, regions, owners)
	if len(cl.Noise) != 0 {
		t.Errorf("noise %v, want none", cl.Noise)
	}
	// The same line on a blank image (no paper to join) is noise.
	blank := image.NewGray(img.Rect)
	_, cl = FindReceipts(blank, lines, ocr.Classification{ImageType: ocr.TypePhoto})
	if want := []int{len(lines) - 1}; !slices.Equal(cl.Noise, want) {
		t.Errorf("noise on a blank image %v, want %v", cl.Noise, want)
	}
}

func TestFindReceiptsDegenerate(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	line := func(x0, y0, x1, y1 float64) ocr.Line {
		q := ocr.Quad{TopLeft: ocr.Point{X: x0, Y: y1}, TopRight: ocr.Point{X: x1, Y: y1}, BottomRight: ocr.Point{X: x1, Y: y0}, BottomLeft: ocr.Point{X: x0, Y: y0}}
		return ocr.Line{Text: "x", Geometry: ocr.NewGeometry(q, 1)}
	}
	gray := func(w, h int) *image.Gray {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = 128
		}
		return g
	}
	types := []string{ocr.TypePhoto, ocr.TypeScan, ocr.TypeNative, "OTHER"}
	tests := []struct {
		name        string
		img         *image.Gray
		lines       []ocr.Line
		wantRegions int
		wantNoise   []int
	}{
		{"no lines", gray(100, 100), nil, 0, nil},
		{"nil image", nil, []ocr.Line{line(0.1, 0.1, 0.5, 0.2)}, 0, []int{0}},
		{"1×1 image", gray(1, 1), []ocr.Line{line(0.1, 0.1, 0.5, 0.2), line(0.1, 0.3, 0.5, 0.4)}, 1, nil},
		{"NaN line", gray(100, 100), []ocr.Line{line(nan, 0.1, 0.5, 0.2), line(0.1, 0.3, 0.5, 0.4)}, 1, []int{0}},
		{"only NaN", gray(100, 100), []ocr.Line{line(nan, nan, nan, nan)}, 0, []int{0}},
		{"outside the image", gray(200, 100), []ocr.Line{line(-0.5, -2, 1.5, -1), line(1.2, 1.1, 3, 4)}, 1, nil},
		{"zero-size lines", gray(100, 100), []ocr.Line{line(0.5, 0.5, 0.5, 0.5), line(0.5, 0.5, 0.5, 0.5)}, 1, nil},
		{"single line", gray(300, 300), []ocr.Line{line(0.2, 0.2, 0.6, 0.25)}, 1, nil},
		{"sub-image", gray(300, 300).SubImage(image.Rect(50, 50, 250, 250)).(*image.Gray), []ocr.Line{line(0.2, 0.2, 0.6, 0.25)}, 1, nil},
	}
	for _, tc := range tests {
		for _, typ := range types {
			t.Run(tc.name+"/"+typ, func(t *testing.T) {
				t.Parallel()
				c := Classify(tc.img, tc.lines)
				c.ImageType = typ
				regions, cl := FindReceipts(tc.img, tc.lines, c)
				if len(regions) != tc.wantRegions || cl.Clusters != len(regions) {
					t.Fatalf("%d regions (clustering %+v), want %d", len(regions), cl, tc.wantRegions)
				}
				if !slices.Equal(cl.Noise, tc.wantNoise) {
					t.Errorf("noise %v, want %v", cl.Noise, tc.wantNoise)
				}
				for _, r := range regions {
					for _, p := range r.Bounds.Points() {
						if p.X < 0 || p.X > 1 || p.Y < 0 || p.Y > 1 || math.IsNaN(p.X+p.Y) {
							t.Errorf("bounds %+v leave the image", r.Bounds)
						}
					}
					// Rectify answers (a crop or ErrDegenerate), never panics.
					if _, _, err := Rectify(tc.img, r, typ); err != nil && tc.img != nil && tc.img.Rect.Dx() > 1 {
						t.Errorf("Rectify: %v", err)
					}
				}
			})
		}
	}
}

// FuzzFindReceipts feeds arbitrary line corners through the whole stage.
func FuzzFindReceipts(f *testing.F) {
	f.Add(0.1, 0.9, 0.5, 0.85, 0.2, 0.5, 0.6, 0.45, uint8(0))
	f.Add(0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, uint8(1))
	f.Add(-1.0, 2.0, 3.0, -4.0, 1e308, -1e308, 0.0, 1.0, uint8(2))
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	f.Fuzz(func(t *testing.T, x0, y0, x1, y1, x2, y2, x3, y3 float64, kind uint8) {
		q := ocr.Quad{TopLeft: ocr.Point{X: x0, Y: y0}, TopRight: ocr.Point{X: x1, Y: y1}, BottomRight: ocr.Point{X: x2, Y: y2}, BottomLeft: ocr.Point{X: x3, Y: y3}}
		l := ocr.Line{Text: "x", Geometry: ocr.NewGeometry(q, 1)}
		lines := []ocr.Line{l, l, {Text: "y", Geometry: ocr.NewGeometry(wholeImage(), 1)}}
		typ := []string{ocr.TypePhoto, ocr.TypeScan, ocr.TypeNative}[int(kind)%3]
		c := Classify(img, lines)
		c.ImageType = typ
		regions, _ := FindReceipts(img, lines, c)
		for _, r := range regions {
			_, _, _ = Rectify(img, r, typ)
		}
		_, _, _ = Rectify(img, Region{Bounds: q}, typ)
	})
}
