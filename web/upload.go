package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/upload"
)

// maxFiles bounds the files of one upload form.
const maxFiles = 50

// progress is one uploaded image on its way through the stages.
type progress struct {
	ImageID, Filename string
	// Stage is uploaded, OCR, processed, labelled, failed or duplicate.
	Stage    string
	Step     int // 1–4 along uploaded → OCR → processed → labelled
	Reason   string
	Receipts int
	Done     bool
	Dup      string
}

// fileResult is one file of an upload form.
type fileResult struct {
	Filename string
	ImageID  string
	Error    string
}

func (a *App) uploadForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, "upload", map[string]any{"Common": a.common(r, "Upload", "upload"), "Enabled": a.cfg.Upload != nil})
}

// uploadFiles takes a multipart form of images, each stored and queued on
// its own: a bad file is listed with its reason and never stops the others.
func (a *App) uploadFiles(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Upload == nil {
		a.fail(w, fmt.Errorf("uploads are not served here: %w", tally.ErrNotFound))
		return
	}
	max := a.cfg.Upload.MaxBytes()
	r.Body = http.MaxBytesReader(w, r.Body, int64(maxFiles)*(max+64<<10))
	mr, err := r.MultipartReader()
	if err != nil {
		a.fail(w, fmt.Errorf("the upload is not a multipart form: %v: %w", err, tally.ErrInvalidArgument))
		return
	}
	var results []fileResult
	status := 0
	for len(results) < maxFiles {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			a.fail(w, fmt.Errorf("the upload was cut short: %v: %w", err, tally.ErrInvalidArgument))
			return
		}
		if part.FileName() == "" {
			part.Close()
			continue
		}
		name := part.FileName()
		data, err := io.ReadAll(io.LimitReader(part, max+1))
		part.Close()
		res := fileResult{Filename: name}
		switch {
		case err != nil:
			res.Error = err.Error()
		case int64(len(data)) > max:
			res.Error = fmt.Sprintf("%s is over the %d MB limit", name, max>>20)
			err = upload.ErrTooLarge
		default:
			var acc upload.Accepted
			acc, err = a.cfg.Upload.Ingest(r.Context(), name, data, r.URL.Query().Get("force") == "1")
			res.ImageID = acc.ImageID
			if err != nil {
				res.Error = err.Error()
			}
		}
		if err != nil && status == 0 {
			status = upload.StatusOf(err)
		}
		results = append(results, res)
	}
	if len(results) == 0 {
		a.fail(w, fmt.Errorf("no file was chosen: %w", tally.ErrInvalidArgument))
		return
	}
	q := url.Values{}
	for _, res := range results {
		if res.ImageID != "" {
			q.Add("id", res.ImageID)
		}
	}
	if len(q) > 0 && status == 0 {
		http.Redirect(w, r, "/uploads?"+q.Encode(), http.StatusSeeOther)
		return
	}
	if len(q) > 0 {
		status = http.StatusOK // some went in: show both kinds
	}
	a.render(w, status, "upload", map[string]any{"Common": a.common(r, "Upload", "upload"), "Enabled": true,
		"Results": results, "Progress": "/uploads?" + q.Encode(), "Accepted": len(q) > 0})
}

// uploads shows each image's progress; the page refreshes itself while
// any is still on its way.
func (a *App) uploads(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["id"]
	if len(ids) > maxFiles {
		ids = ids[:maxFiles]
	}
	var ps []progress
	pending := false
	for _, id := range ids {
		p, err := a.progress(r, id)
		if err != nil {
			a.fail(w, err)
			return
		}
		pending = pending || !p.Done
		ps = append(ps, p)
	}
	a.render(w, http.StatusOK, "uploads", map[string]any{"Common": a.common(r, "Uploads", "upload"), "Uploads": ps,
		"Refresh": pending, "Self": r.URL.RequestURI()})
}

func (a *App) progress(r *http.Request, id string) (progress, error) {
	if err := ocrjob.ValidateID("image_id", id); err != nil {
		return progress{}, err
	}
	p := progress{ImageID: id}
	if a.cfg.Upload == nil {
		return p, fmt.Errorf("uploads are not served here: %w", tally.ErrNotFound)
	}
	st, err := a.cfg.Upload.Status(r.Context(), id)
	if err != nil {
		return p, err
	}
	p.Filename, p.Receipts = st.Filename, st.ReceiptCount
	switch {
	case st.OCRStatus == ocrjob.StatusFailed:
		p.Stage, p.Reason, p.Done = "failed", st.FailureReason, true
	case st.DuplicateOf != "":
		p.Stage, p.Dup, p.Done = "duplicate", st.DuplicateOf, true
	case st.OCRStatus == ocrjob.StatusPending && (st.ProcessingStage == "" || st.ProcessingStage == ocrjob.StagePending):
		p.Stage, p.Step = "uploaded", 1
	case st.OCRStatus != ocrjob.StatusCompleted:
		p.Stage, p.Step = "OCR", 2
	default:
		p.Stage, p.Step = "OCR", 2
		rt, err := a.cfg.Items.Get(r.Context(), ocrjob.RoutingKey(id, st.JobID))
		if err != nil && !errors.Is(err, tally.ErrNotFound) {
			return p, err
		}
		if reason, _ := rt["process_failure_reason"].(string); reason != "" {
			p.Stage, p.Reason, p.Done = "failed", reason, true
			break
		}
		if s, _ := rt["status"].(string); s != ocrjob.StatusCompleted {
			break
		}
		p.Stage, p.Step = "processed", 3
		if st.ReceiptCount == 0 {
			p.Done = true
			break
		}
		if _, ok, err := label.Stored(r.Context(), a.cfg.Items, id, 1); err != nil {
			return p, err
		} else if ok {
			p.Stage, p.Step, p.Done = "labelled", 4, true
		}
	}
	return p, nil
}

// retry runs a failed image again and shows its progress.
func (a *App) retry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("image_id")
	if err := ocrjob.ValidateID("image_id", id); err != nil {
		a.fail(w, err)
		return
	}
	if a.cfg.Upload == nil {
		a.fail(w, fmt.Errorf("uploads are not served here: %w", tally.ErrNotFound))
		return
	}
	if _, err := a.cfg.Upload.Retry(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	back := "/uploads?id=" + url.QueryEscape(id)
	if ref := r.PostFormValue("back"); strings.HasPrefix(ref, "/uploads?") {
		back = ref
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
