package layout

import (
	"testing"
)

// BenchmarkClassifyAndFind runs the whole geometry of one 3024×4032 phone
// photo (one receipt on a table): classification, clustering, paper corners.
func BenchmarkClassifyAndFind(b *testing.B) {
	sc := photoScene(3024, 4032)
	img := sc.render(b)
	lines, _ := sc.lines(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c := Classify(img, lines)
		regions, _ := FindReceipts(img, lines, c)
		if len(regions) != 1 || !regions[0].FromPaper {
			b.Fatalf("regions %+v", regions)
		}
	}
}

// BenchmarkRectify warps the receipt of a 3024×4032 photo into its upright
// crop (about 1200×2800 pixels).
func BenchmarkRectify(b *testing.B) {
	sc := photoScene(3024, 4032)
	img := sc.render(b)
	lines, _ := sc.lines(b)
	c := Classify(img, lines)
	regions, _ := FindReceipts(img, lines, c)
	if len(regions) != 1 {
		b.Fatalf("regions %+v", regions)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := Rectify(img, regions[0], c.ImageType); err != nil {
			b.Fatal(err)
		}
	}
}
