// Package paddle is an ocr.Engine that runs PaddleOCR's PP-OCRv4 models on
// ONNX Runtime: DB text detection, an optional angle classifier, and CTC
// recognition, with PaddleOCR's own pre- and post-processing.
//
// It reads receipts far better than Tesseract (the SROIE benchmark in
// BENCHMARKS.md), at more CPU per image. Lines come from the detector's
// boxes; letters from the recognizer's CTC time steps, so each has its own
// place along the line; words split at the spaces the model emits and,
// because the Chinese+English recognizer often emits none between English
// words, at unusually wide gaps between letters.
//
// Everything the engine needs sits in one directory (Options.Dir) that
// `make deps-ocr` fills: ONNX Runtime's CPU library and the models. Nothing is
// downloaded at run time.
package paddle

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/imaging"
	"github.com/tallyhq/tally/internal/geom"
	"github.com/tallyhq/tally/internal/onnxrt"
	"github.com/tallyhq/tally/ocr"
)

// The files of a model directory, as `make deps-ocr` installs them.
const (
	LibraryFile    = "libonnxruntime.so.1"
	DetectorFile   = "ch_PP-OCRv4_det_infer.onnx"
	RecognizerFile = "ch_PP-OCRv4_rec_infer.onnx"
	ClassifierFile = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
	DictionaryFile = "ppocr_keys_v1.txt"
)

// ErrEmptyImage marks an image with no pixels: the caller's input is wrong,
// not the engine.
var ErrEmptyImage = errors.New("paddle: empty image")

// Defaults, chosen on SROIE receipts 000–029 (TestEvalSROIE; the numbers
// are in BENCHMARKS.md).
const (
	// DefaultDetMaxSide bounds the detector input's longer side, as
	// PaddleOCR's det_limit_side_len. 960 read best: segment CER 0.057
	// against 0.062 at 1280, 0.069 at 736 and 0.067 at full size, and the
	// detector costs 0.15 s per image against 1.2 s at full size.
	DefaultDetMaxSide = 960
	// DefaultDetMaxPixels bounds the detector input's area too, so a
	// very wide or tall image is scaled down rather than filling memory.
	DefaultDetMaxPixels = 2_000_000
	// DefaultRecBatch is how many line crops one recognizer run reads.
	// One at a time was fastest (1.1 s per image against 1.5 s in
	// batches of 4 and 2.3 s in batches of 16, sorted by width): the
	// recognizer's attention costs more than linearly in the padded width.
	DefaultRecBatch = 1
	// DefaultWordGap splits words where the model emitted no space but
	// the paper between two letters is blank for this many character
	// pitches: 0.45 found 19 of the 22 company names read (spaces aside)
	// with their spaces, against 9 without the split, with the lowest
	// segment CER (0.055) and no total or date lost; 0.35 split too much.
	DefaultWordGap = 0.45
)

// Options configure the engine. Dir is required; the rest have defaults.
type Options struct {
	// Dir holds the models and, unless Library is set, the library.
	Dir string
	// Library is the ONNX Runtime shared library; default Dir/LibraryFile.
	Library string
	// Threads is ONNX Runtime's threads per image; 0 means 1, which gives
	// the best throughput when each core reads its own image.
	Threads int
	// AngleClassifier turns upside-down lines before reading them.
	AngleClassifier bool
	// DetMaxSide and DetMaxPixels bound the detector's input (0: default;
	// negative: no bound).
	DetMaxSide, DetMaxPixels int
	// RecBatch is the number of line crops per recognizer run (0: default).
	RecBatch int
	// RecMinWidth pads every recognizer batch to at least this width, as
	// PaddleOCR does with 320 (0: no padding beyond the widest crop).
	RecMinWidth int
	// Arena keeps ONNX Runtime's CPU memory arena on (faster when shapes
	// repeat, but it holds on to the largest input's memory).
	Arena bool
	// WordGap is the blank gap, in character pitches, that splits words
	// where no space was read (0: default; negative: split at spaces only).
	WordGap float64
}

