// Package ocrjob is the OCR stage's record keeping: the OCRJob item that
// follows one image through OCR, the routing item that hands its result to
// the process stage, the image's sha256 claim that makes uploads
// idempotent, and the two queue messages (DESIGN §3). The upload API, the
// OCR worker and external OCR submissions all write through it, so the
// three agree on every key and field.
package ocrjob

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// Job statuses (the item's status attribute, as the old system stored it).
const (
	StatusPending   = "PENDING"
	StatusCompleted = "COMPLETED"
	StatusFailed    = "FAILED"
)

// Processing stages, finer than the status, for upload-status.
const (
	StagePending    = "PENDING"           // waiting for the image or a worker
	StageDownload   = "DOWNLOADING"       // fetching the raw image
	StageOCR        = "OCR_RUNNING"       // classifying, rectifying and recognizing
	StageUploading  = "UPLOADING_RESULTS" // writing the result, crops and routing item
	StageCompleted  = "COMPLETED"
	StageFailed     = "FAILED"
	StageDuplicate  = "DUPLICATE" // the same bytes were already uploaded
	JobTypeFirst    = "FIRST_PASS"
	JobTypeExternal = "EXTERNAL" // result submitted by an external OCR worker
)

// Item types.
const (
	TypeJob     = "OCR_JOB"
	TypeRouting = "OCR_ROUTING_DECISION"
	TypeImage   = "IMAGE"
	TypeSHA256  = "IMAGE_SHA256"
)

// StatusIndex lists jobs by status (GSI1PK = OCR_JOB_STATUS#{status}).
const StatusIndex = "GSI1"

// MaxIDBytes bounds image and job ids.
const MaxIDBytes = 128

