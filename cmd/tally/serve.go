package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/doctor"
	"github.com/tallyhq/tally/imaging"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/purge"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
	"github.com/tallyhq/tally/web"
)

func runServe(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := portFlags(fs)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (env "+config.EnvAddr+", default "+config.DefaultAddr+")")
	fs.StringVar(&cfg.PublicURL, "public-url", cfg.PublicURL, "URL clients use to reach this server, for presigned URLs (env "+config.EnvBaseURL+", default http://ADDR)")
	watchReady := watchFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	resolved, err := cfg.Resolve()
	if err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	log := newLogger(resolved.LogFormat, os.Stderr)
	ready, err := watchReady(ctx, log)
	if err != nil {
		return err
	}
	return serve(ctx, resolved, log, ready)
}

// apiHandler is Tally's HTTP API: health, search, the upload routes, image
// records, receipt summaries and their corrections, and (for the file blob
// store) presigned URLs. tally serve listens
// with it; the upload Lambda serves it behind API Gateway.
func apiHandler(e *env, requireAccounts bool) (*auth.Mux, error) {
	searcher, err := pipeline.NewSearcher(e.store, e.cache, e.ports.Embedder, time.Second)
	if err != nil {
		return nil, err
	}
	searcher.ProgressiveOpen(e.cfg.SearchFirstBytes)
	accounts := auth.New(e.ports.Items, auth.Options{})
	mux := auth.NewMux(auth.NewGuard(accounts, auth.GuardOptions{RequireAccounts: requireAccounts, Log: e.log}))
	mux.Public("GET /healthz", healthHandler(e.cfg, e.ports, e.queues, e.cache, &e.ocr), "load balancers and `tally doctor` probe it; it shows counts, no records")
	mux.Handle("GET /search", searchHandler(searcher, e.ports.Items))
	up, err := upload.New(upload.Config{
		Store:    e.ocrStore(),
		Jobs:     e.queues.OCRJobs,
		MaxBytes: e.cfg.MaxUploadBytes,
		Limits:   imaging.Limits{MaxPixels: e.cfg.MaxPixels},
		Log:      e.log,
	})
	if err != nil {
		return nil, err
	}
	up.Register(mux)
	mux.Handle("GET /images/{id}", imageHandler(e.ports.Items))
	shown := []queue.Queue{e.queues.OCRJobs, e.queues.OCRResults, e.queues.Compaction}
	for _, name := range []string{pipeline.QueueOCRJobs, pipeline.QueueOCRResults, pipeline.QueueCompaction} {
		if dlq, err := e.ports.Queue.OpenQueue(context.Background(), name+pipeline.DeadLetterSuffix); err == nil {
			shown = append(shown, dlq)
		}
	}
	app, err := web.New(web.Config{Items: e.ports.Items, Blob: e.ports.Blob, Assets: e.ports.AssetsBlob, Upload: up,
		Queues: shown, Text: e.ports.Text, Similar: similarRows(searcher), Log: e.log.With("role", "web"), Auth: accounts,
		Purge: &purge.Config{Items: e.ports.Items, Blob: e.ports.Blob, Assets: e.ports.AssetsBlob, Vectors: e.store, Compaction: e.queues.Compaction}})
	if err != nil {
		return nil, err
	}
	app.Register(mux)
	mux.Handle("GET /receipts", listReceiptsHandler(e.ports.Items))
	mux.Handle("PATCH /receipts/{image_id}/{receipt_id}", correctReceiptHandler(e.ports.Items, time.Now))
	if e.ports.BlobHandler != nil {
		mux.Public("/blob/", e.ports.BlobHandler, "presigned URLs: each carries its own signature bound to key, method, content type and expiry")
	}
	return mux, nil
}

// serve runs the server until ctx ends. ready, when set, is called with the
// listening address once requests are accepted (tests listen on port 0).
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(addr string)) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	// A public URL derived from a port-0 address names the real port.
	if cfg.PublicURL == "http://"+cfg.Addr {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	e, err := openEnv(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer e.Close()
	loopback := isLoopback(ln.Addr())
	if !loopback {
		on, err := auth.New(e.ports.Items, auth.Options{}).HasUsers(ctx)
		if err != nil {
			return err
		}
		if !on {
			return fmt.Errorf("refusing to listen on %s, which other machines can reach, without accounts: add one with `tally user add NAME` (or listen on 127.0.0.1): %w",
				ln.Addr(), errUsage)
		}
	}
	mux, err := apiHandler(e, !loopback)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("tally serving", "addr", ln.Addr().String(), "version", tally.Version,
		"data", cfg.DataDir, "queue", cfg.QueueURL, "blob", cfg.BlobURL, "items", cfg.ItemsURL)
	if ready != nil {
		ready(ln.Addr().String())
	}

	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	errc := make(chan error, 3)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- e.runWorkers(workCtx, roles) }()
	go sweepItems(workCtx, e.ports.Items, log)

	var runErr error
	select {
	case err := <-errc:
		runErr = err
	case <-ctx.Done():
	}
	log.Info("tally shutting down")
	stopWork()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("shut down http server: %w", err)
	}
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	return nil
}

