package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/upload"
)

// Status is how one file's import ended.
type Status string

// The ends of a file's import.
const (
	// Imported: uploaded now, as a new image.
	Imported Status = "imported"
	// Duplicate: the server already had these bytes; nothing was sent
	// (or the server found the duplicate itself on upload).
	Duplicate Status = "duplicate"
	// Skipped: not sent, because it is not something Tally takes.
	Skipped Status = "skipped"
	// Failed: it should have gone in and did not (unreadable, refused by
	// the server, the server unreachable).
	Failed Status = "failed"
	// NotTried: the run stopped (interrupted, or the server could not be
	// reached) before this file; running again continues with it.
	NotTried Status = "not tried"
)

// Outcome is one file's import.
type Outcome struct {
	Path    string
	Status  Status
	ImageID string
	Reason  string
	// Final is where the image ended up in processing, with Options.Wait.
	Final *Final
	err   error
}

// Err is the error behind a Failed outcome that came from talking to the
// server, for Unreachable; nil otherwise.
func (o Outcome) Err() error { return o.err }

// Options tune Import.
type Options struct {
	// Jobs is how many files are read and uploaded at once (default 4).
	Jobs int
	// Wait follows each imported (or duplicate) image through processing
	// before counting its file done.
	Wait bool
	// Progress, when set, is called after each file (from one goroutine
	// at a time), for progress bars and logs.
	Progress func(Progress)
}

// Progress is how far an Import has got.
type Progress struct {
	Done, Total int
	Elapsed     time.Duration
	// Last is the file just finished.
	Last Outcome
}

// ETA guesses the time left from the rate so far.
func (p Progress) ETA() time.Duration {
	if p.Done == 0 {
		return 0
	}
	return time.Duration(float64(p.Elapsed) / float64(p.Done) * float64(p.Total-p.Done))
}

