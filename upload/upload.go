// Package upload is the front door of the pipeline: the HTTP API that takes
// receipt images in (presigned or direct uploads), answers their status,
// and accepts results from external OCR workers. It records an OCRJob per
// image and queues it for the OCR stage; it never runs OCR itself.
package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/imaging"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/queue"
)

// Defaults of Config.
const (
	DefaultMaxBytes      = 25 << 20
	DefaultPresignExpiry = 15 * time.Minute
	// DefaultFirstCheck is how long after a presigned upload is handed out
	// the OCR worker first looks for the image.
	DefaultFirstCheck = 2 * time.Second
	// MaxFilenameBytes bounds a sanitized filename.
	MaxFilenameBytes = 128
	// MaxResultBytes bounds an external OCR result document.
	MaxResultBytes = 32 << 20
)

// Config configures a Service.
type Config struct {
	ocrstage.Store
	// Jobs is the ocr-jobs queue.
	Jobs queue.Queue
	// MaxBytes bounds one image (and a direct upload's request body).
	MaxBytes int64
	// Limits bound decoding (the pixel limit is checked from the header,
	// before any pixels are decoded).
	Limits        imaging.Limits
	PresignExpiry time.Duration
	FirstCheck    time.Duration
	// StuckAfter is how long a PENDING job may go without progress before
	// Retry takes it as stuck (a lost message, a worker that died); default
	// DefaultStuckAfter.
	StuckAfter time.Duration
	Log        *slog.Logger
}

// DefaultStuckAfter is far beyond what one image's OCR takes, so a job this
// old without a stage change is stuck, not slow.
const DefaultStuckAfter = 30 * time.Minute

// Service is the upload API.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and fills in defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Items == nil || cfg.Blob == nil || cfg.Jobs == nil || cfg.Results == nil {
		return nil, fmt.Errorf("upload: Items, Blob, Jobs and Results are required: %w", tally.ErrInvalidArgument)
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.PresignExpiry <= 0 {
		cfg.PresignExpiry = DefaultPresignExpiry
	}
	if cfg.StuckAfter <= 0 {
		cfg.StuckAfter = DefaultStuckAfter
	}
	if cfg.FirstCheck <= 0 {
		cfg.FirstCheck = DefaultFirstCheck
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "tally"
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Service{cfg: cfg, log: log.With("component", "upload")}, nil
}

// ErrTooLarge means a body or file is over MaxBytes (HTTP 413).
var ErrTooLarge = errors.New("upload too large")

// RawKey is where an image's raw bytes are stored.
func RawKey(imageID, filename string) string { return "raw-receipts/" + imageID + "/" + filename }

// SanitizeFilename keeps the base name of a client's filename, safe as one
// key segment: no directories ("../" and "\" included), no control
// characters, letters (any script), digits and ". _ - ( ) +" and spaces
// kept, anything else "_", at most MaxFilenameBytes, never starting with a
// dot. An empty result becomes "receipt" plus ext.
func SanitizeFilename(name, ext string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r):
		case unicode.IsLetter(r), unicode.IsDigit(r), strings.ContainsRune("._-()+ ", r):
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	s := strings.TrimLeft(strings.TrimSpace(b.String()), ".")
	for len(s) > MaxFilenameBytes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	if s == "" || s == "/" {
		s = "receipt" + ext
	}
	return s
}

// CreateRequest asks for a presigned upload.
type CreateRequest struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	// SHA256 of the bytes, when the client knows it, lets a duplicate be
	// answered before any upload.
	SHA256 string `json:"sha256,omitempty"`
	Force  bool   `json:"force,omitempty"`
}

