package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/tallyhq/tally"

	"github.com/tallyhq/tally/blob"
	blobfile "github.com/tallyhq/tally/blob/file"
	blobs3 "github.com/tallyhq/tally/blob/s3"
	"github.com/tallyhq/tally/embed"
	embedcache "github.com/tallyhq/tally/embed/cache"
	"github.com/tallyhq/tally/embed/coalesce"
	"github.com/tallyhq/tally/embed/hashed"
	"github.com/tallyhq/tally/embed/openai"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/items"
	itemsdynamodb "github.com/tallyhq/tally/items/dynamodb"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
	"github.com/tallyhq/tally/places"
	"github.com/tallyhq/tally/places/google"
	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/queue"
	queuesqlite "github.com/tallyhq/tally/queue/sqlite"
	queuesqs "github.com/tallyhq/tally/queue/sqs"
	"github.com/tallyhq/tally/textindex"
	textsqlite "github.com/tallyhq/tally/textindex/sqlite"
	"github.com/tallyhq/tally/vector"
)

// ports are the opened backends of one process. This file is the one place
// that knows every backend: it turns port URLs into adapters.
type ports struct {
	Queue queue.Broker
	// CreateQueues is true when the pipeline's queues may be created (and
	// their settings converged) by this process: the embedded queue, or
	// sqs://…?create=true. Queues deployed by infrastructure are only
	// opened, so a worker never rewrites their settings.
	CreateQueues bool
	Blob         blob.Store
	// VectorBlob holds vector segments; AssetsBlob holds renditions. Both
	// are Blob unless configured apart.
	VectorBlob blob.Store
	AssetsBlob blob.Store
	Items      items.Table
	// Text is the full-text index of receipt rows, beside the embedded
	// item store (text.db next to its file); nil on DynamoDB, where the
	// web app finds rows through the vector search only.
	Text     textindex.Index
	Embedder embed.Embedder
	// BlobHandler serves presigned URLs when the blob backend needs tally
	// serve to do so (the file backend); nil otherwise.
	BlobHandler http.Handler

	awsConfigs map[awsenv.Options]aws.Config
}

// openFlagged resolves a subcommand's flagged configuration and opens its
// ports: the start of every one-shot command (export, label, retry …). A
// configuration that does not resolve is a usage error.
func openFlagged(ctx context.Context, cfg *config.Config) (*ports, config.Config, error) {
	resolved, err := cfg.Resolve()
	if err != nil {
		return nil, config.Config{}, fmt.Errorf("%v: %w", err, errUsage)
	}
	p, err := openPorts(ctx, resolved)
	if err != nil {
		return nil, config.Config{}, err
	}
	return p, resolved, nil
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
	if p.Text != nil {
		errs = append(errs, p.Text.Close())
	}
	return errors.Join(errs...)
}