// Engine is the PaddleOCR engine. It is safe for concurrent use: ONNX
// Runtime sessions run concurrently.
type Engine struct {
	opts      Options
	name      string
	det, rec  *onnxrt.Session
	cls       *onnxrt.Session
	dict      []string // class index → text: blank, the dictionary, space
	detNanos  atomic.Int64
	clsNanos  atomic.Int64
	recNanos  atomic.Int64
	images    atomic.Int64
	lineCount atomic.Int64
}

var _ ocr.Engine = (*Engine)(nil)

// Check reports whether dir holds every file the engine needs, without
// loading anything: how `-ocr-engine auto` decides.
func Check(dir string, classifier bool) error {
	if dir == "" {
		return fmt.Errorf("%w: paddle: no model directory", ocr.ErrEngine)
	}
	files := []string{LibraryFile, DetectorFile, RecognizerFile, DictionaryFile}
	if classifier {
		files = append(files, ClassifierFile)
	}
	var missing []string
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: paddle: %s lacks %s (run `make deps-ocr`)", ocr.ErrEngine, dir, strings.Join(missing, ", "))
	}
	return nil
}

// New loads the library and models and runs each model once on a blank
// input, so that a missing, corrupt or mismatched file fails at start-up
// rather than on the first receipt. Failures wrap ocr.ErrEngine.
func New(opts Options) (*Engine, error) {
	if opts.Library == "" {
		if err := Check(opts.Dir, opts.AngleClassifier); err != nil {
			return nil, err
		}
		opts.Library = filepath.Join(opts.Dir, LibraryFile)
	}
	switch {
	case opts.DetMaxSide == 0:
		opts.DetMaxSide = DefaultDetMaxSide
	case opts.DetMaxSide < 0:
		opts.DetMaxSide = 0
	}
	switch {
	case opts.DetMaxPixels == 0:
		opts.DetMaxPixels = DefaultDetMaxPixels
	case opts.DetMaxPixels < 0:
		opts.DetMaxPixels = 0
	}
	if opts.RecBatch <= 0 {
		opts.RecBatch = DefaultRecBatch
	}
	switch {
	case opts.WordGap == 0:
		opts.WordGap = DefaultWordGap
	case opts.WordGap < 0:
		opts.WordGap = 0
	}
	rt, err := onnxrt.Load(opts.Library)
	if err != nil {
		return nil, fmt.Errorf("%w: paddle: %w", ocr.ErrEngine, err)
	}
	e := &Engine{opts: opts, name: "paddleocr PP-OCRv4 (onnxruntime " + rt.Version() + ")"}
	if e.dict, err = readDictionary(filepath.Join(opts.Dir, DictionaryFile)); err != nil {
		return nil, err
	}
	so := onnxrt.SessionOptions{Threads: opts.Threads, NoArena: !opts.Arena}
	open := func(file string) (*onnxrt.Session, error) {
		s, err := rt.NewSession(filepath.Join(opts.Dir, file), so)
		if err != nil {
			return nil, fmt.Errorf("%w: paddle: %w", ocr.ErrEngine, err)
		}
		return s, nil
	}
	if e.det, err = open(DetectorFile); err != nil {
		return nil, err
	}
	if e.rec, err = open(RecognizerFile); err != nil {
		e.Close()
		return nil, err
	}
	if opts.AngleClassifier {
		if e.cls, err = open(ClassifierFile); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.selfTest(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// readDictionary reads the recognizer's characters, one per line, and adds
// CTC's blank before them and the space after them, as PaddleOCR does.
func readDictionary(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: paddle: dictionary: %v", ocr.ErrEngine, err)
	}
	defer f.Close()
	dict := []string{""}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dict = append(dict, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: paddle: dictionary %s: %v", ocr.ErrEngine, path, err)
	}
	if len(dict) < 2 {
		return nil, fmt.Errorf("%w: paddle: dictionary %s is empty", ocr.ErrEngine, path)
	}
	return append(dict, " "), nil
}

// selfTest runs each model on a blank input and checks the output shapes
// against what the post-processing assumes.
func (e *Engine) selfTest() error {
	out, err := e.det.Run(detInput(image.NewGray(image.Rect(0, 0, 32, 32)), 32, 32))
	if err != nil {
		return fmt.Errorf("%w: paddle: detector: %v", ocr.ErrEngine, err)
	}
	if !slices.Equal(out.Shape, []int64{1, 1, 32, 32}) {
		return fmt.Errorf("%w: paddle: detector gives shape %v for a 32×32 input, want [1 1 32 32] (not a DB text detector?)", ocr.ErrEngine, out.Shape)
	}
	in := onnxrt.Tensor{Shape: []int64{1, 3, recHeight, recMinWidth}, Data: make([]float32, 3*recHeight*recMinWidth)}
	out, err = e.rec.Run(in)
	if err != nil {
		return fmt.Errorf("%w: paddle: recognizer: %v", ocr.ErrEngine, err)
	}
	if len(out.Shape) != 3 || out.Shape[0] != 1 || out.Shape[2] != int64(len(e.dict)) {
		return fmt.Errorf("%w: paddle: recognizer gives shape %v, want [1 T %d] for a dictionary of %d characters",
			ocr.ErrEngine, out.Shape, len(e.dict), len(e.dict)-2)
	}
	if e.cls != nil {
		in := onnxrt.Tensor{Shape: []int64{1, 3, recHeight, clsWidth}, Data: make([]float32, 3*recHeight*clsWidth)}
		out, err = e.cls.Run(in)
		if err != nil {
			return fmt.Errorf("%w: paddle: angle classifier: %v", ocr.ErrEngine, err)
		}
		if !slices.Equal(out.Shape, []int64{1, 2}) {
			return fmt.Errorf("%w: paddle: angle classifier gives shape %v, want [1 2]", ocr.ErrEngine, out.Shape)
		}
	}
	return nil
}

// Name identifies the models and the runtime.
func (e *Engine) Name() string { return e.name }

// Close releases the sessions. The engine must not be used afterwards.
func (e *Engine) Close() {
	for _, s := range []*onnxrt.Session{e.det, e.rec, e.cls} {
		if s != nil {
			s.Close()
		}
	}
}

// StageTimes is where the engine's time went, summed over every image.
type StageTimes struct {
	Images, Lines               int64
	Detect, Classify, Recognize time.Duration
}

// Times returns the time spent in each stage so far.
func (e *Engine) Times() StageTimes {
	return StageTimes{
		Images: e.images.Load(), Lines: e.lineCount.Load(),
		Detect: time.Duration(e.detNanos.Load()), Classify: time.Duration(e.clsNanos.Load()),
		Recognize: time.Duration(e.recNanos.Load()),
	}
}

// Recognize detects the text boxes of img, reads each, and returns them as
// lines in reading order with their words and letters, in img's normalized
// coordinates. A failure of ONNX Runtime wraps ocr.ErrEngine; an image
// without pixels is ErrEmptyImage; an image without text gives no lines.
func (e *Engine) Recognize(ctx context.Context, img image.Image) ([]ocr.Line, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrEmptyImage)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: %d×%d pixels", ErrEmptyImage, w, h)
	}
	g, ok := img.(*image.Gray)
	if !ok || b.Min != (image.Point{}) {
		g = imaging.Gray(img)
		g.Rect = g.Rect.Sub(g.Rect.Min)
	}
	e.images.Add(1)

	start := time.Now()
	var found []box
	for _, t := range detTiles(w, h, e.opts.DetMaxSide) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("paddle: %w", err)
		}
		bs, err := e.detect(subGray(g, t.rect))
		if err != nil {
			return nil, err
		}
		found = append(found, t.keep(bs)...)
	}
	sortBoxes(found)
	e.detNanos.Add(int64(time.Since(start)))
	if len(found) == 0 {
		return nil, nil
	}
	crops := make([]crop, len(found))
	for i, bx := range found {
		crops[i] = newCrop(bx)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("paddle: %w", err)
	}
	if e.cls != nil {
		start = time.Now()
		if err := e.classify(g, crops); err != nil {
			return nil, err
		}
		e.clsNanos.Add(int64(time.Since(start)))
	}

	start = time.Now()
	read, err := e.read(ctx, g, crops)
	e.recNanos.Add(int64(time.Since(start)))
	if err != nil {
		return nil, err
	}
	var lines []ocr.Line
	for i, r := range read {
		if r.score < recDropScore {
			continue
		}
		if l, ok := e.line(crops[i], r, w, h); ok {
			lines = append(lines, l)
		}
	}
	e.lineCount.Add(int64(len(lines)))
	return lines, nil
}