// CreateResponse is a presigned upload. For a duplicate (known SHA256),
// UploadURL is empty and ImageID names the earlier image.
type CreateResponse struct {
	UploadURL string    `json:"upload_url,omitempty"`
	S3Key     string    `json:"s3_key,omitempty"`
	JobID     string    `json:"job_id,omitempty"`
	ImageID   string    `json:"image_id"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Duplicate bool      `json:"duplicate,omitempty"`
}

// CreateUpload creates the OCRJob (PENDING, FIRST_PASS) and a presigned PUT
// for the image, and queues the job: the OCR worker waits (with backoff)
// for the image to arrive.
func (s *Service) CreateUpload(ctx context.Context, req CreateRequest) (CreateResponse, error) {
	format, ok := imaging.FormatFromContentType(req.ContentType)
	if !ok {
		return CreateResponse{}, fmt.Errorf("content type %q: %w: %s", req.ContentType, imaging.ErrUnsupported, imaging.SupportedText())
	}
	if req.SHA256 != "" && !req.Force {
		if !validSHA256(req.SHA256) {
			return CreateResponse{}, fmt.Errorf("sha256 %q is not 64 hex digits: %w", req.SHA256, tally.ErrInvalidArgument)
		}
		if id, err := ocrjob.LookupSHA256(ctx, s.cfg.Items, auth.Owner(ctx), strings.ToLower(req.SHA256)); err == nil {
			return CreateResponse{ImageID: id, Duplicate: true}, nil
		} else if !errors.Is(err, tally.ErrNotFound) {
			return CreateResponse{}, err
		}
	}
	imageID, jobID := ocrjob.NewID(), ocrjob.NewID()
	name := SanitizeFilename(req.Filename, format.Ext())
	key := RawKey(imageID, name)
	url, err := s.cfg.Blob.PresignPut(ctx, key, format.ContentType(), s.cfg.PresignExpiry)
	if err != nil {
		return CreateResponse{}, fmt.Errorf("presign upload: %w", err)
	}
	expires := time.Now().Add(s.cfg.PresignExpiry)
	job := ocrjob.Job{ImageID: imageID, JobID: jobID, Bucket: s.cfg.Bucket, Key: key, Filename: name, Owner: auth.Owner(ctx),
		ContentType: format.ContentType(), Force: req.Force, UploadBy: expires}
	if err := s.queueJob(ctx, job, s.cfg.FirstCheck); err != nil {
		return CreateResponse{}, err
	}
	return CreateResponse{UploadURL: url, S3Key: key, JobID: jobID, ImageID: imageID, ExpiresAt: expires.UTC()}, nil
}

// queueJob records the job and sends its message. A crash between the two
// leaves a PENDING job without a message, which Rescue finds.
func (s *Service) queueJob(ctx context.Context, job ocrjob.Job, delay time.Duration) error {
	if err := ocrjob.CreateJob(ctx, s.cfg.Items, job); err != nil {
		return err
	}
	body := ocrjob.Encode(ocrjob.JobMessage{JobID: job.JobID, ImageID: job.ImageID})
	res, err := s.cfg.Jobs.SendBatch(ctx, []queue.SendEntry{{ID: "0", Body: body, Delay: &delay}})
	if err == nil && len(res) == 1 {
		err = res[0].Err
	}
	if err != nil {
		return fmt.Errorf("queue OCR job %s: %w", job.JobID, err)
	}
	return nil
}

// Accepted is one image taken in.
type Accepted struct {
	Filename  string `json:"filename"`
	ImageID   string `json:"image_id"`
	JobID     string `json:"job_id,omitempty"`
	S3Key     string `json:"s3_key,omitempty"`
	SHA256    string `json:"sha256"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// checked is an image that passed the header checks.
type checked struct {
	data   []byte
	info   imaging.Info
	name   string
	sha256 string
}

// check refuses bytes that cannot become a job: empty, over the size
// limit, not a supported image type, a header that does not parse, or more
// pixels than the limit — all from the header, before any decoding.
func (s *Service) check(filename string, data []byte) (checked, error) {
	if int64(len(data)) > s.cfg.MaxBytes {
		return checked{}, fmt.Errorf("%s: %d bytes, over the %d byte limit: %w", filename, len(data), s.cfg.MaxBytes, ErrTooLarge)
	}
	info, err := imaging.Inspect(data, s.cfg.Limits)
	if err != nil {
		return checked{}, fmt.Errorf("%s: %w", filename, err)
	}
	sum := sha256.Sum256(data)
	return checked{data: data, info: info, name: SanitizeFilename(filename, info.Format.Ext()), sha256: hex.EncodeToString(sum[:])}, nil
}

// admit checks an image and, unless force, claims its bytes for a new
// image id. When the same bytes already belong to an image, dup answers
// with it instead and nothing is claimed.
func (s *Service) admit(ctx context.Context, filename string, data []byte, force bool) (c checked, imageID string, dup *Accepted, err error) {
	if c, err = s.check(filename, data); err != nil {
		return c, "", nil, err
	}
	imageID = ocrjob.NewID()
	if force {
		return c, imageID, nil, nil
	}
	owner, err := ocrjob.ClaimSHA256(ctx, s.cfg.Items, auth.Owner(ctx), c.sha256, imageID, time.Now())
	if err != nil {
		return c, "", nil, err
	}
	if owner != imageID {
		return c, "", &Accepted{Filename: filename, ImageID: owner, SHA256: c.sha256, Duplicate: true}, nil
	}
	return c, imageID, nil, nil
}

// or is a, or an Accepted naming only the file when a is nil.
func (a *Accepted) or(filename string) Accepted {
	if a == nil {
		return Accepted{Filename: filename}
	}
	return *a
}

// Ingest takes one directly uploaded image: checks it, answers a duplicate
// with the earlier image (unless force), stores the bytes, and queues the
// OCR job.
func (s *Service) Ingest(ctx context.Context, filename string, data []byte, force bool) (Accepted, error) {
	c, imageID, dup, err := s.admit(ctx, filename, data, force)
	if err != nil || dup != nil {
		return dup.or(filename), err
	}
	job := ocrjob.Job{ImageID: imageID, JobID: ocrjob.NewID(), Bucket: s.cfg.Bucket, Key: RawKey(imageID, c.name), Owner: auth.Owner(ctx),
		Filename: c.name, ContentType: c.info.Format.ContentType(), SHA256: c.sha256, Force: force}
	if _, err := s.cfg.Blob.Put(ctx, job.Key, bytes.NewReader(data), blob.PutOptions{ContentType: job.ContentType}); err != nil {
		s.release(ctx, c.sha256, imageID, force)
		return Accepted{Filename: filename}, fmt.Errorf("store image: %w", err)
	}
	if err := s.queueJob(ctx, job, 0); err != nil {
		s.release(ctx, c.sha256, imageID, force)
		return Accepted{Filename: filename}, err
	}
	return Accepted{Filename: filename, ImageID: imageID, JobID: job.JobID, S3Key: job.Key, SHA256: c.sha256}, nil
}

// SubmitOCR takes an image with an OCR result made elsewhere (an external
// OCR worker, in the contract's JSON, legacy or single-pass) and feeds the
// same next stage as the OCR worker: a legacy result is classified,
// clustered and rectified here, its lines mapped into each receipt.
func (s *Service) SubmitOCR(ctx context.Context, filename string, data, resultJSON []byte, force bool) (Accepted, error) {
	if len(resultJSON) > MaxResultBytes {
		return Accepted{Filename: filename}, fmt.Errorf("OCR result of %d bytes, over %d: %w", len(resultJSON), MaxResultBytes, ErrTooLarge)
	}
	res, err := ocr.Decode(resultJSON)
	if err == nil {
		err = res.Validate()
	}
	if err != nil {
		return Accepted{Filename: filename}, fmt.Errorf("OCR result: %w", err)
	}
	c, imageID, dup, err := s.admit(ctx, filename, data, force)
	if err != nil || dup != nil {
		return dup.or(filename), err
	}
	img, info, err := imaging.Decode(ctx, data, s.cfg.Limits)
	if err != nil {
		s.release(ctx, c.sha256, imageID, force)
		return Accepted{Filename: filename}, fmt.Errorf("%s: %w", filename, err)
	}
	job := ocrjob.Job{ImageID: imageID, JobID: ocrjob.NewID(), JobType: ocrjob.JobTypeExternal, Bucket: s.cfg.Bucket, Owner: auth.Owner(ctx),
		Key: RawKey(imageID, c.name), Filename: c.name, ContentType: info.Format.ContentType(), SHA256: c.sha256, Force: force}
	if _, err := s.cfg.Blob.Put(ctx, job.Key, bytes.NewReader(data), blob.PutOptions{ContentType: job.ContentType}); err != nil {
		s.release(ctx, c.sha256, imageID, force)
		return Accepted{Filename: filename}, fmt.Errorf("store image: %w", err)
	}
	if err := ocrjob.CreateJob(ctx, s.cfg.Items, job); err != nil {
		s.release(ctx, c.sha256, imageID, force)
		return Accepted{Filename: filename}, err
	}
	a := &ocrstage.Analysis{Result: res}
	if !res.SinglePass() {
		a, err = ocrstage.Analyze(ctx, imaging.Gray(img), res.Lines, nil)
		if err != nil {
			if ferr := ocrjob.Fail(ctx, s.cfg.Items, imageID, job.JobID, err.Error(), time.Now()); ferr != nil {
				s.log.Warn("record failed external OCR job", "image_id", imageID, "err", ferr)
			}
			return Accepted{Filename: filename, ImageID: imageID, JobID: job.JobID}, fmt.Errorf("analyse OCR result: %w: %w", err, tally.ErrInvalidArgument)
		}
	}
	im := ocrjob.Image{ImageID: imageID, Width: info.Width, Height: info.Height, Bucket: s.cfg.Bucket, Key: job.Key, SHA256: c.sha256, Added: time.Now(), Owner: auth.Owner(ctx)}
	if _, err := s.cfg.Publish(ctx, job, im, a, "external"); err != nil {
		return Accepted{Filename: filename, ImageID: imageID, JobID: job.JobID}, err
	}
	return Accepted{Filename: filename, ImageID: imageID, JobID: job.JobID, S3Key: job.Key, SHA256: c.sha256}, nil
}

// release drops imageID's claim on a hash after it turned out unusable.
func (s *Service) release(ctx context.Context, sum, imageID string, force bool) {
	if force {
		return
	}
	err := s.cfg.Items.Delete(ctx, ocrjob.SHA256Key(auth.Owner(ctx), sum), items.Cond{Expr: "image_id = :id", Values: map[string]any{":id": imageID}})
	if err != nil && !errors.Is(err, tally.ErrConditionFailed) {
		s.log.Warn("release sha256 claim", "image_id", imageID, "err", err)
	}
}

// Status is the answer to upload-status.
type Status struct {
	ImageID         string                  `json:"image_id"`
	JobID           string                  `json:"job_id"`
	Filename        string                  `json:"filename,omitempty"`
	OCRStatus       string                  `json:"ocr_status"`
	ProcessingStage string                  `json:"processing_stage"`
	ReceiptCount    int                     `json:"receipt_count"`
	Receipts        []ocrjob.ReceiptSummary `json:"receipts"`
	ImageType       string                  `json:"image_type,omitempty"`
	FailureReason   string                  `json:"failure_reason,omitempty"`
	DuplicateOf     string                  `json:"duplicate_of,omitempty"`
	ResultKey       string                  `json:"result_s3_key,omitempty"`
	UpdatedAt       time.Time               `json:"updated_at"`
}

// LatestOwnedJob is an image's latest OCR job when it belongs to the
// request's user; another user's image is tally.ErrNotFound, as if it did
// not exist, so that its id reveals nothing.
func LatestOwnedJob(ctx context.Context, t items.Table, imageID string) (ocrjob.Job, error) {
	j, err := ocrjob.LatestJob(ctx, t, imageID)
	if err != nil {
		return j, err
	}
	if j.Owner != auth.Owner(ctx) {
		return ocrjob.Job{}, fmt.Errorf("image %s: %w", imageID, tally.ErrNotFound)
	}
	return j, nil
}

// CheckOwner returns nil when imageID belongs to the request's user, and
// tally.ErrNotFound when it belongs to someone else or does not exist.
// The image item says whose it is; an image not yet through OCR has only
// its job.
func CheckOwner(ctx context.Context, t items.Table, imageID string) error {
	owner, err := ocrjob.ImageOwner(ctx, t, imageID)
	if errors.Is(err, tally.ErrNotFound) {
		_, err = LatestOwnedJob(ctx, t, imageID)
		return err
	}
	if err != nil {
		return err
	}
	if owner != auth.Owner(ctx) {
		return fmt.Errorf("image %s: %w", imageID, tally.ErrNotFound)
	}
	return nil
}

// Visible returns a test of whether an image belongs to the request's
// user, reading each image's owner once: for search results, which come
// from indexes that do not know owners.
//
// ids, when given, are read up front in batches (the results' images),
// rather than one request each.
func Visible(ctx context.Context, t items.Table, ids ...string) func(imageID string) bool {
	me := auth.Owner(ctx)
	seen := map[string]bool{}
	var keys []items.Key
	for _, id := range ids {
		if _, dup := seen[id]; !dup {
			seen[id] = me == "" // an image without an item has no owner
			keys = append(keys, ocrjob.ImageKey(id))
		}
	}
	for start := 0; start < len(keys); start += items.MaxBatchGet {
		found, err := t.BatchGet(ctx, keys[start:min(start+items.MaxBatchGet, len(keys))])
		if err != nil {
			clear(seen) // read each one on its own below
			break
		}
		for _, it := range found {
			id, _ := it["image_id"].(string)
			owner, _ := it["owner"].(string)
			seen[id] = owner == me
		}
	}
	return func(imageID string) bool {
		ok, done := seen[imageID]
		if !done {
			// An image without an item has no owner: seen with accounts off.
			owner, err := ocrjob.ImageOwner(ctx, t, imageID)
			ok = (err == nil || errors.Is(err, tally.ErrNotFound)) && owner == me
			seen[imageID] = ok
		}
		return ok
	}
}

// Status reports an image's latest OCR job; tally.ErrNotFound for an
// unknown image.
func (s *Service) Status(ctx context.Context, imageID string) (Status, error) {
	j, err := LatestOwnedJob(ctx, s.cfg.Items, imageID)
	if err != nil {
		return Status{}, err
	}
	st := Status{ImageID: j.ImageID, JobID: j.JobID, Filename: j.Filename, OCRStatus: j.Status, ProcessingStage: j.Stage, ReceiptCount: j.ReceiptCount,
		Receipts: []ocrjob.ReceiptSummary{}, ImageType: j.ImageType, FailureReason: j.Reason, DuplicateOf: j.DuplicateOf,
		ResultKey: j.ResultKey, UpdatedAt: j.UpdatedAt}
	if j.Status == ocrjob.StatusCompleted && j.DuplicateOf == "" {
		r, err := ocrjob.GetRouting(ctx, s.cfg.Items, j.ImageID, j.JobID)
		if err != nil && !errors.Is(err, tally.ErrNotFound) {
			return Status{}, err
		}
		if r.Receipts != nil {
			st.Receipts = r.Receipts
		}
	}
	return st, nil
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Stuck reports whether job j is PENDING with no progress for longer than
// after: what `tally retry` and `tally doctor` both call stuck.
func Stuck(j ocrjob.Job, after time.Duration, now time.Time) bool {
	return j.Status == ocrjob.StatusPending && now.Sub(j.UpdatedAt) > after
}

// ErrNotRetryable marks a retry of an image whose latest job has neither
// failed nor stuck (it is done, or still running).
var ErrNotRetryable = errors.New("upload: nothing to retry")

// Retry runs a FAILED or stuck image again from its stored raw upload: a new OCR
// job for the same bytes (duplicate detection skipped, since the earlier
// job holds the hash), queued now. The original upload is never touched.
// An image whose latest job did not fail is ErrNotRetryable; an unknown
// one tally.ErrNotFound.
func (s *Service) Retry(ctx context.Context, imageID string) (Accepted, error) {
	j, err := LatestOwnedJob(ctx, s.cfg.Items, imageID)
	if err != nil {
		return Accepted{}, fmt.Errorf("retry %s: %w", imageID, err)
	}
	if !Stuck(j, s.cfg.StuckAfter, time.Now()) && j.Status != ocrjob.StatusFailed {
		return Accepted{}, fmt.Errorf("retry %s: its latest job is %s (%s) and made progress %s ago: %w",
			imageID, j.Status, j.Stage, time.Since(j.UpdatedAt).Round(time.Second), ErrNotRetryable)
	}
	if _, err := s.cfg.Blob.Head(ctx, j.Key); err != nil {
		return Accepted{}, fmt.Errorf("retry %s: the stored upload %s: %w", imageID, j.Key, err)
	}
	job := ocrjob.Job{ImageID: imageID, JobID: ocrjob.NewID(), Bucket: j.Bucket, Key: j.Key, Filename: j.Filename, Owner: j.Owner,
		ContentType: j.ContentType, SHA256: j.SHA256, Force: true}
	if err := s.queueJob(ctx, job, 0); err != nil {
		return Accepted{}, err
	}
	return Accepted{Filename: j.Filename, ImageID: imageID, JobID: job.JobID, S3Key: job.Key, SHA256: j.SHA256}, nil
}

// MaxBytes is the largest image the service takes.
func (s *Service) MaxBytes() int64 { return s.cfg.MaxBytes }