// sweepItems removes expired (TTL) items every few minutes when the items
// backend needs it done (DynamoDB does it itself).
func sweepItems(ctx context.Context, t items.Table, log *slog.Logger) {
	sw, ok := t.(interface {
		Sweep(context.Context) (int, error)
	})
	if !ok {
		return
	}
	tick := time.NewTicker(5 * time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := sw.Sweep(ctx); err != nil {
			log.Warn("sweep expired items", "err", err)
		} else if n > 0 {
			log.Info("swept expired items", "count", n)
		}
	}
}

// health is the body of GET /healthz.
type health struct {
	Status  string                 `json:"status"`
	Version string                 `json:"version"`
	Ports   map[string]string      `json:"ports"`
	Checks  map[string]string      `json:"checks"`
	Queues  map[string]queueHealth `json:"queues"`
	Vectors vectorHealth           `json:"vectors"`
	// OCR is the engine this process's OCR worker runs, when it runs one.
	OCR *ocrHealth `json:"ocr,omitempty"`
}

// ocrHealth shows which OCR engine was chosen and why (auto falls back to
// Tesseract when PaddleOCR is not installed).
type ocrHealth struct {
	Engine string `json:"engine"`
	Reason string `json:"reason"`
}

// vectorHealth shows the vector storage mode in use (and why), so a fallback
// from a hung mount is visible.
type vectorHealth struct {
	Mode     string `json:"mode"`
	Reason   string `json:"reason"`
	Embedder string `json:"embedder"`
}

type queueHealth struct {
	Visible    int     `json:"visible"`
	InFlight   int     `json:"in_flight"`
	Delayed    int     `json:"delayed"`
	OldestAgeS float64 `json:"oldest_age_seconds"`
}

// healthHandler reports ok only when every port answers a real request
// (doctor.Probe, the first of `tally doctor`'s checks).
func healthHandler(cfg config.Config, p *ports, qs pipeline.Queues, cache *vector.Cache, oc *ocrChoice) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		h := health{
			Status:  "ok",
			Version: tally.Version,
			Ports: map[string]string{"queue": cfg.QueueURL, "blob": cfg.BlobURL, "items": cfg.ItemsURL,
				"vector_blob": cfg.VectorBlobURL, "assets_blob": cfg.AssetsBlobURL},
			Checks: map[string]string{},
			Queues: map[string]queueHealth{},
		}
		if name, why := oc.get(); name != "" {
			h.OCR = &ocrHealth{Engine: name, Reason: why}
		}
		mode, why := cache.Mode()
		h.Vectors = vectorHealth{Mode: string(mode), Reason: why, Embedder: p.Embedder.Model()}
		probes, stats := doctor.Probe(ctx, p.Items, p.Blob, []queue.Queue{qs.OCRJobs, qs.OCRResults, qs.Compaction})
		for _, c := range probes {
			h.Checks[c.Name] = "ok"
			if c.Status != doctor.OK {
				h.Checks[c.Name] = c.Detail
				h.Status = "degraded"
			}
		}
		for name, st := range stats {
			h.Queues[name] = queueHealth{Visible: st.Visible, InFlight: st.InFlight, Delayed: st.Delayed, OldestAgeS: st.OldestAge.Seconds()}
		}
		status := http.StatusOK
		if h.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, h)
	})
}

// similarRows is the web app's meaning search: the rows of the lines
// collection nearest a text.
func similarRows(s *pipeline.Searcher) web.Similar {
	return func(ctx context.Context, text string, k int) ([]web.SimilarRow, error) {
		resp, err := s.Search(ctx, text, vector.CollectionLines, k, nil)
		if err != nil {
			return nil, err
		}
		out := make([]web.SimilarRow, 0, len(resp.Results))
		for _, r := range resp.Results {
			id, _ := r.Meta["image_id"].(string)
			rid, ok := items.Int64Of(r.Meta["receipt_id"])
			if id == "" || !ok {
				continue
			}
			text, _ := r.Meta["text"].(string)
			merchant, _ := r.Meta["merchant_name"].(string)
			out = append(out, web.SimilarRow{ImageID: id, ReceiptID: int(rid), Text: text, Merchant: merchant, Score: r.Score})
		}
		return out, nil
	}
}

// isLoopback reports whether only this machine can reach addr.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
