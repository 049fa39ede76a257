package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	"github.com/tallyhq/tally/embed"
	embedcache "github.com/tallyhq/tally/embed/cache"
	"github.com/tallyhq/tally/embed/coalesce"
	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/embed/openai"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/places"
	"github.com/tallyhq/tally/places/google"
	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	"github.com/tallyhq/tally/vector"
)

// ports are the opened backends of one process. This file is the one place
// that knows every backend: it turns port URLs into adapters.
type ports struct {
	Queue    queue.Broker
	Blob     blob.Store
	Items    items.Table
	Embedder embed.Embedder
	// BlobHandler serves presigned URLs when the blob backend needs tally
	// serve to do so (the file backend); nil otherwise.
	BlobHandler http.Handler
}

// Close closes every opened backend.
func (p *ports) Close() error {
	var errs []error
	if p.Queue != nil {
		errs = append(errs, p.Queue.Close())
	}
	if p.Items != nil {
		errs = append(errs, p.Items.Close())
	}
	return errors.Join(errs...)
}

// openPorts opens the backends named by cfg's URLs.
func openPorts(ctx context.Context, cfg config.Config) (*ports, error) {
	p := &ports{}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()

	u, err := config.ParseURL(cfg.QueueURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "sqlite":
		if p.Queue, err = queuesqlite.Open(ctx, localPath(u.Path)); err != nil {
			return nil, fmt.Errorf("open queue %s: %w", cfg.QueueURL, err)
		}
	default:
		return nil, unknownScheme("queue", cfg.QueueURL)
	}

	if u, err = config.ParseURL(cfg.BlobURL); err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		fs, err := blobfile.Open(localPath(u.Path), blobfile.Options{BaseURL: cfg.PublicURL})
		if err != nil {
			return nil, fmt.Errorf("open blob store %s: %w", cfg.BlobURL, err)
		}
		p.Blob, p.BlobHandler = fs, fs.Handler()
	default:
		return nil, unknownScheme("blob", cfg.BlobURL)
	}

	if u, err = config.ParseURL(cfg.ItemsURL); err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "sqlite":
		if p.Items, err = itemssqlite.Open(ctx, localPath(u.Path), items.DefaultIndexes); err != nil {
			return nil, fmt.Errorf("open items %s: %w", cfg.ItemsURL, err)
		}
	default:
		return nil, unknownScheme("items", cfg.ItemsURL)
	}
	if p.Embedder, err = openEmbedder(cfg.EmbedderURL, p.Items); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// openEmbedder turns an embedder URL into an embedder: hashed://DIMS is the
// offline default; openai://MODEL?dims=N[&base=URL] speaks /v1/embeddings
// (OpenAI or a compatible server), behind a cache in the item store (a
// repeated text costs no request) and a coalescer (the records of one batch
// share requests).
func openEmbedder(raw string, t items.Table) (embed.Embedder, error) {
	u, err := config.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("embedder: %w", err)
	}
	switch u.Scheme {
	case "hashed":
		dims, err := strconv.Atoi(u.Path)
		if err != nil {
			return nil, fmt.Errorf("embedder %q: dimensions %q are not a number: %w", raw, u.Path, tally.ErrInvalidArgument)
		}
		return hashed.New(dims)
	case "openai":
		inner, err := openai.FromURL(raw)
		if err != nil {
			return nil, fmt.Errorf("embedder %q: %w", raw, err)
		}
		cached, err := embedcache.New(inner, t, embedcache.Options{})
		if err != nil {
			return nil, err
		}
		return coalesce.New(cached, coalesce.Options{Window: process.EmbedWindow, MaxCallers: queue.MaxBatch}), nil
	default:
		return nil, fmt.Errorf("embedder %q: unknown scheme (this build knows hashed://DIMS and openai://MODEL?dims=N): %w", raw, tally.ErrInvalidArgument)
	}
}

// openPlaces returns the Google Places client behind its item-store cache,
// or nil when no key is configured (merchant resolution then uses similar
// receipts only).
func openPlaces(t items.Table, log *slog.Logger) *places.Cache {
	c, err := google.New(google.Options{})
	if errors.Is(err, google.ErrNoKey) {
		log.Info("no Google Places key: merchants are resolved from similar receipts only")
		return nil
	}
	if err != nil {
		log.Warn("Google Places unavailable; merchants are resolved from similar receipts only", "err", err)
		return nil
	}
	return places.NewCache(c, t, places.CacheOptions{Log: log})
}

// openVectors opens the vector store on the ports and the segment cache in
// the configured storage mode (probing a mount with a deadline).
func openVectors(ctx context.Context, cfg config.Config, p *ports, log *slog.Logger) (*vector.Store, *vector.Cache, error) {
	store, err := vector.New(vector.Options{Blob: p.Blob, Items: p.Items, Dims: p.Embedder.Dims(), Log: log})
	if err != nil {
		return nil, nil, err
	}
	cache, err := vector.OpenCache(ctx, p.Blob, vector.CacheOptions{
		Dir: cfg.CacheDir, Mode: vector.Mode(cfg.VectorMode), Mount: cfg.VectorMount, Log: log,
	})
	if err != nil {
		return nil, nil, err
	}
	return store, cache, nil
}

func unknownScheme(port, raw string) error {
	return fmt.Errorf("%s backend %q: unknown scheme (this build knows sqlite:// for queue and items, file:// for blob): %w",
		port, raw, tally.ErrInvalidArgument)
}

// localPath resolves a relative backend path against the working directory
// (as a user typing sqlite://queue.db expects).
func localPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// bucketName is the name OCR messages give the blob store (s3_bucket): the
// bucket of an s3:// URL, else "local" for the embedded file store.
func bucketName(cfg config.Config) string {
	u, err := config.ParseURL(cfg.BlobURL)
	if err == nil && u.Scheme == "s3" {
		if bucket, _, _ := strings.Cut(u.Path, "/"); bucket != "" {
			return bucket
		}
	}
	return "local"
}