// TimeFormat is RFC 3339 in UTC with a fixed nine-digit fraction, so times
// sort as text.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime formats t with TimeFormat.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ParseTime reads a stored time; zero when absent or malformed.
func ParseTime(v any) time.Time {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// NewID returns a random UUID (version 4), the id form the old system used
// for images and jobs.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ValidateID checks an image or job id before it goes into a key: not
// empty, bounded, UTF-8, no key separator, no control or path characters.
func ValidateID(kind, id string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s: %w", kind, fmt.Sprintf(format, args...), tally.ErrInvalidArgument)
	}
	switch {
	case id == "":
		return bad("missing")
	case len(id) > MaxIDBytes:
		return bad("%d bytes, over %d", len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return bad("not valid UTF-8")
	case strings.ContainsAny(id, "#/\\") || id == "." || id == "..":
		return bad("%q contains '#', '/' or '\\'", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return bad("contains control character %U", r)
		}
	}
	return nil
}

// JobKey is the OCRJob item's key.
func JobKey(imageID, jobID string) items.Key {
	return items.Key{PK: "IMAGE#" + imageID, SK: "OCR_JOB#" + jobID}
}

// RoutingKey is the routing item's key.
func RoutingKey(imageID, jobID string) items.Key {
	return items.Key{PK: "IMAGE#" + imageID, SK: "ROUTING#" + jobID}
}

// ImageKey is the Image item's key.
func ImageKey(imageID string) items.Key { return items.Key{PK: "IMAGE#" + imageID, SK: "IMAGE"} }

// SHA256Key is the key of the claim an image's bytes hold on their hash,
// per owner: the same bytes uploaded by two users are two images, so that
// neither learns of the other's. Without an owner (accounts off, and
// everything stored before them) the key is the old system's.
func SHA256Key(owner, sum string) items.Key {
	if owner == "" {
		return items.Key{PK: "IMAGE_SHA256#" + sum, SK: "IMAGE"}
	}
	return items.Key{PK: "IMAGE_SHA256#" + sum, SK: "IMAGE#OWNER#" + owner}
}

// Job is one OCRJob item.
type Job struct {
	ImageID     string
	JobID       string
	JobType     string
	Bucket      string // raw image's bucket (the blob store's name)
	Key         string // raw image's key
	Filename    string
	ContentType string
	SHA256      string // of the raw bytes, once known
	Force       bool   // skip duplicate detection
	Status      string
	Stage       string
	Reason      string // why the job FAILED
	DuplicateOf string // image id of the same bytes uploaded earlier
	// UploadBy is when a presigned upload expires; a job whose image has
	// not arrived by then (plus a grace period) cannot succeed.
	UploadBy  time.Time
	Attempts  int // arrival checks so far
	CreatedAt time.Time
	UpdatedAt time.Time
	// ResultKey is where the OCR result JSON is stored, once written.
	ResultKey    string
	ReceiptCount int
	ImageType    string
	// Owner is the user who uploaded it ("" when accounts are off).
	Owner string
}

const (
	attrStatus   = "status"
	attrStage    = "processing_stage"
	attrReason   = "failure_reason"
	attrUpdated  = "updated_at"
	attrGSI1PK   = "GSI1PK"
	attrGSI1SK   = "GSI1SK"
	statusPrefix = "OCR_JOB_STATUS#"
)

func (j Job) item() items.Item {
	k := JobKey(j.ImageID, j.JobID)
	it := items.Item{
		items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: TypeJob,
		"image_id": j.ImageID, "job_id": j.JobID, "job_type": j.JobType,
		"s3_bucket": j.Bucket, "s3_key": j.Key,
		attrStatus: j.Status, attrStage: j.Stage,
		"created_at": FormatTime(j.CreatedAt), attrUpdated: FormatTime(j.UpdatedAt),
		attrGSI1PK: statusPrefix + j.Status, attrGSI1SK: FormatTime(j.CreatedAt),
		"attempts": j.Attempts, "force": j.Force,
	}
	set := func(name, v string) {
		if v != "" {
			it[name] = v
		}
	}
	set("filename", j.Filename)
	set("content_type", j.ContentType)
	set("sha256", j.SHA256)
	set(attrReason, j.Reason)
	set("duplicate_of", j.DuplicateOf)
	set("result_s3_key", j.ResultKey)
	set("image_type", j.ImageType)
	set("owner", j.Owner)
	if !j.UploadBy.IsZero() {
		it["upload_expires_at"] = FormatTime(j.UploadBy)
	}
	if j.ReceiptCount > 0 {
		it["receipt_count"] = j.ReceiptCount
	}
	return it
}

// JobFromItem reads an OCRJob item.
func JobFromItem(it items.Item) (Job, error) {
	str := func(name string) string { s, _ := it[name].(string); return s }
	j := Job{
		ImageID: str("image_id"), JobID: str("job_id"), JobType: str("job_type"),
		Bucket: str("s3_bucket"), Key: str("s3_key"), Filename: str("filename"),
		ContentType: str("content_type"), SHA256: str("sha256"),
		Status: str(attrStatus), Stage: str(attrStage), Reason: str(attrReason),
		DuplicateOf: str("duplicate_of"), ResultKey: str("result_s3_key"), ImageType: str("image_type"), Owner: str("owner"),
		UploadBy: ParseTime(it["upload_expires_at"]), CreatedAt: ParseTime(it["created_at"]),
		UpdatedAt: ParseTime(it[attrUpdated]),
	}
	j.Force, _ = it["force"].(bool)
	if n, ok := items.Int64Of(it["attempts"]); ok {
		j.Attempts = int(n)
	}
	if n, ok := items.Int64Of(it["receipt_count"]); ok {
		j.ReceiptCount = int(n)
	}
	if j.ImageID == "" || j.JobID == "" || j.Key == "" || j.Status == "" {
		return j, fmt.Errorf("%w: %s/%s lacks image_id, job_id, s3_key or status", ErrMalformedJob, it.Key().PK, it.Key().SK)
	}
	return j, nil
}

// ErrMalformedJob means a stored OCRJob item lacks required fields.
var ErrMalformedJob = errors.New("malformed OCR job item")

// CreateJob writes a new PENDING job; a job with the same ids already
// existing is ErrConditionFailed (ids are random, so that is a bug or a
// replay).
func CreateJob(ctx context.Context, t items.Table, j Job) error {
	if err := ValidateID("image_id", j.ImageID); err != nil {
		return err
	}
	if err := ValidateID("job_id", j.JobID); err != nil {
		return err
	}
	now := time.Now()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	j.UpdatedAt = j.CreatedAt
	if j.Status == "" {
		j.Status = StatusPending
	}
	if j.Stage == "" {
		j.Stage = StagePending
	}
	if j.JobType == "" {
		j.JobType = JobTypeFirst
	}
	if err := t.Put(ctx, j.item(), items.Cond{Expr: "attribute_not_exists(PK)"}); err != nil {
		return fmt.Errorf("create OCR job %s for image %s: %w", j.JobID, j.ImageID, err)
	}
	return nil
}

// GetJob reads a job; tally.ErrNotFound when there is none.
func GetJob(ctx context.Context, t items.Table, imageID, jobID string) (Job, error) {
	if err := ValidateID("image_id", imageID); err != nil {
		return Job{}, err
	}
	if err := ValidateID("job_id", jobID); err != nil {
		return Job{}, err
	}
	it, err := t.Get(ctx, JobKey(imageID, jobID))
	if err != nil {
		return Job{}, fmt.Errorf("get OCR job %s of image %s: %w", jobID, imageID, err)
	}
	return JobFromItem(it)
}

// LatestJob returns the image's most recently created job; tally.ErrNotFound
// when the image has none.
func LatestJob(ctx context.Context, t items.Table, imageID string) (Job, error) {
	if err := ValidateID("image_id", imageID); err != nil {
		return Job{}, err
	}
	all, err := items.QueryAll(ctx, t, items.Query{PK: "IMAGE#" + imageID, SK: items.SKCond{Op: items.SKBeginsWith, Value: "OCR_JOB#"}})
	if err != nil {
		return Job{}, fmt.Errorf("list OCR jobs of image %s: %w", imageID, err)
	}
	var best Job
	found := false
	for _, it := range all {
		j, err := JobFromItem(it)
		if err != nil {
			return Job{}, err
		}
		if !found || j.CreatedAt.After(best.CreatedAt) {
			best, found = j, true
		}
	}
	if !found {
		return Job{}, fmt.Errorf("OCR jobs of image %s: %w", imageID, tally.ErrNotFound)
	}
	return best, nil
}

// SetStage records progress on a pending job. It never moves a finished
// job: a redelivered message for a COMPLETED or FAILED job gets
// ErrConditionFailed and should be dropped.
func SetStage(ctx context.Context, t items.Table, imageID, jobID, stage string, now time.Time) error {
	_, err := t.Update(ctx, JobKey(imageID, jobID), items.Update{
		Expr:   "SET #stage = :stage, #upd = :now",
		Cond:   "attribute_exists(PK) AND #status = :pending",
		Names:  map[string]string{"#stage": attrStage, "#upd": attrUpdated, "#status": attrStatus},
		Values: map[string]any{":stage": stage, ":now": FormatTime(now), ":pending": StatusPending},
	})
	if err != nil {
		return fmt.Errorf("set OCR job %s stage %s: %w", jobID, stage, err)
	}
	return nil
}

// CountAttempt increments the job's arrival checks and returns the count.
func CountAttempt(ctx context.Context, t items.Table, imageID, jobID string, now time.Time) (int, error) {
	it, err := t.Update(ctx, JobKey(imageID, jobID), items.Update{
		Expr:   "SET #upd = :now ADD attempts :one",
		Cond:   "attribute_exists(PK)",
		Names:  map[string]string{"#upd": attrUpdated},
		Values: map[string]any{":now": FormatTime(now), ":one": 1},
	})
	if err != nil {
		return 0, fmt.Errorf("count OCR job %s attempt: %w", jobID, err)
	}
	n, _ := items.Int64Of(it["attempts"])
	return int(n), nil
}

// Fail marks a pending job FAILED with its reason. Failing a job that is
// already finished is a no-op.
func Fail(ctx context.Context, t items.Table, imageID, jobID, reason string, now time.Time) error {
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	_, err := t.Update(ctx, JobKey(imageID, jobID), items.Update{
		Expr:   "SET #status = :failed, #stage = :failed, #reason = :reason, #upd = :now, #g1 = :g1",
		Cond:   "attribute_exists(PK) AND #status = :pending",
		Names:  map[string]string{"#status": attrStatus, "#stage": attrStage, "#reason": attrReason, "#upd": attrUpdated, "#g1": attrGSI1PK},
		Values: map[string]any{":failed": StatusFailed, ":reason": reason, ":now": FormatTime(now), ":pending": StatusPending, ":g1": statusPrefix + StatusFailed},
	})
	if errors.Is(err, tally.ErrConditionFailed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fail OCR job %s: %w", jobID, err)
	}
	return nil
}

// Completion is what a finished job records.
type Completion struct {
	SHA256       string
	ResultKey    string
	ReceiptCount int
	ImageType    string
	DuplicateOf  string // set instead of a result when the bytes were seen before
}

// Complete marks a job COMPLETED, in the same transaction as writes (the
// routing item, the image item) so they land together or not at all. A job
// already COMPLETED makes it a no-op returning nil (redelivery); a FAILED
// one is ErrConditionFailed.
func Complete(ctx context.Context, t items.Table, imageID, jobID string, c Completion, now time.Time, writes ...items.Write) error {
	stage := StageCompleted
	if c.DuplicateOf != "" {
		stage = StageDuplicate
	}
	expr := "SET #status = :done, #stage = :stage, #upd = :now, #g1 = :g1, receipt_count = :n"
	vals := map[string]any{":done": StatusCompleted, ":stage": stage, ":now": FormatTime(now), ":g1": statusPrefix + StatusCompleted, ":n": c.ReceiptCount, ":pending": StatusPending}
	for name, v := range map[string]string{"sha256": c.SHA256, "result_s3_key": c.ResultKey, "image_type": c.ImageType, "duplicate_of": c.DuplicateOf} {
		if v != "" {
			expr += ", " + name + " = :" + name
			vals[":"+name] = v
		}
	}
	w := items.UpdateWrite(JobKey(imageID, jobID), expr, items.Cond{
		Expr:   "attribute_exists(PK) AND #status = :pending",
		Names:  map[string]string{"#status": attrStatus, "#stage": attrStage, "#upd": attrUpdated, "#g1": attrGSI1PK},
		Values: vals,
	})
	err := t.TransactWrite(ctx, append([]items.Write{w}, writes...))
	if err == nil {
		return nil
	}
	if errors.Is(err, tally.ErrConditionFailed) {
		j, gerr := GetJob(ctx, t, imageID, jobID)
		if gerr == nil && j.Status == StatusCompleted {
			return nil
		}
	}
	return fmt.Errorf("complete OCR job %s: %w", jobID, err)
}

// ReceiptSummary is one receipt of a routing decision, for upload-status.
type ReceiptSummary struct {
	ReceiptID    int    `json:"receipt_id"`
	ClusterID    int    `json:"cluster_id"`
	WarpedWidth  int    `json:"warped_width"`
	WarpedHeight int    `json:"warped_height"`
	CropKey      string `json:"s3_key,omitempty"`
	Lines        int    `json:"lines"`
}

// Routing is the OCRRoutingDecision: where the result is and how many
// receipts the process stage should expect.
type Routing struct {
	ImageID      string
	JobID        string
	Bucket       string
	ResultKey    string
	ReceiptCount int
	ImageType    string
	Engine       string
	Status       string // PENDING until the process stage finishes
	Receipts     []ReceiptSummary
	CreatedAt    time.Time
}

// RoutingWrite is the transaction write that stores r (with Complete).
func RoutingWrite(r Routing) items.Write {
	k := RoutingKey(r.ImageID, r.JobID)
	recs := make([]any, len(r.Receipts))
	for i, s := range r.Receipts {
		recs[i] = map[string]any{"receipt_id": s.ReceiptID, "cluster_id": s.ClusterID,
			"warped_width": s.WarpedWidth, "warped_height": s.WarpedHeight, "s3_key": s.CropKey, "lines": s.Lines}
	}
	if r.Status == "" {
		r.Status = StatusPending
	}
	return items.PutWrite(items.Item{
		items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: TypeRouting,
		"image_id": r.ImageID, "job_id": r.JobID, "s3_bucket": r.Bucket, "s3_key": r.ResultKey,
		"receipt_count": r.ReceiptCount, "image_type": r.ImageType, "engine": r.Engine,
		attrStatus: r.Status, "receipts": recs,
		"created_at": FormatTime(r.CreatedAt), attrUpdated: FormatTime(r.CreatedAt),
	}, items.Cond{})
}

// GetRouting reads a routing item; tally.ErrNotFound when there is none.
func GetRouting(ctx context.Context, t items.Table, imageID, jobID string) (Routing, error) {
	it, err := t.Get(ctx, RoutingKey(imageID, jobID))
	if err != nil {
		return Routing{}, fmt.Errorf("get routing of job %s: %w", jobID, err)
	}
	str := func(name string) string { s, _ := it[name].(string); return s }
	r := Routing{ImageID: str("image_id"), JobID: str("job_id"), Bucket: str("s3_bucket"), ResultKey: str("s3_key"),
		ImageType: str("image_type"), Engine: str("engine"), Status: str(attrStatus), CreatedAt: ParseTime(it["created_at"])}
	if n, ok := items.Int64Of(it["receipt_count"]); ok {
		r.ReceiptCount = int(n)
	}
	list, _ := it["receipts"].([]any)
	for _, v := range list {
		m, _ := v.(map[string]any)
		num := func(name string) int { n, _ := items.Int64Of(m[name]); return int(n) }
		s, _ := m["s3_key"].(string)
		r.Receipts = append(r.Receipts, ReceiptSummary{ReceiptID: num("receipt_id"), ClusterID: num("cluster_id"),
			WarpedWidth: num("warped_width"), WarpedHeight: num("warped_height"), CropKey: s, Lines: num("lines")})
	}
	return r, nil
}

// Image is the part of the Image item the OCR stage knows; the process
// stage completes it.
type Image struct {
	ImageID   string
	Width     int
	Height    int
	Bucket    string
	Key       string
	SHA256    string
	ImageType string
	Added     time.Time
	Owner     string
}

// ImageWrite stores (or refreshes) the Image item's OCR-stage fields
// without touching fields the process stage adds.
func ImageWrite(im Image) items.Write {
	k := ImageKey(im.ImageID)
	expr := "SET #type = :type, image_id = :id, width = :w, height = :h, raw_s3_bucket = :b, raw_s3_key = :k, " +
		"sha256 = :sha, image_type = :it, timestamp_added = if_not_exists(timestamp_added, :added)"
	values := map[string]any{":type": TypeImage, ":id": im.ImageID, ":w": im.Width, ":h": im.Height, ":b": im.Bucket,
		":k": im.Key, ":sha": im.SHA256, ":it": im.ImageType, ":added": FormatTime(im.Added)}
	names := map[string]string{"#type": items.AttrType}
	if im.Owner != "" {
		expr += ", #owner = :owner"
		names["#owner"], values[":owner"] = "owner", im.Owner
	}
	return items.UpdateWrite(k, expr, items.Cond{Names: names, Values: values})
}

// ImageOwner returns the user an image belongs to ("" when it has none);
// tally.ErrNotFound when there is no such image.
func ImageOwner(ctx context.Context, t items.Table, imageID string) (string, error) {
	it, err := t.Get(ctx, ImageKey(imageID))
	if err != nil {
		return "", fmt.Errorf("image %s: %w", imageID, err)
	}
	owner, _ := it["owner"].(string)
	return owner, nil
}

// ClaimSHA256 records that imageID holds the bytes with this hash and
// returns the image that holds them: imageID itself when the claim is new
// (or already its own), the earlier image otherwise.
func ClaimSHA256(ctx context.Context, t items.Table, owner, sum, imageID string, now time.Time) (string, error) {
	k := SHA256Key(owner, sum)
	err := t.Put(ctx, items.Item{items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: TypeSHA256,
		"image_id": imageID, "sha256": sum, "created_at": FormatTime(now)}, items.Cond{Expr: "attribute_not_exists(PK)"})
	if err == nil {
		return imageID, nil
	}
	if !errors.Is(err, tally.ErrConditionFailed) {
		return "", fmt.Errorf("claim sha256 %s: %w", sum, err)
	}
	return LookupSHA256(ctx, t, owner, sum)
}

// LookupSHA256 returns the image holding bytes with this hash, or
// tally.ErrNotFound.
func LookupSHA256(ctx context.Context, t items.Table, owner, sum string) (string, error) {
	it, err := t.Get(ctx, SHA256Key(owner, sum))
	if err != nil {
		return "", fmt.Errorf("look up sha256 %s: %w", sum, err)
	}
	id, _ := it["image_id"].(string)
	if id == "" {
		return "", fmt.Errorf("sha256 %s claim has no image_id: %w", sum, ErrMalformedJob)
	}
	return id, nil
}

// JobMessage is the ocr-jobs message.
type JobMessage struct {
	JobID   string `json:"job_id"`
	ImageID string `json:"image_id"`
}

// ResultMessage is the ocr-results message.
type ResultMessage struct {
	ImageID      string `json:"image_id"`
	JobID        string `json:"job_id"`
	S3Key        string `json:"s3_key"`
	S3Bucket     string `json:"s3_bucket"`
	ReceiptCount int    `json:"receipt_count"`
}

// DecodeJobMessage parses and checks an ocr-jobs message; a bad one is
// tally.ErrInvalidArgument.
func DecodeJobMessage(body string) (JobMessage, error) {
	var m JobMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return m, fmt.Errorf("ocr job message: %v: %w", err, tally.ErrInvalidArgument)
	}
	if err := ValidateID("image_id", m.ImageID); err != nil {
		return m, fmt.Errorf("ocr job message: %w", err)
	}
	if err := ValidateID("job_id", m.JobID); err != nil {
		return m, fmt.Errorf("ocr job message: %w", err)
	}
	return m, nil
}