// detect finds the text boxes of g, in g's pixels.
func (e *Engine) detect(g *image.Gray) ([]box, error) {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	dw, dh := detSize(w, h, e.opts.DetMaxSide, e.opts.DetMaxPixels)
	out, err := e.det.Run(detInput(g, dw, dh))
	if err != nil {
		return nil, fmt.Errorf("%w: paddle: detect: %w", ocr.ErrEngine, err)
	}
	if !slices.Equal(out.Shape, []int64{1, 1, int64(dh), int64(dw)}) {
		return nil, fmt.Errorf("%w: paddle: detector gave shape %v for a %d×%d input", ocr.ErrEngine, out.Shape, dw, dh)
	}
	return boxes(out.Data, dw, dh, w, h), nil
}

// classify turns the crops the angle classifier reads as upside down.
func (e *Engine) classify(g *image.Gray, crops []crop) error {
	for start := 0; start < len(crops); start += e.opts.RecBatch {
		batch := crops[start:min(start+e.opts.RecBatch, len(crops))]
		in, _ := batchInput(g, batch, clsWidth, clsWidth)
		out, err := e.cls.Run(in)
		if err != nil {
			return fmt.Errorf("%w: paddle: classify: %v", ocr.ErrEngine, err)
		}
		if len(out.Data) != 2*len(batch) {
			return fmt.Errorf("%w: paddle: classifier gave shape %v", ocr.ErrEngine, out.Shape)
		}
		for i := range batch {
			if out.Data[2*i+1] > out.Data[2*i] && out.Data[2*i+1] > clsThreshold {
				batch[i].turn(2)
			}
		}
	}
	return nil
}

