// Package config resolves where each port lives. Every port is chosen by a
// URL (sqlite://PATH, file://DIR, later sqs://…, s3://bucket/prefix,
// dynamodb://Table); anything left unset falls back to an embedded default
// under one data directory, so a fresh machine needs no configuration.
package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/queue"
)

// Environment variables read by FromEnv. Flags override them.
const (
	EnvDataDir  = "TALLY_DATA_DIR"
	EnvAddr     = "TALLY_ADDR"
	EnvQueueURL = "TALLY_QUEUE_URL"
	EnvBlobURL  = "TALLY_BLOB_URL"
	EnvItemsURL = "TALLY_ITEMS_URL"
	EnvBaseURL  = "TALLY_PUBLIC_URL"
	EnvLog      = "TALLY_LOG_FORMAT"

	EnvEmbedderURL = "TALLY_EMBEDDER_URL"
	// EnvLLMURL names an LLM that refines the rules' receipt labels
	// (openai://MODEL[?base=…]); empty means rules only.
	EnvLLMURL      = "TALLY_LLM_URL"
	EnvVectorMode  = "TALLY_VECTOR_MODE"
	EnvVectorMount = "TALLY_VECTOR_MOUNT"
	EnvCacheDir    = "TALLY_CACHE_DIR"
	// EnvCacheMaxBytes caps the vector cache's local copies (bytes).
	EnvCacheMaxBytes = "TALLY_CACHE_MAX_BYTES"
	// EnvSearchFirstBytes bounds what a cold search reader loads before it
	// answers (bytes; 0 loads everything first).
	EnvSearchFirstBytes = "TALLY_SEARCH_FIRST_BYTES"

	EnvTesseract = "TALLY_TESSERACT"
	// EnvOCREngine picks the OCR engine: tesseract, paddle or auto.
	EnvOCREngine = "TALLY_OCR_ENGINE"
	// EnvPaddleDir holds ONNX Runtime and the PaddleOCR models.
	EnvPaddleDir = "TALLY_PADDLE_DIR"
	// EnvOCRThreads is the threads each image's OCR may use.
	EnvOCRThreads = "TALLY_OCR_THREADS"
	EnvOCRWorkers = "TALLY_OCR_WORKERS"
	// EnvVisibility is how long a worker keeps the messages it receives
	// hidden (a Go duration such as 30s); see Config.Visibility.
	EnvVisibility = "TALLY_VISIBILITY"
	EnvMaxUpload  = "TALLY_MAX_UPLOAD_BYTES"
	EnvMaxPixels  = "TALLY_MAX_PIXELS"
	EnvRenditions = "TALLY_RENDITIONS"
	// EnvRenditionSizes lists the renditions' long sides in pixels, comma
	// separated, "full" for full size (e.g. "300,full").
	EnvRenditionSizes = "TALLY_RENDITION_SIZES"

	EnvVectorBlobURL = "TALLY_VECTOR_BLOB_URL"
	EnvAssetsBlobURL = "TALLY_ASSETS_BLOB_URL"
	EnvAWSEndpoint   = "TALLY_AWS_ENDPOINT"
	EnvRole          = "TALLY_ROLE"

	// Explicit SQS queue URLs, for queues whose names do not follow
	// Tally's (prefix + ocr-jobs, ocr-results, compaction).
	EnvOCRJobsQueueURL    = "TALLY_OCR_JOBS_QUEUE_URL"
	EnvOCRResultsQueueURL = "TALLY_OCR_RESULTS_QUEUE_URL"
	EnvCompactionQueueURL = "TALLY_COMPACTION_QUEUE_URL"
)

// The old system's environment variable names, accepted where they mean
// the same as one of Tally's so its Lambda configuration carries over.
// Tally's own name wins when both are set.
const (
	SeedTableName       = "DYNAMO_TABLE_NAME"     // → TALLY_ITEMS_URL=dynamodb://NAME
	SeedOCRJobsQueue    = "OCR_JOB_QUEUE_URL"     // → TALLY_OCR_JOBS_QUEUE_URL
	SeedOCRResultsQueue = "OCR_RESULTS_QUEUE_URL" // → TALLY_OCR_RESULTS_QUEUE_URL
	SeedVectorBucket    = "CHROMADB_BUCKET"       // → TALLY_VECTOR_BLOB_URL=s3://BUCKET
	SeedStorageMode     = "CHROMADB_STORAGE_MODE" // → TALLY_VECTOR_MODE
	SeedChromaRoot      = "CHROMA_ROOT"           // → TALLY_VECTOR_MOUNT
)

