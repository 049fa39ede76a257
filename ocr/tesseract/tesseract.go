// Package tesseract is the built-in ocr.Engine: it runs the tesseract
// command-line program and reads its hOCR output.
//
// It drives the tesseract CLI rather than linking libtesseract through cgo, so
// every Tally binary, including the Lambda build, stays CGO_ENABLED=0 and
// static; the tesseract binary is found on PATH or at Options.Binary. A Lambda
// deployment that runs OCR therefore has to ship, in a layer or a container
// image, the tesseract binary, the shared libraries it links (libtesseract,
// liblept and their image and OpenMP dependencies; Lambda puts /opt/lib on
// LD_LIBRARY_PATH) and the tessdata directory with the .traineddata of every
// language used (Options.TessdataDir, or TESSDATA_PREFIX). No temporary files
// are written: the image goes to tesseract's stdin as PGM and hOCR comes back
// on its stdout.
package tesseract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/ocr"
)

// ErrEmptyImage marks an image with no pixels: there is nothing to run
// tesseract on, and it is the caller's input, not the engine, that is wrong.
var ErrEmptyImage = errors.New("tesseract: empty image")

// Defaults. DefaultPSM was chosen on the 30 SROIE receipts (TestEvalSROIE):
// PSM 6, one uniform block of text, found the printed total on 21 of them
// against 16 for PSM 4 and 17 for PSM 3 (no --dpi), with the lowest
// character error rate at that setting (0.260 against 0.266 and 0.272), and
// its output does not depend on --dpi. It suits the worker, which OCRs each
// receipt after cropping and rectifying it. --dpi 300 did not help any mode.
const (
	DefaultBinary    = "tesseract"
	DefaultLanguages = "eng"
	DefaultPSM       = 6
	DefaultThreads   = 1
)

// versionTimeout bounds the start-up probe, so a hung binary fails New
// instead of blocking start-up.
const versionTimeout = 10 * time.Second

// stderrTail is how much of tesseract's stderr an error message keeps.
const stderrTail = 2048

// Options configure the engine. The zero value is usable.
type Options struct {
	// Binary is the tesseract executable, a path or a name looked up on
	// PATH. Default "tesseract".
	Binary string
	// Languages are tesseract language codes joined by "+". Default "eng".
	Languages string
	// PSM is tesseract's page segmentation mode; 0 means DefaultPSM
	// (tesseract's own mode 0 only detects orientation and reads no text).
	PSM int
	// DPI is passed as --dpi when > 0. The image arrives as PGM, which
	// carries no resolution, so otherwise tesseract estimates it; on SROIE
	// scans, telling it 300 did not improve the text.
	DPI int
	// Threads is OMP_THREAD_LIMIT for the child; 0 means 1, which gives
	// the best throughput when several images are recognized at once.
	Threads int
	// TessdataDir is passed as --tessdata-dir when set (a Lambda layer,
	// for example).
	TessdataDir string
}

// Engine runs tesseract for each image. It is safe for concurrent use: every
// call starts its own process.
type Engine struct {
	opts Options
	name string
}

var _ ocr.Engine = (*Engine)(nil)

// New checks that the tesseract binary runs and has the requested languages,
// so that a broken installation fails at start-up rather than on the first
// receipt. Failures wrap ocr.ErrEngine.
func New(opts Options) (*Engine, error) {
	if opts.Binary == "" {
		opts.Binary = DefaultBinary
	}
	if opts.Languages == "" {
		opts.Languages = DefaultLanguages
	}
	if opts.PSM == 0 {
		opts.PSM = DefaultPSM
	}
	if opts.Threads <= 0 {
		opts.Threads = DefaultThreads
	}
	if opts.PSM < 0 || opts.PSM > 13 {
		return nil, fmt.Errorf("%w: tesseract: page segmentation mode %d outside 0–13", ocr.ErrEngine, opts.PSM)
	}
	ctx, cancel := context.WithTimeout(context.Background(), versionTimeout)
	defer cancel()

	e := &Engine{opts: opts}
	out, err := e.probe(ctx, "--version")
	if err != nil {
		return nil, err
	}
	e.name = parseVersion(out)

	out, err = e.probe(ctx, "--list-langs")
	if err != nil {
		return nil, err
	}
	have := parseLanguages(out)
	for _, lang := range strings.Split(opts.Languages, "+") {
		if !have[lang] {
			return nil, fmt.Errorf("%w: tesseract: language %q not installed (tessdata has %s)",
				ocr.ErrEngine, lang, strings.Join(sortedKeys(have), ", "))
		}
	}
	return e, nil
}

