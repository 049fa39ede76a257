package tesseract

import (
	"context"
	"image"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"

	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/sroie"
)

// evalEnv switches on TestEvalSROIE, which measured the defaults. It runs
// tesseract 30 × 12 times (minutes on two cores), so it is off by default.
const evalEnv = "TALLY_TESSERACT_EVAL"

// evalConfig is one setting TestEvalSROIE measures; scale > 1 enlarges the
// image first, to see whether small scans read better bigger.
type evalConfig struct{ psm, dpi, scale int }

// TestEvalSROIE reports, for each page segmentation mode and DPI, the
// character error rate of the text in reading order against the SROIE
// transcripts (which list each row left to right, top to bottom, in
// capitals; the comparison ignores case), the F1 of the bag of words, and
// how many receipts' printed totals appear in the text.
//
//	TALLY_TESSERACT_EVAL=1 go test -run EvalSROIE -v -timeout 30m ./ocr/tesseract
func TestEvalSROIE(t *testing.T) {
	if os.Getenv(evalEnv) == "" {
		t.Skipf("set %s=1 to measure CER on SROIE", evalEnv)
	}
	rs, err := sroie.Load(fixtures.Path(t, "sroie"))
	if err != nil {
		t.Fatal(err)
	}
	var receipts []evalReceipt
	for _, r := range rs {
		receipts = append(receipts, evalReceipt{fixtures.DecodeImage(t, r.ImagePath), strings.Join(r.Lines, " "), r.Key.Total})
	}
	var configs []evalConfig
	for _, psm := range []int{3, 4, 6} {
		for _, dpi := range []int{0, 150, 300} {
			configs = append(configs, evalConfig{psm, dpi, 1})
		}
		configs = append(configs, evalConfig{psm, 0, 2})
	}
	for _, c := range configs {
		start := time.Now()
		s := evaluate(t, c, receipts)
		t.Logf("psm %d dpi %3d scale %d: CER %.3f  word F1 %.3f  totals %d/%d  (%.2f s/receipt on 2 workers)",
			c.psm, c.dpi, c.scale, float64(s.errChars)/float64(s.truthChars), s.f1Sum/float64(len(receipts)),
			s.totals, len(receipts), time.Since(start).Seconds()/float64(len(receipts)))
	}
}

type evalReceipt struct {
	img   image.Image
	truth string
	total string
}

type evalScore struct {
	errChars, truthChars, totals int
	f1Sum                        float64
}

// evaluate recognizes every receipt with c on two workers.
func evaluate(t *testing.T, c evalConfig, receipts []evalReceipt) evalScore {
	e := newEngine(t, Options{PSM: c.psm, DPI: c.dpi})
	var (
		mu    sync.Mutex
		score evalScore
		wg    sync.WaitGroup
		work  = make(chan evalReceipt)
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				img := r.img
				if c.scale > 1 {
					img = upscale(img, c.scale)
				}
				lines, err := e.Recognize(context.Background(), img)
				if err != nil {
					t.Error(err)
					continue
				}
				var texts []string
				for _, l := range lines {
					texts = append(texts, l.Text)
				}
				// SROIE transcribes everything in capitals.
				got := strings.ToUpper(strings.Join(texts, " "))
				mu.Lock()
				score.errChars += sroie.EditDistance([]rune(got), []rune(r.truth))
				score.truthChars += len([]rune(r.truth))
				score.f1Sum += bagF1(strings.Fields(got), strings.Fields(r.truth))
				if strings.Contains(got, r.total) {
					score.totals++
				}
				mu.Unlock()
			}
		}()
	}
	for _, r := range receipts {
		work <- r
	}
	close(work)
	wg.Wait()
	return score
}

// bagF1 is the F1 of the multiset of words got against want.
func bagF1(got, want []string) float64 {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	match := 0
	for _, w := range got {
		if count[w] > 0 {
			count[w]--
			match++
		}
	}
	if match == 0 {
		return 0
	}
	p, r := float64(match)/float64(len(got)), float64(match)/float64(len(want))
	return 2 * p * r / (p + r)
}

// upscale enlarges img by factor with Catmull-Rom, to see whether small
// scans read better bigger.
func upscale(img image.Image, factor int) image.Image {
	b := img.Bounds()
	dst := image.NewGray(image.Rect(0, 0, b.Dx()*factor, b.Dy()*factor))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, b, xdraw.Src, nil)
	return dst
}
