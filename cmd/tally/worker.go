package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/imaging"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/lambdahost"
	"github.com/tallyhq/tally/merchant"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/process"
	"github.com/tallyhq/tally/renditions"
	"github.com/tallyhq/tally/vector"
)

// roles are the workers this build can run; `tally serve` runs all of them.
var roles = []string{"ocr", "process", "compact"}

func runWorker(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	cfg := portFlags(fs)
	role := fs.String("role", "", "the worker to run: "+strings.Join(roles, ", "))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	known := false
	for _, r := range roles {
		known = known || r == *role
	}
	if !known {
		return fmt.Errorf("-role %q: want one of %s: %w", *role, strings.Join(roles, ", "), errUsage)
	}
	resolved, err := cfg.Resolve()
	if err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	log := newLogger(resolved.LogFormat, os.Stderr)
	env, err := openEnv(ctx, resolved, log)
	if err != nil {
		return err
	}
	defer env.Close()
	return env.runWorkers(ctx, []string{*role})
}

// env is everything a long-running command opens: the ports, the pipeline's
// queues and the vector store.
type env struct {
	cfg    config.Config
	log    *slog.Logger
	ports  *ports
	queues pipeline.Queues
	store  *vector.Store
	cache  *vector.Cache
	ocr    ocrChoice
}

func openEnv(ctx context.Context, cfg config.Config, log *slog.Logger) (*env, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	p, err := openPorts(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, log: log, ports: p}
	ensure := pipeline.OpenQueues
	if p.CreateQueues {
		ensure = pipeline.EnsureQueues
	}
	if e.queues, err = ensure(ctx, p.Queue); err != nil {
		p.Close()
		return nil, err
	}
	if e.store, e.cache, err = openVectors(ctx, cfg, p, log); err != nil {
		p.Close()
		return nil, err
	}
	return e, nil
}

// ocrStore is where the OCR stage publishes results.
func (e *env) ocrStore() ocrstage.Store {
	return ocrstage.Store{Items: e.ports.Items, Blob: e.ports.Blob, Bucket: bucketName(e.cfg), Results: e.queues.OCRResults}
}

// Close releases everything openEnv opened.
func (e *env) Close() error {
	e.cache.Close()
	return e.ports.Close()
}

// runWorkers runs the named workers until ctx ends and returns the first
// failure (a worker that stops on its own is a failure).
func (e *env) runWorkers(ctx context.Context, names []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, name := range names {
		st, err := e.worker(name)
		if err != nil {
			return err
		}
		run := st.Run
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.log.Info("worker started", "role", name)
			err := run(ctx)
			if ctx.Err() == nil {
				cancel(fmt.Errorf("worker %s stopped: %w", name, err))
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// stage is one opened worker: Run consumes its queue (tally worker, tally
// serve); Handle handles a delivered batch (the Lambda SQS handler).
type stage struct {
	Run    func(context.Context) error
	Handle lambdahost.BatchHandler
}

func (e *env) worker(name string) (stage, error) {
	switch name {
	case "ocr":
		engine, err := e.ocrEngine()
		if err != nil {
			return stage{}, err
		}
		w, err := ocrstage.New(ocrstage.Config{
			Store:           e.ocrStore(),
			Jobs:            e.queues.OCRJobs,
			Engine:          engine,
			Parallel:        e.cfg.OCRWorkers,
			Limits:          imaging.Limits{MaxPixels: e.cfg.MaxPixels},
			MaxImageBytes:   e.cfg.MaxUploadBytes,
			MaxReceiveCount: pipeline.MaxReceiveCount,
			Visibility:      e.cfg.Visibility,
			Log:             e.log.With("role", "ocr"),
		})
		if err != nil {
			return stage{}, err
		}
		return stage{Run: w.Run, Handle: w.HandleBatch}, nil
	case "process":
		dlq, err := e.ports.Queue.OpenQueue(context.Background(), pipeline.QueueOCRResults+pipeline.DeadLetterSuffix)
		if err != nil {
			return stage{}, err
		}
		var rend *renditions.Options
		if e.cfg.Renditions {
			rend = &renditions.Options{Sizes: e.cfg.RenditionSizes}
		}
		searcher, err := pipeline.NewSearcher(e.store, e.cache, e.ports.Embedder, time.Second)
		if err != nil {
			return stage{}, err
		}
		resolver := &merchant.Resolver{Similar: searcher, Items: e.ports.Items, Log: e.log.With("role", "process")}
		if pl := openPlaces(e.ports.Items, e.log); pl != nil {
			resolver.Places = pl
		}
		labels, err := newLabelPipeline(e.cfg, e.ports.Items, e.log.With("role", "process"))
		if err != nil {
			return stage{}, err
		}
		w, err := process.New(process.Config{
			Merchant: resolver, Labels: &labels, Text: e.ports.Text,
			Items: e.ports.Items, Blob: e.ports.Blob, Assets: e.ports.AssetsBlob, Embedder: e.ports.Embedder, Vectors: e.store,
			Results: e.queues.OCRResults, DeadLetter: dlq, Compaction: e.queues.Compaction,
			Renditions: rend, MaxReceiveCount: pipeline.MaxReceiveCount, Visibility: e.cfg.Visibility, Log: e.log.With("role", "process"),
		})
		if err != nil {
			return stage{}, err
		}
		return stage{Run: w.Run, Handle: w.HandleBatch}, nil
	case "compact":
		w, err := compaction.New(compaction.Config{
			Queue:           e.queues.Compaction,
			Store:           e.store,
			Cache:           e.cache,
			Items:           e.ports.Items,
			MaxReceiveCount: pipeline.MaxReceiveCount,
			Visibility:      e.cfg.Visibility,
			Log:             e.log.With("role", "compact"),
		})
		if err != nil {
			return stage{}, err
		}
		return stage{Run: w.Run, Handle: w.HandleMessages}, nil
	}
	return stage{}, fmt.Errorf("unknown worker %q", name)
}
