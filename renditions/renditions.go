// Package renditions stores the web UI's copies of every image and every
// receipt crop: JPEG, WebP and AVIF at a few bounded sizes, so a browser
// downloads a small picture it can decode instead of the raw upload.
//
// Keys. The process stage stores an image's renditions under
// ImagePrefix(imageID) and a receipt's under ReceiptPrefix(imageID, receiptID);
// Render appends "_{size}.{ext}", giving
//
//	assets/{image_id}/image_{size}.{ext}
//	assets/{image_id}/{receipt_id}_{size}.{ext}
//
// with size one of "300", "600", "1200", "full" (the long side in pixels)
// and ext one of "jpg", "webp", "avif". All renditions of one image share a
// folder, so listing or deleting them is one prefix operation.
//
// Never upscaled. A size whose long side is not smaller than the image's
// would hold the same pixels as the full-size rendition, so it is not
// stored: a 200×100 image gets only "full". Render returns what it stored,
// and callers record those keys instead of guessing them.
//
// A record never fails because of a rendition: an encoder that is
// unavailable or fails is reported in the skipped list, and Render returns
// an error only when the context ends or the store fails (both transient,
// so the record should be retried; Put replaces objects, so a retry is
// idempotent).
package renditions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
)

// Format is an output format; its value is how Options and logs name it.
type Format string

// The formats Render can produce.
const (
	JPEG Format = "jpeg"
	WebP Format = "webp"
	AVIF Format = "avif"
)

// AllFormats is the default for Options.Formats, in the order renditions
// are returned (the most compatible first).
var AllFormats = []Format{JPEG, WebP, AVIF}

// Ext returns the key's file name extension (without the dot), or "" for an
// unknown format. JPEG uses "jpg", as the keys of the system Tally replaces.
func (f Format) Ext() string {
	switch f {
	case JPEG:
		return "jpg"
	case WebP, AVIF:
		return string(f)
	}
	return ""
}

// ContentType returns the MIME type stored with the object, so browsers and
// CDNs serve it correctly, or "" for an unknown format.
func (f Format) ContentType() string {
	if f.Ext() == "" {
		return ""
	}
	return "image/" + string(f)
}

// FullSize is the size name of the rendition that keeps the image's own
// dimensions (Options.Sizes value 0).
const FullSize = "full"

// Defaults used when an Options field is zero.
const (
	DefaultJPEGQuality = 85
	DefaultWebPQuality = 80
	DefaultAVIFQuality = 60
	// DefaultAVIFMaxSide bounds AVIF because its encoder is slow without
	// cgo (0.7 s for 1200×1600 px, 1.4 s at full size on 2 cores, growing
	// with the pixel count): the full size of a 12 MP phone photo would
	// dominate a record's processing time.
	DefaultAVIFMaxSide = 1200
)

// DefaultSizes is the default for Options.Sizes: long sides in pixels, 0
// meaning full size.
var DefaultSizes = []int{300, 600, 1200, 0}

// Options choose what Render produces; the zero value means every format at
// every default size.
type Options struct {
	// Formats to produce; nil means AllFormats. Unknown formats are skipped.
	Formats []Format
	// Sizes are maximum long sides in pixels, 0 meaning full size; nil means
	// DefaultSizes. Negative sizes are skipped.
	Sizes []int
	// Qualities from 1 to 100 (larger values are capped); 0 means the
	// format's default.
	JPEGQuality, WebPQuality, AVIFQuality int
	// AVIFMaxSide skips AVIF for renditions whose long side exceeds it
	// (reported in the skipped list); 0 means DefaultAVIFMaxSide and a
	// negative value means no limit.
	AVIFMaxSide int
	// Parallel is how many encodes run at once; 0 means GOMAXPROCS. Each
	// holds an uncompressed copy of its image, so lower it for huge images
	// on small machines.
	Parallel int
}

// Rendition describes one stored object, for the record that lists them.
type Rendition struct {
	Format        Format
	SizeName      string // "300", "600", "1200" or "full"
	Width, Height int
	Key           string
	Bytes         int
	ContentType   string
}

// Skip reports a rendition that was not stored, and why, so the caller can
// log it without failing the record.
type Skip struct {
	Format Format
	// SizeName is empty when the skip covers every size of the format
	// (an unknown format, an empty image).
	SizeName string
	Reason   string
}

// ImagePrefix is the key prefix of a whole image's renditions.
func ImagePrefix(imageID string) string {
	return "assets/" + imageID + "/image"
}

// ReceiptPrefix is the key prefix of the renditions of one receipt crop of
// an image (receipt ids are 1-based, as everywhere in Tally).
func ReceiptPrefix(imageID string, receiptID int) string {
	return "assets/" + imageID + "/" + strconv.Itoa(receiptID)
}

// Key is where Render stores one rendition.
func Key(keyPrefix string, f Format, sizeName string) string {
	return keyPrefix + "_" + sizeName + "." + f.Ext()
}