// Import imports files (from Collect) with opt.Jobs at a time and returns
// one Outcome per file, in order. It stops early when ctx ends or the
// server cannot be reached even after retries: the files not started are
// NotTried and the error says why. Since duplicates are found by sha256
// before upload, running it again over the same files continues where it
// stopped without sending anything twice.
func (c *Client) Import(ctx context.Context, files []string, opt Options) ([]Outcome, error) {
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	out := make([]Outcome, len(files))
	for i, f := range files {
		out[i] = Outcome{Path: f, Status: NotTried, Reason: "the run stopped before it"}
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var (
		mu    sync.Mutex
		done  int
		wg    sync.WaitGroup
		start = time.Now()
		next  = make(chan int)
		sums  = &sumSet{m: map[[32]byte]*sumEntry{}}
	)
	for range jobs {
		wg.Go(func() {
			for i := range next {
				o := c.importFile(runCtx, files[i], sums)
				if runCtx.Err() != nil && o.Status == Failed {
					// Cut short by the stop, not the file's fault.
					continue
				}
				if opt.Wait && (o.Status == Imported || o.Status == Duplicate) && o.ImageID != "" {
					f, err := c.Wait(runCtx, o.ImageID)
					if err != nil {
						f = Final{Stage: StageUnknown, Reason: err.Error()}
					}
					o.Final = &f
				}
				if o.Status == Failed && Unreachable(o.Err()) {
					stop(fmt.Errorf("stopped: %w", o.Err()))
				}
				mu.Lock()
				out[i] = o
				done++
				if opt.Progress != nil {
					opt.Progress(Progress{Done: done, Total: len(files), Elapsed: time.Since(start), Last: o})
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range files {
		select {
		case next <- i:
		case <-runCtx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return out, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return out, cause
	}
	return out, nil
}

// ImportFile imports one file: it skips what Tally does not take, asks the
// server whether it has the file's sha256, and uploads it if not. A server
// that cannot be reached is retried; if it stays down, the Outcome is
// Failed with Unreachable(o.Err()) true, so a caller can keep the file for
// later rather than call it bad.
func (c *Client) ImportFile(ctx context.Context, path string) Outcome {
	return c.importFile(ctx, path, nil)
}

// sumSet is the sha256 sums an Import run has met, so that copies of one
// file in the same run are sent once: a copy waits for the first file with
// its bytes and is its duplicate.
type sumSet struct {
	mu sync.Mutex
	m  map[[32]byte]*sumEntry
}

type sumEntry struct {
	done    chan struct{}
	imageID string
}

// claim returns the entry for sum and whether the caller is the first
// (and must close done once it knows the image id).
func (s *sumSet) claim(sum [32]byte) (*sumEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[sum]; ok {
		return e, false
	}
	e := &sumEntry{done: make(chan struct{})}
	s.m[sum] = e
	return e, true
}

func (c *Client) importFile(ctx context.Context, path string, sums *sumSet) (o Outcome) {
	o = Outcome{Path: path}
	before, err := os.Stat(path)
	if err != nil {
		o.Status, o.Reason = Failed, "unreadable: "+err.Error()
		return o
	}
	if why := SkipReason(path, before); why != "" {
		o.Status, o.Reason = Skipped, why
		return o
	}
	data, err := c.readFile(path)
	if err != nil {
		o.Status, o.Reason = Failed, "unreadable: "+err.Error()
		return o
	}
	if after, err := os.Stat(path); err != nil || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || int64(len(data)) != before.Size() {
		o.Status, o.Reason = Failed, "it changed while being read (still being written?); import it again once it is complete"
		return o
	}
	sum := sha256.Sum256(data)
	if sums != nil {
		e, first := sums.claim(sum)
		if first {
			defer func() {
				if o.Status == Imported || o.Status == Duplicate {
					e.imageID = o.ImageID
				}
				close(e.done)
			}()
		} else {
			select {
			case <-e.done:
			case <-ctx.Done():
				o.Status, o.Reason = Failed, "interrupted: "+ctx.Err().Error()
				return o
			}
			if e.imageID != "" {
				o.Status, o.ImageID, o.Reason = Duplicate, e.imageID, "duplicate of image "+e.imageID+" (same sha256)"
				return o
			}
		}
	}
	var have struct {
		ImageID string `json:"image_id"`
	}
	err = c.Retrying(ctx, func() error {
		return c.Call(ctx, http.MethodGet, "/images/by-sha256/"+hex.EncodeToString(sum[:]), "", nil, &have)
	})
	var herr *HTTPError
	switch {
	case err == nil && have.ImageID != "":
		o.Status, o.ImageID, o.Reason = Duplicate, have.ImageID, "duplicate of image "+have.ImageID+" (same sha256)"
		return o
	case err != nil && !(errors.As(err, &herr) && herr.Status == http.StatusNotFound):
		o.Status, o.Reason, o.err = Failed, "check for a duplicate: "+err.Error(), err
		return o
	}
	var resp upload.ReceiptsResponse
	err = c.Retrying(ctx, func() error {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		part, err := mw.CreateFormFile("file", sanitizeName(filepath.Base(path)))
		if err != nil {
			return err
		}
		part.Write(data)
		mw.Close()
		resp = upload.ReceiptsResponse{}
		return c.Call(ctx, http.MethodPost, "/receipts", mw.FormDataContentType(), &body, &resp)
	})
	switch {
	case len(resp.Receipts) == 1:
		o.ImageID, o.Status = resp.Receipts[0].ImageID, Imported
		if resp.Receipts[0].Duplicate {
			o.Status, o.Reason = Duplicate, "duplicate of image "+o.ImageID+" (same sha256)"
		}
	case len(resp.Errors) == 1:
		o.Status, o.Reason = Failed, "refused: "+resp.Errors[0].Error
	case err != nil:
		o.Status, o.Reason, o.err = Failed, "upload: "+err.Error(), err
	default:
		o.Status, o.Reason = Failed, "the server answered nothing for it"
	}
	return o
}

// sanitizeName keeps a file name printable and valid UTF-8 for the
// multipart header: newlines and other control characters, and bytes that
// are not UTF-8 (names from old file systems), become "_". The server
// sanitizes again for its keys; this keeps the request well formed.
func sanitizeName(s string) string {
	s = strings.ToValidUTF8(s, "_")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}
