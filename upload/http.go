package upload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/imaging"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
)

// Router is where the routes go: an *http.ServeMux, or an auth.Mux that
// guards them.
type Router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the upload API's routes to mux:
//
//	POST /upload-receipt  {filename, content_type[, sha256, force]} → presigned PUT
//	POST /receipts        multipart, one or more image files (?force=true)
//	GET  /upload-status?image_id=ID
//	POST /ocr-results     multipart: "image" file + "result" JSON (external OCR)
func (s *Service) Register(mux Router) {
	mux.HandleFunc("POST /upload-receipt", s.handleCreate)
	mux.HandleFunc("POST /receipts", s.handleReceipts)
	mux.HandleFunc("GET /upload-status", s.handleStatus)
	mux.HandleFunc("POST /images/{id}/retry", s.handleRetry)
	mux.HandleFunc("GET /images/by-sha256/{sum}", s.handleBySHA256)
	mux.HandleFunc("POST /ocr-results", s.handleOCRResults)
}

// ErrorBody is every error response: a message and, for refused types, the
// supported ones.
type ErrorBody struct {
	Error     string   `json:"error"`
	Supported []string `json:"supported,omitempty"`
}

// StatusOf maps an error to its HTTP status: the client's mistakes are 4xx
// with the reason, everything else 500.
func StatusOf(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, imaging.ErrUnsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrTooLarge), errors.Is(err, imaging.ErrTooLarge), errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, imaging.ErrEmpty), errors.Is(err, imaging.ErrCorrupt), errors.Is(err, ocr.ErrMalformed),
		errors.Is(err, ocr.ErrGeometry), errors.Is(err, tally.ErrInvalidArgument),
		errors.Is(err, label.ErrInvalidCorrection), errors.Is(err, label.ErrUnknownLabel), errors.Is(err, label.ErrUnknownWord):
		return http.StatusBadRequest
	case errors.Is(err, tally.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrNotRetryable):
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := StatusOf(err)
	body := ErrorBody{Error: err.Error()}
	if code == http.StatusUnsupportedMediaType {
		for _, f := range imaging.Supported {
			body.Supported = append(body.Supported, f.ContentType())
		}
	}
	if code >= 500 {
		s.log.Error("upload API", "path", r.URL.Path, "err", err)
		body.Error = "internal error: " + err.Error()
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, fmt.Errorf("request body: %v: %w", err, tally.ErrInvalidArgument))
		return
	}
	resp, err := s.CreateUpload(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// ReceiptsResponse answers a direct upload: what was accepted and what was
// refused, file by file (one bad file never refuses the others).
type ReceiptsResponse struct {
	Receipts []Accepted `json:"receipts"`
	Errors   []Refused  `json:"errors,omitempty"`
}

// Refused is one file that was not taken, and why.
type Refused struct {
	Filename string `json:"filename"`
	Status   int    `json:"status"`
	Error    string `json:"error"`
}

func (s *Service) handleReceipts(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		s.fail(w, r, fmt.Errorf("want a multipart/form-data body with image files: %v: %w", err, tally.ErrInvalidArgument))
		return
	}
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	resp := ReceiptsResponse{Receipts: []Accepted{}}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.fail(w, r, fmt.Errorf("read multipart body: %w", asClientError(err)))
			return
		}
		if part.FileName() == "" {
			part.Close()
			continue
		}
		name := part.FileName()
		data, err := readPart(part, s.cfg.MaxBytes)
		part.Close()
		var mbe *http.MaxBytesError
		if err != nil && !errors.As(err, &mbe) && errors.Is(err, ErrTooLarge) {
			// Only this file is too large: refuse it, keep the others.
			resp.Errors = append(resp.Errors, Refused{Filename: name, Status: StatusOf(err), Error: fmt.Sprintf("%s: %v", name, err)})
			continue
		}
		if err != nil {
			s.fail(w, r, fmt.Errorf("%s: %w", name, err))
			return
		}
		acc, err := s.Ingest(r.Context(), name, data, force)
		if err != nil {
			code := StatusOf(err)
			if code >= 500 {
				// The server's failure, not the file's (a full disk, a
				// store that is down): the operator must see it too.
				s.log.Error("upload API: file not accepted", "path", r.URL.Path, "file", name, "err", err)
			}
			resp.Errors = append(resp.Errors, Refused{Filename: name, Status: code, Error: err.Error()})
			continue
		}
		resp.Receipts = append(resp.Receipts, acc)
	}
	switch {
	case len(resp.Receipts) == 0 && len(resp.Errors) == 0:
		s.fail(w, r, fmt.Errorf("no files in the request: %w", tally.ErrInvalidArgument))
	case len(resp.Receipts) == 0:
		writeJSON(w, resp.Errors[0].Status, resp)
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

// readPart reads a part whole, refusing more than limit bytes.
func readPart(p *multipart.Part, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(p, limit+1))
	if err != nil {
		return nil, asClientError(err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("over the %d byte limit: %w", limit, ErrTooLarge)
	}
	return data, nil
}

// asClientError marks a body read failure as the client's (413 for an
// oversized body, else 400).
func asClientError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("request body over %d bytes: %w: %w", mbe.Limit, ErrTooLarge, err)
	}
	return fmt.Errorf("%v: %w", err, tally.ErrInvalidArgument)
}

// handleBySHA256 answers which image holds these bytes, if any, so a
// client can skip an upload the server already has; it changes nothing.
func (s *Service) handleBySHA256(w http.ResponseWriter, r *http.Request) {
	sum := strings.ToLower(r.PathValue("sum"))
	if !validSHA256(sum) {
		s.fail(w, r, fmt.Errorf("sha256 %q is not 64 hex digits: %w", sum, tally.ErrInvalidArgument))
		return
	}
	id, err := ocrjob.LookupSHA256(r.Context(), s.cfg.Items, auth.Owner(r.Context()), sum)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"image_id": id, "sha256": sum})
}

func (s *Service) handleRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := ocrjob.ValidateID("image_id", id); err != nil {
		s.fail(w, r, err)
		return
	}
	acc, err := s.Retry(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, acc)
}

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Status(r.Context(), r.URL.Query().Get("image_id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) handleOCRResults(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBytes+MaxResultBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		s.fail(w, r, fmt.Errorf("want multipart/form-data with an \"image\" file and a \"result\" JSON part: %v: %w", err, tally.ErrInvalidArgument))
		return
	}
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	var image, result []byte
	var filename string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.fail(w, r, fmt.Errorf("read multipart body: %w", asClientError(err)))
			return
		}
		switch part.FormName() {
		case "image":
			filename = part.FileName()
			image, err = readPart(part, s.cfg.MaxBytes)
		case "result":
			result, err = readPart(part, MaxResultBytes)
		}
		part.Close()
		if err != nil {
			s.fail(w, r, fmt.Errorf("%s part: %w", part.FormName(), err))
			return
		}
	}
	if image == nil || result == nil {
		s.fail(w, r, fmt.Errorf("want both an \"image\" part and a \"result\" part: %w", tally.ErrInvalidArgument))
		return
	}
	acc, err := s.SubmitOCR(r.Context(), filename, image, result, force)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, acc)
}