// Render encodes img in every format and size of opts and stores each
// object under Key(keyPrefix, format, size) with store.Put, returning what
// it stored in the order of opts.Formats, full size first, then largest
// first.
//
// Encoders that are unavailable or fail are reported in skipped, never as an
// error. err is non-nil only when ctx ends (ctx's error, wrapped), when the
// store fails, or for a nil store or a key prefix the store would refuse
// (tally.ErrInvalidArgument, before anything is encoded); rendered then
// lists the objects already stored. Render returns soon after ctx ends, but
// an encode already running cannot be interrupted: it finishes in the
// background and its output is dropped.
func Render(ctx context.Context, store blob.Store, img image.Image, keyPrefix string, opts Options) (rendered []Rendition, skipped []Skip, err error) {
	return render(ctx, store, img, keyPrefix, opts, defaultEncoders)
}

// encodeFunc writes img in one format; img is tightly packed (Min at the
// origin, Stride 4×width), which the WebAssembly encoders rely on.
type encodeFunc func(w *bytes.Buffer, img *image.RGBA, quality int) error

// job is one format at one size.
type job struct {
	format   Format
	sizeName string
	img      *image.RGBA
	quality  int
}

// outcome is what happened to one job; at most one field is set (none when
// the job never ran because Render stopped).
type outcome struct {
	rendition *Rendition
	skip      *Skip
}

func render(ctx context.Context, store blob.Store, img image.Image, keyPrefix string, opts Options, encoders map[Format]encodeFunc) ([]Rendition, []Skip, error) {
	if store == nil {
		return nil, nil, fmt.Errorf("render: nil store: %w", tally.ErrInvalidArgument)
	}
	if err := blob.ValidateKey(Key(keyPrefix, JPEG, FullSize)); err != nil {
		return nil, nil, fmt.Errorf("render: key prefix: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("render: %w", err)
	}
	opts = opts.withDefaults()

	var skipped []Skip
	var formats []Format
	for _, f := range opts.Formats {
		switch {
		case slices.Contains(formats, f):
		case encoders[f] == nil || f.Ext() == "":
			skipped = append(skipped, Skip{Format: f, Reason: "unknown format"})
		default:
			formats = append(formats, f)
		}
	}
	if img == nil || img.Bounds().Empty() {
		for _, f := range formats {
			skipped = append(skipped, Skip{Format: f, Reason: "empty image"})
		}
		return nil, skipped, nil
	}

	sizes, negative := plannedSizes(img.Bounds(), opts.Sizes)
	for _, s := range negative {
		for _, f := range formats {
			skipped = append(skipped, Skip{Format: f, SizeName: strconv.Itoa(s), Reason: "negative size"})
		}
	}
	if len(formats) == 0 {
		return nil, skipped, nil
	}

	// Resize once per size, each from the previous (larger) one: every
	// format shares the pixels, and each step reads fewer source pixels.
	// Dimensions come from the full size, as Resize's would, so rounding
	// does not drift along the chain.
	full := packedRGBA(img)
	scaled := make([]*image.RGBA, len(sizes))
	prev := full
	for i, s := range sizes {
		if err := ctx.Err(); err != nil {
			return nil, skipped, fmt.Errorf("render: %w", err)
		}
		if s == 0 {
			scaled[i] = full
			continue
		}
		w, h := fit(full.Rect.Dx(), full.Rect.Dy(), s)
		scaled[i] = scale(prev, w, h)
		prev = scaled[i]
	}

	var jobs []job
	for _, f := range formats {
		for i, s := range sizes {
			name := sizeName(s)
			if f == AVIF && opts.AVIFMaxSide > 0 && longSide(scaled[i].Rect) > opts.AVIFMaxSide {
				skipped = append(skipped, Skip{Format: f, SizeName: name, Reason: fmt.Sprintf(
					"long side of %d px exceeds AVIFMaxSide %d (AVIF encoding is slow)", longSide(scaled[i].Rect), opts.AVIFMaxSide)})
				continue
			}
			jobs = append(jobs, job{format: f, sizeName: name, img: scaled[i], quality: opts.quality(f)})
		}
	}

	outcomes, err := runJobs(ctx, store, keyPrefix, jobs, encoders, opts.Parallel)
	var rendered []Rendition
	for _, o := range outcomes {
		if o.rendition != nil {
			rendered = append(rendered, *o.rendition)
		}
		if o.skip != nil {
			skipped = append(skipped, *o.skip)
		}
	}
	return rendered, skipped, err
}

// runJobs encodes and stores jobs with up to parallel workers, stopping at
// the first store error or when ctx ends. Outcomes are in job order.
func runJobs(ctx context.Context, store blob.Store, keyPrefix string, jobs []job, encoders map[Format]encodeFunc, parallel int) ([]outcome, error) {
	stop, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex
	var storeErr error // the first one; it stops the other workers
	outcomes := make([]outcome, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, len(jobs)) {
		wg.Go(func() {
			for i := range next {
				o, err := runJob(stop, store, keyPrefix, jobs[i], encoders[jobs[i].format])
				if err == nil {
					outcomes[i] = o
					continue
				}
				if stop.Err() == nil { // not a context error: the store failed
					mu.Lock()
					if storeErr == nil {
						storeErr = err
					}
					mu.Unlock()
					cancel()
				}
			}
		})
	}
	// Jobs go out in order: JPEG first, so the most useful renditions are
	// stored even when the record's time runs out during AVIF.
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-stop.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()

	switch {
	case storeErr != nil:
		return outcomes, storeErr
	case ctx.Err() != nil:
		return outcomes, fmt.Errorf("render: %w", ctx.Err())
	}
	return outcomes, nil
}

// runJob encodes and stores one rendition. Encoder failures become a skip;
// the error is only for a context or store failure.
func runJob(ctx context.Context, store blob.Store, keyPrefix string, j job, encode encodeFunc) (outcome, error) {
	if err := ctx.Err(); err != nil {
		return outcome{}, err
	}
	data, err := encodeContext(ctx, encode, j.img, j.quality)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return outcome{}, ctxErr
		}
		return outcome{skip: &Skip{Format: j.format, SizeName: j.sizeName, Reason: err.Error()}}, nil
	}
	key := Key(keyPrefix, j.format, j.sizeName)
	contentType := j.format.ContentType()
	if _, err := store.Put(ctx, key, bytes.NewReader(data), blob.PutOptions{ContentType: contentType}); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return outcome{}, ctxErr
		}
		return outcome{}, fmt.Errorf("render: store %s: %w", key, err)
	}
	return outcome{rendition: &Rendition{
		Format:      j.format,
		SizeName:    j.sizeName,
		Width:       j.img.Rect.Dx(),
		Height:      j.img.Rect.Dy(),
		Key:         key,
		Bytes:       len(data),
		ContentType: contentType,
	}}, nil
}