// reading is what the recognizer read in one crop.
type reading struct {
	glyphs     []glyph
	score      float64
	frameWidth float64 // one CTC frame, in crop pixels
	recPerCrop float64 // recognizer input pixels per crop pixel
	blank      []bool  // the recognizer input's columns without ink
}

// read recognizes the crops in batches of similar aspect ratio, so that
// little of each batch is padding.
func (e *Engine) read(ctx context.Context, g *image.Gray, crops []crop) ([]reading, error) {
	order := make([]int, len(crops))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ra, rb := crops[a].ratio(), crops[b].ratio()
		switch {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
		return 0
	})
	out := make([]reading, len(crops))
	batch := make([]crop, 0, e.opts.RecBatch)
	for start := 0; start < len(order); start += e.opts.RecBatch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("paddle: %w", err)
		}
		idx := order[start:min(start+e.opts.RecBatch, len(order))]
		batch = batch[:0]
		for _, i := range idx {
			batch = append(batch, crops[i])
		}
		in, widths := batchInput(g, batch, e.opts.RecMinWidth, 0)
		res, err := e.rec.Run(in)
		if err != nil {
			return nil, fmt.Errorf("%w: paddle: recognize: %v", ocr.ErrEngine, err)
		}
		if len(res.Shape) != 3 || res.Shape[0] != int64(len(batch)) || res.Shape[2] != int64(len(e.dict)) {
			return nil, fmt.Errorf("%w: paddle: recognizer gave shape %v for %d crops", ocr.ErrEngine, res.Shape, len(batch))
		}
		frames, classes := int(res.Shape[1]), int(res.Shape[2])
		frameRec := float64(in.Shape[3]) / float64(frames) // input pixels per frame
		for k, i := range idx {
			probs := res.Data[k*frames*classes : (k+1)*frames*classes]
			gl, score := ctcDecode(probs, frames, classes)
			plane := in.Data[k*3*recHeight*int(in.Shape[3]):]
			out[i] = reading{
				glyphs: gl, score: score,
				frameWidth: frameRec * crops[i].w / float64(widths[k]),
				recPerCrop: float64(widths[k]) / crops[i].w,
				blank:      blankColumns(plane, int(in.Shape[3]), widths[k]),
			}
		}
	}
	return out, nil
}