// DecodeResultMessage parses and checks an ocr-results message.
func DecodeResultMessage(body string) (ResultMessage, error) {
	var m ResultMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return m, fmt.Errorf("ocr result message: %v: %w", err, tally.ErrInvalidArgument)
	}
	if err := ValidateID("image_id", m.ImageID); err != nil {
		return m, fmt.Errorf("ocr result message: %w", err)
	}
	if err := ValidateID("job_id", m.JobID); err != nil {
		return m, fmt.Errorf("ocr result message: %w", err)
	}
	if m.S3Key == "" || m.ReceiptCount < 0 {
		return m, fmt.Errorf("ocr result message: missing s3_key or negative receipt_count: %w", tally.ErrInvalidArgument)
	}
	return m, nil
}

// Encode marshals a message body.
func Encode(m any) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// JobsWithStatus lists up to limit jobs in a status, newest first, through
// the jobs' status index (GSI1), so that failed uploads can be shown
// without scanning the table.
func JobsWithStatus(ctx context.Context, t items.Table, status string, limit int) ([]Job, error) {
	page, err := t.Query(ctx, items.Query{Index: "GSI1", PK: statusPrefix + status, Reverse: true, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("list %s OCR jobs: %w", status, err)
	}
	out := make([]Job, 0, len(page.Items))
	for _, it := range page.Items {
		j, err := JobFromItem(it)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}