// encodeContext runs encode in its own goroutine so that Render can return
// when ctx ends: the WebAssembly encoders take no context and cannot be
// stopped. A panic in an encoder (a failed WebAssembly start-up panics)
// becomes an error.
func encodeContext(ctx context.Context, encode encodeFunc, img *image.RGBA, quality int) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1) // buffered: an abandoned encode must not block
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("encoder panicked: %v", p)}
			}
			done <- r
		}()
		var buf bytes.Buffer
		if err := encode(&buf, img, quality); err != nil {
			r.err = err
			return
		}
		if buf.Len() == 0 {
			r.err = errors.New("encoder wrote nothing")
			return
		}
		r.data = buf.Bytes()
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// withDefaults fills zero fields and clamps the rest into range.
func (o Options) withDefaults() Options {
	if o.Formats == nil {
		o.Formats = AllFormats
	}
	if o.Sizes == nil {
		o.Sizes = DefaultSizes
	}
	o.JPEGQuality = clampQuality(o.JPEGQuality, DefaultJPEGQuality)
	o.WebPQuality = clampQuality(o.WebPQuality, DefaultWebPQuality)
	o.AVIFQuality = clampQuality(o.AVIFQuality, DefaultAVIFQuality)
	if o.AVIFMaxSide == 0 {
		o.AVIFMaxSide = DefaultAVIFMaxSide
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.GOMAXPROCS(0)
	}
	return o
}

func clampQuality(q, def int) int {
	switch {
	case q <= 0:
		return def
	case q > 100:
		return 100
	}
	return q
}

func (o Options) quality(f Format) int {
	switch f {
	case JPEG:
		return o.JPEGQuality
	case WebP:
		return o.WebPQuality
	case AVIF:
		return o.AVIFQuality
	}
	return 0
}

// plannedSizes turns the requested sizes into the distinct sizes to render,
// 0 (full) first, then largest first. A size that would not shrink the image
// becomes full, so nothing is upscaled or stored twice. Negative sizes are
// returned apart, for the skipped list.
func plannedSizes(bounds image.Rectangle, requested []int) (sizes, negative []int) {
	long := longSide(bounds)
	for _, s := range requested {
		if s >= long {
			s = 0
		}
		switch {
		case s < 0:
			if !slices.Contains(negative, s) {
				negative = append(negative, s)
			}
		case !slices.Contains(sizes, s):
			sizes = append(sizes, s)
		}
	}
	slices.SortFunc(sizes, func(a, b int) int {
		switch {
		case a == b:
			return 0
		case a == 0:
			return -1
		case b == 0:
			return 1
		}
		return b - a
	})
	return sizes, negative
}

func sizeName(s int) string {
	if s == 0 {
		return FullSize
	}
	return strconv.Itoa(s)
}

func longSide(r image.Rectangle) int { return max(r.Dx(), r.Dy()) }