// line turns one reading into a line with words and letters placed along
// the crop. ok is false when nothing but spaces was read.
func (e *Engine) line(c crop, r reading, w, h int) (ocr.Line, bool) {
	placed := placeGlyphs(r.glyphs, e.dict, r.frameWidth, c.w)
	norm := func(p [4]float64) ocr.Quad {
		tl, tr := c.at(p[0], 0), c.at(p[1], 0)
		br, bl := c.at(p[1], c.h), c.at(p[0], c.h)
		return ocr.Quad{TopLeft: toNorm(tl, w, h), TopRight: toNorm(tr, w, h), BottomRight: toNorm(br, w, h), BottomLeft: toNorm(bl, w, h)}
	}
	var words []ocr.Word
	var texts []string
	// A space the model did not emit still shows as paper between two
	// letters: a run of columns without ink, found between the two
	// letters' positions in the CTC alignment, as wide as WordGap pitches.
	split := func(prev, next placedGlyph, pitch float64) bool {
		if e.opts.WordGap <= 0 {
			return false
		}
		run := longestRun(r.blank, int(prev.mid*r.recPerCrop), int(math.Ceil(next.mid*r.recPerCrop)))
		need := e.opts.WordGap * pitch
		if narrow(prev.text) || narrow(next.text) {
			need *= narrowFactor
		}
		return float64(run)/r.recPerCrop >= need
	}
	for _, ws := range splitWords(placed, split) {
		var sb strings.Builder
		var conf float64
		letters := make([]ocr.Letter, 0, len(ws))
		for _, gl := range ws {
			sb.WriteString(gl.text)
			conf += float64(gl.prob)
			letters = append(letters, ocr.Letter{Text: gl.text, Geometry: ocr.NewGeometry(norm([4]float64{gl.left, gl.right}), clamp(float64(gl.prob), 0, 1))})
		}
		text := sb.String()
		words = append(words, ocr.Word{
			Text:     text,
			Geometry: ocr.NewGeometry(norm([4]float64{ws[0].left, ws[len(ws)-1].right}), clamp(conf/float64(len(ws)), 0, 1)),
			Letters:  letters,
		})
		texts = append(texts, text)
	}
	if len(words) == 0 {
		return ocr.Line{}, false
	}
	q := ocr.Quad{TopLeft: toNorm(c.box[0], w, h), TopRight: toNorm(c.box[1], w, h), BottomRight: toNorm(c.box[2], w, h), BottomLeft: toNorm(c.box[3], w, h)}
	return ocr.Line{Text: strings.Join(texts, " "), Geometry: ocr.NewGeometry(q, clamp(r.score, 0, 1)), Words: words}, true
}

// toNorm converts a source pixel position to normalized coordinates, inside
// the image.
func toNorm(p geom.Pt, w, h int) ocr.Point {
	n := ocr.FromPixel(p.X, p.Y, w, h)
	return ocr.Point{X: clamp(n.X, 0, 1), Y: clamp(n.Y, 0, 1)}
}

// narrowFactor is how much wider a blank must be to split words beside a
// narrow glyph: in the fixed-pitch fonts of receipts a "1" or a "." sits in
// a full character cell, so the paper beside it is wide without a space.
const narrowFactor = 2

// narrow reports glyphs much narrower than their character cell.
func narrow(s string) bool { return len(s) == 1 && strings.Contains(".,:;'`!|1Iil/-()[]{}*", s) }