// openPorts opens the backends named by cfg's URLs.
func openPorts(ctx context.Context, cfg config.Config) (*ports, error) {
	p := &ports{awsConfigs: map[awsenv.Options]aws.Config{}}
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
		// Assigned only on success: a nil *Broker in the interface would
		// not be nil, and Close would dereference it.
		b, err := queuesqlite.Open(ctx, localPath(u.Path))
		if err != nil {
			return nil, fmt.Errorf("open queue %s: %w", cfg.QueueURL, explainOpen(localPath(u.Path), err))
		}
		p.Queue, p.CreateQueues = b, true
	case "sqs":
		ac, err := p.awsConfig(ctx, cfg, u)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", cfg.QueueURL, err)
		}
		p.Queue = queuesqs.New(ac, queuesqs.Options{Prefix: u.Path, QueueURLs: cfg.QueueURLs})
		p.CreateQueues = isTrue(u.Query.Get("create"))
	default:
		return nil, unknownScheme("queue", cfg.QueueURL)
	}

	opened := map[string]blob.Store{}
	for _, b := range []struct {
		raw string
		dst *blob.Store
	}{{cfg.BlobURL, &p.Blob}, {cfg.VectorBlobURL, &p.VectorBlob}, {cfg.AssetsBlobURL, &p.AssetsBlob}} {
		if b.raw == "" {
			b.raw = cfg.BlobURL
		}
		if st, ok := opened[b.raw]; ok {
			*b.dst = st
			continue
		}
		st, handler, err := p.openBlob(ctx, cfg, b.raw)
		if err != nil {
			return nil, err
		}
		if p.BlobHandler == nil {
			p.BlobHandler = handler
		}
		opened[b.raw], *b.dst = st, st
	}

	if u, err = config.ParseURL(cfg.ItemsURL); err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "sqlite":
		tbl, err := itemssqlite.Open(ctx, localPath(u.Path), items.DefaultIndexes)
		if err != nil {
			return nil, fmt.Errorf("open items %s: %w", cfg.ItemsURL, explainOpen(localPath(u.Path), err))
		}
		p.Items = tbl
		textPath := filepath.Join(filepath.Dir(localPath(u.Path)), "text.db")
		text, err := textsqlite.Open(ctx, textPath)
		if err != nil {
			return nil, fmt.Errorf("open text index %s: %w", textPath, explainOpen(textPath, err))
		}
		p.Text = text
	case "dynamodb":
		ac, err := p.awsConfig(ctx, cfg, u)
		if err != nil {
			return nil, fmt.Errorf("items %s: %w", cfg.ItemsURL, err)
		}
		if isTrue(u.Query.Get("create")) {
			if err := itemsdynamodb.CreateTable(ctx, ac, u.Path, items.DefaultIndexes); err != nil {
				return nil, fmt.Errorf("create table %s: %w", u.Path, err)
			}
		}
		tbl, err := itemsdynamodb.New(ac, itemsdynamodb.Options{Table: u.Path})
		if err != nil {
			return nil, fmt.Errorf("items %s: %w", cfg.ItemsURL, err)
		}
		p.Items = tbl
		if err := tbl.Check(ctx); err != nil {
			return nil, fmt.Errorf("items %s: %w", cfg.ItemsURL, err)
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

// openBlob opens one blob store URL: file://DIR or s3://BUCKET[/PREFIX].
func (p *ports) openBlob(ctx context.Context, cfg config.Config, raw string) (blob.Store, http.Handler, error) {
	u, err := config.ParseURL(raw)
	if err != nil {
		return nil, nil, err
	}
	switch u.Scheme {
	case "file":
		fs, err := blobfile.Open(localPath(u.Path), blobfile.Options{BaseURL: cfg.PublicURL})
		if err != nil {
			return nil, nil, fmt.Errorf("open blob store %s: %w", raw, err)
		}
		return fs, fs.Handler(), nil
	case "s3":
		ac, err := p.awsConfig(ctx, cfg, u)
		if err != nil {
			return nil, nil, fmt.Errorf("blob store %s: %w", raw, err)
		}
		bucket, prefix, _ := strings.Cut(u.Path, "/")
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		st, err := blobs3.New(ac, blobs3.Options{Bucket: bucket, Prefix: prefix})
		if err != nil {
			return nil, nil, fmt.Errorf("blob store %s: %w", raw, err)
		}
		if isTrue(u.Query.Get("create")) {
			if err := st.CreateBucket(ctx); err != nil {
				return nil, nil, fmt.Errorf("create bucket %s: %w", bucket, err)
			}
		}
		return st, nil, nil
	default:
		return nil, nil, unknownScheme("blob", raw)
	}
}

// awsConfig loads (once per distinct region and endpoint) the AWS config
// for a port URL: ?region= and ?endpoint= override AWS_REGION and
// TALLY_AWS_ENDPOINT. Missing credentials or a bad region fail here, at
// start-up, with one clear error.
func (p *ports) awsConfig(ctx context.Context, cfg config.Config, u config.PortURL) (aws.Config, error) {
	opts := awsenv.FromQuery(awsenv.Options{Endpoint: cfg.AWSEndpoint}, u.Query)
	if ac, ok := p.awsConfigs[opts]; ok {
		return ac, nil
	}
	ac, err := awsenv.Load(ctx, opts)
	if err != nil {
		return aws.Config{}, err
	}
	p.awsConfigs[opts] = ac
	return ac, nil
}

func isTrue(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
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
	store, err := vector.New(vector.Options{Blob: p.VectorBlob, Items: p.Items, Dims: p.Embedder.Dims(), Log: log})
	if err != nil {
		return nil, nil, err
	}
	cache, err := vector.OpenCache(ctx, p.VectorBlob, vector.CacheOptions{
		Dir: cfg.CacheDir, MaxBytes: cfg.CacheMaxBytes, Mode: vector.Mode(cfg.VectorMode), Mount: cfg.VectorMount, Log: log,
	})
	if err != nil {
		return nil, nil, err
	}
	return store, cache, nil
}

// explainOpen names the likely cause when a database file cannot be
// opened: SQLite says only "unable to open database file".
func explainOpen(path string, err error) error {
	dir := filepath.Dir(path)
	if f, cerr := os.CreateTemp(dir, ".tally-write-probe-*"); cerr != nil {
		return fmt.Errorf("%w (the data directory %s cannot be written: %v)", err, dir, cerr)
	} else {
		f.Close()
		os.Remove(f.Name())
	}
	return err
}

func unknownScheme(port, raw string) error {
	return fmt.Errorf("%s backend %q: unknown scheme (this build knows sqlite:// and sqs:// for queue, file:// and s3:// for blob, sqlite:// and dynamodb:// for items): %w",
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