// Queue names the explicit queue URLs map to; they equal the pipeline's
// (config cannot import pipeline, which imports the ports).
const (
	queueOCRJobs    = "ocr-jobs"
	queueOCRResults = "ocr-results"
	queueCompaction = "compaction"
)

// Defaults for a single machine.
const (
	DefaultDataDir = "tally-data"
	DefaultAddr    = "127.0.0.1:8080"
	// DefaultEmbedderURL is the offline hashed n-gram embedder.
	DefaultEmbedderURL = "hashed://512"
)

// Config is the resolved configuration of one process.
type Config struct {
	DataDir   string
	Addr      string // listen address of tally serve
	PublicURL string // how clients reach tally serve (presigned URLs); derived from Addr when empty
	QueueURL  string
	BlobURL   string
	ItemsURL  string
	// VectorBlobURL is where vector segments live (default: BlobURL);
	// AssetsBlobURL is where renditions go (default: BlobURL).
	VectorBlobURL string
	AssetsBlobURL string
	// QueueURLs maps pipeline queue names to explicit SQS queue URLs.
	QueueURLs map[string]string
	// AWSEndpoint points every AWS client at an emulator (moto_server).
	AWSEndpoint string
	// Role is the Lambda handler to run (process, compact, ocr, upload);
	// empty means the handler name decides.
	Role      string
	LogFormat string // "text", "json" or "" (text on a terminal, JSON otherwise)

	EmbedderURL string
	// LLMURL, when set, names the LLM that refines the rules' receipt
	// labels (label/llm's URL form); empty labels with the rules alone.
	LLMURL string
	// VectorMode is where readers get segments: s3 (object store + local
	// cache), efs, efs-copy or auto; VectorMount is the shared directory
	// for the efs modes.
	VectorMode  string
	VectorMount string
	// CacheDir holds local copies of vector segments.
	CacheDir string
	// CacheMaxBytes caps those copies: past it, copies of segments no open
	// version uses are deleted, least recently used first (the files the
	// open versions use are never deleted). 0 keeps only those in use,
	// the right size for Lambda's /tmp.
	CacheMaxBytes int64
	// SearchFirstBytes lets the API's search reader answer from the newest
	// segments, up to this many bytes, while the older ones arrive
	// (responses say "partial" until then); 0 loads everything first.
	SearchFirstBytes int64

	// Tesseract is the tesseract binary (default: found on PATH).
	Tesseract string
	// OCREngine is tesseract, paddle, or auto (the default: paddle when
	// its library and models are installed, else tesseract).
	OCREngine string
	// PaddleDir holds ONNX Runtime and the PaddleOCR models (default
	// DefaultPaddleDir).
	PaddleDir string
	// OCRThreads is the threads one image's OCR may use; 0 means 1, and
	// OCRWorkers images run at once.
	OCRThreads int
	// OCRWorkers is how many images one OCR worker analyses at once (one
	// single-threaded Tesseract each); 0 means one per core.
	OCRWorkers int
	// MaxUploadBytes bounds one uploaded image (default 25 MiB).
	MaxUploadBytes int64
	// MaxPixels bounds an image's pixel count, checked from its header
	// before decoding (default 64 million).
	MaxPixels int64
	// Renditions turns on JPEG/WebP/AVIF renditions in the process stage
	// (on by default from FromEnv; TALLY_RENDITIONS=false turns them off).
	Renditions bool
	// RenditionSizes are the renditions' long sides in pixels, 0 for full
	// size; nil means the renditions package's defaults (300, 600, 1200
	// and full). Fewer sizes cost less storage and CPU per receipt.
	RenditionSizes []int
	// Visibility is how long the messages a worker receives stay hidden
	// before another worker may take them; a heartbeat extends it every
	// third of it while they are worked on. It is what a killed worker's
	// messages wait before they are tried again, so a shorter one makes
	// recovery faster at the cost of more heartbeat calls. 0 means each
	// stage's default (2 minutes); Lambda handlers use the queue's own.
	Visibility time.Duration
	// Bad holds environment values that did not parse; Resolve reports them.
	Bad []string
}