// Name is the tesseract version line, such as "tesseract 5.3.0".
func (e *Engine) Name() string { return e.name }

// Recognize runs tesseract on img and returns its lines in reading order, as
// tesseract emits them, in img's normalized coordinates. A cancelled ctx
// kills the child and returns ctx's error; a tesseract failure wraps
// ocr.ErrEngine; an image without pixels is ErrEmptyImage.
func (e *Engine) Recognize(ctx context.Context, img image.Image) ([]ocr.Line, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrEmptyImage)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("%w: %d×%d pixels", ErrEmptyImage, b.Dx(), b.Dy())
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tesseract: %w", err)
	}
	hocr, err := e.run(ctx, encodePGM(img))
	if err != nil {
		return nil, err
	}
	lines, err := parseHOCR(bytes.NewReader(hocr), b.Dx(), b.Dy())
	if err != nil {
		return nil, fmt.Errorf("%w: tesseract: %v", ocr.ErrEngine, err)
	}
	return lines, nil
}

// args are the command-line arguments that read PGM from stdin and write
// hOCR with letter boxes to stdout. hOCR is switched on with -c rather than
// the "hocr" config file, which a trimmed tessdata directory may lack.
func (e *Engine) args() []string {
	args := []string{"stdin", "stdout"}
	if e.opts.TessdataDir != "" {
		args = append(args, "--tessdata-dir", e.opts.TessdataDir)
	}
	args = append(args, "-l", e.opts.Languages, "--psm", strconv.Itoa(e.opts.PSM))
	if e.opts.DPI > 0 {
		args = append(args, "--dpi", strconv.Itoa(e.opts.DPI))
	}
	return append(args, "-c", "tessedit_create_hocr=1", "-c", "hocr_char_boxes=1")
}

// run pipes pgm through tesseract and returns its stdout.
func (e *Engine) run(ctx context.Context, pgm []byte) ([]byte, error) {
	cmd := e.command(ctx, e.args()...)
	cmd.Stdin = bytes.NewReader(pgm)
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: stderrTail}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	err := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("tesseract: %w", ctxErr)
	}
	if err != nil {
		if tail := stderr.String(); tail != "" {
			err = fmt.Errorf("%w: %s", err, tail)
		}
		return nil, fmt.Errorf("%w: tesseract: %v", ocr.ErrEngine, err)
	}
	return stdout.Bytes(), nil
}

// probe runs tesseract with a single informational flag and returns what it
// printed on stdout and stderr (older versions print --version on stderr).
func (e *Engine) probe(ctx context.Context, flag string) (string, error) {
	var args []string
	if e.opts.TessdataDir != "" {
		args = append(args, "--tessdata-dir", e.opts.TessdataDir)
	}
	cmd := e.command(ctx, append(args, flag)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if tail := strings.TrimSpace(out.String()); tail != "" {
			err = fmt.Errorf("%w: %s", err, tail[max(0, len(tail)-stderrTail):])
		}
		return "", fmt.Errorf("%w: tesseract %s (binary %q): %v", ocr.ErrEngine, flag, e.opts.Binary, err)
	}
	return out.String(), nil
}

// command prepares a tesseract process that ctx kills, limited to the
// configured number of OpenMP threads.
func (e *Engine) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.opts.Binary, args...)
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT="+strconv.Itoa(e.opts.Threads))
	// Once the child is killed, do not wait long for its pipes.
	cmd.WaitDelay = time.Second
	return cmd
}

// parseVersion picks the "tesseract X.Y.Z" line out of --version output.
func parseVersion(out string) string {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "tesseract ") {
			return line
		}
	}
	return "tesseract"
}

// parseLanguages reads --list-langs output: a header line, then one code a
// line.
func parseLanguages(out string) map[string]bool {
	have := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, " ") {
			continue // the header, or a warning
		}
		have[line] = true
	}
	return have
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// tailBuffer keeps the last max bytes written to it, so a chatty child cannot
// grow an error message without bound.
type tailBuffer struct {
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > t.max {
		p = p[len(p)-t.max:]
	}
	t.buf = append(t.buf, p...)
	if extra := len(t.buf) - t.max; extra > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[extra:])]
	}
	return n, nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.buf)) }
