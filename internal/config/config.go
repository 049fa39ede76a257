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

	"github.com/tallyhq/tally"
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
	EnvVectorMode  = "TALLY_VECTOR_MODE"
	EnvVectorMount = "TALLY_VECTOR_MOUNT"
	EnvCacheDir    = "TALLY_CACHE_DIR"

	EnvTesseract  = "TALLY_TESSERACT"
	EnvOCRWorkers = "TALLY_OCR_WORKERS"
	EnvMaxUpload  = "TALLY_MAX_UPLOAD_BYTES"
	EnvMaxPixels  = "TALLY_MAX_PIXELS"
	EnvRenditions = "TALLY_RENDITIONS"
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
	LogFormat string // "text", "json" or "" (text on a terminal, JSON otherwise)

	EmbedderURL string
	// VectorMode is where readers get segments: s3 (object store + local
	// cache), efs, efs-copy or auto; VectorMount is the shared directory
	// for the efs modes.
	VectorMode  string
	VectorMount string
	// CacheDir holds local copies of vector segments.
	CacheDir string

	// Tesseract is the tesseract binary (default: found on PATH).
	Tesseract string
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
	// Bad holds environment values that did not parse; Resolve reports them.
	Bad []string
}

// DefaultMaxUploadBytes is the default upload body limit.
const DefaultMaxUploadBytes = 25 << 20

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

		EmbedderURL: os.Getenv(EnvEmbedderURL),
		VectorMode:  os.Getenv(EnvVectorMode),
		VectorMount: os.Getenv(EnvVectorMount),
		CacheDir:    os.Getenv(EnvCacheDir),
		Tesseract:   os.Getenv(EnvTesseract),
		Renditions:  true,
	}
	if v := os.Getenv(EnvRenditions); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			c.Bad = append(c.Bad, EnvRenditions+"="+v)
		}
		c.Renditions = b
	}
	for _, n := range []struct {
		env string
		dst *int64
	}{{EnvMaxUpload, &c.MaxUploadBytes}, {EnvMaxPixels, &c.MaxPixels}} {
		if v := os.Getenv(n.env); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x <= 0 {
				c.Bad = append(c.Bad, n.env+"="+v)
				continue
			}
			*n.dst = x
		}
	}
	if v := os.Getenv(EnvOCRWorkers); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 {
			c.Bad = append(c.Bad, EnvOCRWorkers+"="+v)
		} else {
			c.OCRWorkers = x
		}
	}
	return c
}

// Resolve fills every empty field with its embedded default and checks the
// port URLs parse. The data directory is made absolute so that every port
// URL derived from it is unambiguous.
func (c Config) Resolve() (Config, error) {
	if len(c.Bad) > 0 {
		return c, fmt.Errorf("environment: %s: want positive integers (or a boolean for %s): %w", strings.Join(c.Bad, ", "), EnvRenditions, tally.ErrInvalidArgument)
	}
	if c.MaxUploadBytes < 0 || c.MaxPixels < 0 || c.OCRWorkers < 0 {
		return c, fmt.Errorf("max upload bytes %d, max pixels %d, OCR workers %d: none may be negative: %w", c.MaxUploadBytes, c.MaxPixels, c.OCRWorkers, tally.ErrInvalidArgument)
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
	for _, u := range []struct{ port, url string }{{"queue", c.QueueURL}, {"blob", c.BlobURL}, {"items", c.ItemsURL}, {"embedder", c.EmbedderURL}} {
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
// both accepted, since people write both.
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
	if loc == "" {
		return PortURL{}, fmt.Errorf("port URL %q: empty location: %w", raw, tally.ErrInvalidArgument)
	}
	return PortURL{Scheme: strings.ToLower(scheme), Path: loc, Query: q}, nil
}