// OCR engines, as OCREngine names them.
const (
	OCRTesseract = "tesseract"
	OCRPaddle    = "paddle"
	OCRAuto      = "auto"
)

// DefaultPaddleDir is where `make deps-ocr` installs ONNX Runtime and the
// PaddleOCR models: the user's cache directory, outside any checkout, so
// that every clone and build shares one copy.
func DefaultPaddleDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "tally", "paddle")
}

// MinVisibility is the shortest Config.Visibility: the heartbeat runs
// every third of it, and below a few seconds one slow queue call would
// let a message reappear while it is still being worked on.
const MinVisibility = 3 * time.Second

// DefaultMaxUploadBytes is the default upload body limit.
const DefaultMaxUploadBytes = 25 << 20

// DefaultSearchFirstBytes is what a cold search reader loads before its
// first answer: a few segments, well under a second from S3 in-region.
const DefaultSearchFirstBytes = 256 << 20

// FromEnv reads the configuration from the environment; unset fields stay
// empty until Resolve fills them.
func FromEnv() Config {
	c := Config{
		DataDir:   os.Getenv(EnvDataDir),
		Addr:      os.Getenv(EnvAddr),
		PublicURL: os.Getenv(EnvBaseURL),
		QueueURL:  os.Getenv(EnvQueueURL),
		BlobURL:   os.Getenv(EnvBlobURL),
		ItemsURL:  os.Getenv(EnvItemsURL),
		LogFormat: os.Getenv(EnvLog),

		VectorBlobURL: os.Getenv(EnvVectorBlobURL),
		AssetsBlobURL: os.Getenv(EnvAssetsBlobURL),
		AWSEndpoint:   os.Getenv(EnvAWSEndpoint),
		Role:          os.Getenv(EnvRole),

		EmbedderURL: os.Getenv(EnvEmbedderURL),
		LLMURL:      os.Getenv(EnvLLMURL),
		VectorMode:  os.Getenv(EnvVectorMode),
		VectorMount: os.Getenv(EnvVectorMount),
		CacheDir:    os.Getenv(EnvCacheDir),
		Tesseract:   os.Getenv(EnvTesseract),
		OCREngine:   os.Getenv(EnvOCREngine),
		PaddleDir:   os.Getenv(EnvPaddleDir),
		Renditions:  true,

		SearchFirstBytes: DefaultSearchFirstBytes,
	}
	c.applySeed(os.Getenv)
	if v := os.Getenv(EnvSearchFirstBytes); v != "" {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil || x < 0 {
			c.Bad = append(c.Bad, EnvSearchFirstBytes+"="+v)
		} else {
			c.SearchFirstBytes = x
		}
	}
	if v := os.Getenv(EnvRenditions); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			c.Bad = append(c.Bad, EnvRenditions+"="+v)
		}
		c.Renditions = b
	}
	if v := os.Getenv(EnvRenditionSizes); v != "" {
		sizes, err := ParseRenditionSizes(v)
		if err != nil {
			c.Bad = append(c.Bad, EnvRenditionSizes+"="+v)
		}
		c.RenditionSizes = sizes
	}
	for _, n := range []struct {
		env string
		dst *int64
	}{{EnvMaxUpload, &c.MaxUploadBytes}, {EnvMaxPixels, &c.MaxPixels}, {EnvCacheMaxBytes, &c.CacheMaxBytes}} {
		if v := os.Getenv(n.env); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x <= 0 {
				c.Bad = append(c.Bad, n.env+"="+v)
				continue
			}
			*n.dst = x
		}
	}
	for _, n := range []struct {
		env string
		dst *int
	}{{EnvOCRWorkers, &c.OCRWorkers}, {EnvOCRThreads, &c.OCRThreads}} {
		if v := os.Getenv(n.env); v != "" {
			x, err := strconv.Atoi(v)
			if err != nil || x < 0 {
				c.Bad = append(c.Bad, n.env+"="+v)
			} else {
				*n.dst = x
			}
		}
	}
	if v := os.Getenv(EnvVisibility); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			c.Bad = append(c.Bad, EnvVisibility+"="+v)
		} else {
			c.Visibility = d
		}
	}
	return c
}

// applySeed fills fields still empty from the old system's names, and the
// explicit queue URLs from Tally's or the old system's names.
func (c *Config) applySeed(getenv func(string) string) {
	if c.ItemsURL == "" {
		if t := getenv(SeedTableName); t != "" {
			c.ItemsURL = "dynamodb://" + t
		}
	}
	if c.VectorBlobURL == "" {
		if b := getenv(SeedVectorBucket); b != "" {
			c.VectorBlobURL = "s3://" + b
		}
	}
	if c.VectorMode == "" {
		c.VectorMode = getenv(SeedStorageMode)
	}
	if c.VectorMount == "" {
		c.VectorMount = getenv(SeedChromaRoot)
	}
	for _, q := range []struct{ name, own, seed string }{
		{queueOCRJobs, EnvOCRJobsQueueURL, SeedOCRJobsQueue},
		{queueOCRResults, EnvOCRResultsQueueURL, SeedOCRResultsQueue},
		{queueCompaction, EnvCompactionQueueURL, ""},
	} {
		v := getenv(q.own)
		if v == "" && q.seed != "" {
			v = getenv(q.seed)
		}
		if v == "" {
			continue
		}
		if c.QueueURLs == nil {
			c.QueueURLs = map[string]string{}
		}
		c.QueueURLs[q.name] = v
	}
	if c.QueueURL == "" && len(c.QueueURLs) > 0 {
		c.QueueURL = "sqs://"
	}
}

// Resolve fills every empty field with its embedded default and checks the
// port URLs parse. The data directory is made absolute so that every port
// URL derived from it is unambiguous.
func (c Config) Resolve() (Config, error) {
	if len(c.Bad) > 0 {
		return c, fmt.Errorf("environment: %s: want positive integers (a boolean for %s, sizes such as 300,full for %s, a duration such as 30s for %s): %w", strings.Join(c.Bad, ", "), EnvRenditions, EnvRenditionSizes, EnvVisibility, tally.ErrInvalidArgument)
	}
	for _, n := range c.RenditionSizes {
		if n < 0 {
			return c, fmt.Errorf("rendition size %d: want a positive number of pixels or 0 (full size): %w", n, tally.ErrInvalidArgument)
		}
	}
	if c.MaxUploadBytes < 0 || c.MaxPixels < 0 || c.OCRWorkers < 0 || c.CacheMaxBytes < 0 {
		return c, fmt.Errorf("max upload bytes %d, max pixels %d, OCR workers %d, cache max bytes %d: none may be negative: %w", c.MaxUploadBytes, c.MaxPixels, c.OCRWorkers, c.CacheMaxBytes, tally.ErrInvalidArgument)
	}
	if c.Visibility < 0 || c.Visibility > 0 && c.Visibility < MinVisibility || c.Visibility > queue.MaxVisibility {
		return c, fmt.Errorf("visibility %v: want %v to %v (0 for the default): %w", c.Visibility, MinVisibility, queue.MaxVisibility, tally.ErrInvalidArgument)
	}
	if c.OCRThreads < 0 {
		return c, fmt.Errorf("OCR threads %d: may not be negative: %w", c.OCRThreads, tally.ErrInvalidArgument)
	}
	switch c.OCREngine {
	case "":
		c.OCREngine = OCRAuto
	case OCRTesseract, OCRPaddle, OCRAuto:
	default:
		return c, fmt.Errorf("OCR engine %q: want %s, %s or %s: %w", c.OCREngine, OCRTesseract, OCRPaddle, OCRAuto, tally.ErrInvalidArgument)
	}
	if c.PaddleDir == "" {
		c.PaddleDir = DefaultPaddleDir()
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return c, fmt.Errorf("data directory %q: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	if c.QueueURL == "" {
		c.QueueURL = "sqlite://" + filepath.Join(c.DataDir, "queue.db")
	}
	if c.BlobURL == "" {
		c.BlobURL = "file://" + filepath.Join(c.DataDir, "blobs")
	}
	if c.ItemsURL == "" {
		c.ItemsURL = "sqlite://" + filepath.Join(c.DataDir, "items.db")
	}
	if c.VectorBlobURL == "" {
		c.VectorBlobURL = c.BlobURL
	}
	if c.AssetsBlobURL == "" {
		c.AssetsBlobURL = c.BlobURL
	}
	for name, u := range c.QueueURLs {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return c, fmt.Errorf("queue %s: URL %q is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME): %w", name, u, tally.ErrInvalidArgument)
		}
	}
	if len(c.QueueURLs) > 0 && !strings.HasPrefix(c.QueueURL, "sqs://") {
		return c, fmt.Errorf("explicit SQS queue URLs are set but the queue backend is %s: %w", c.QueueURL, tally.ErrInvalidArgument)
	}
	switch c.Role {
	case "", "process", "compact", "ocr", "upload":
	default:
		return c, fmt.Errorf("role %q (%s): want process, compact, ocr or upload: %w", c.Role, EnvRole, tally.ErrInvalidArgument)
	}
	if c.EmbedderURL == "" {
		c.EmbedderURL = DefaultEmbedderURL
	}
	if c.VectorMode == "" {
		c.VectorMode = "s3"
	}
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(c.DataDir, "vector-cache")
	}
	switch c.VectorMode {
	case "s3", "efs", "efs-copy", "auto":
	default:
		return c, fmt.Errorf("vector mode %q: want s3, efs, efs-copy or auto: %w", c.VectorMode, tally.ErrInvalidArgument)
	}
	if c.VectorMode != "s3" && c.VectorMount == "" {
		return c, fmt.Errorf("vector mode %s needs a mount directory (%s): %w", c.VectorMode, EnvVectorMount, tally.ErrInvalidArgument)
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return c, fmt.Errorf("log format %q: want text or json: %w", c.LogFormat, tally.ErrInvalidArgument)
	}
	for _, u := range []struct{ port, url string }{{"queue", c.QueueURL}, {"blob", c.BlobURL}, {"items", c.ItemsURL}, {"vector blob", c.VectorBlobURL}, {"assets blob", c.AssetsBlobURL}, {"embedder", c.EmbedderURL}} {
		if _, err := ParseURL(u.url); err != nil {
			return c, fmt.Errorf("%s: %w", u.port, err)
		}
	}
	return c, nil
}

// PortURL is a parsed port URL: a scheme naming the backend and a location
// whose meaning is the backend's (a path, a bucket and prefix, a table).
type PortURL struct {
	Scheme string
	// Path is the local path for sqlite:// and file:// (absolute or
	// relative), or host + path for the others (bucket/prefix, Table).
	Path  string
	Query url.Values
}

// ParseURL splits a port URL. sqlite:///abs/path and sqlite://rel/path are
// both accepted, since people write both. Only sqs:// may have an empty
// location (its location is an optional queue-name prefix).
func ParseURL(raw string) (PortURL, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return PortURL{}, fmt.Errorf("port URL %q: want scheme://location: %w", raw, tally.ErrInvalidArgument)
	}
	loc, rawQuery, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return PortURL{}, fmt.Errorf("port URL %q: query: %v: %w", raw, err, tally.ErrInvalidArgument)
	}
	if loc == "" && !strings.EqualFold(scheme, "sqs") {
		return PortURL{}, fmt.Errorf("port URL %q: empty location: %w", raw, tally.ErrInvalidArgument)
	}
	return PortURL{Scheme: strings.ToLower(scheme), Path: loc, Query: q}, nil
}

// ParseRenditionSizes reads a list of rendition long sides such as
// "300,600,full": positive pixel counts, "full" (or 0) for full size.
func ParseRenditionSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "full" {
			sizes = append(sizes, 0)
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("rendition size %q: want a positive number of pixels or full: %w", f, tally.ErrInvalidArgument)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
