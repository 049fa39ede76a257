// Command tally runs Tally: the upload API, the workers and the tools, in one
// binary. With no configuration every port uses its embedded default under
// ./tally-data; see `tally help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tallyhq/tally/internal/config"
)

// command is one subcommand; each lives in its own file.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run every stage and the HTTP API on one machine", runServe},
		{"worker", "run one pipeline worker (-role ocr, process or compact)", runWorker},
		{"upload", "upload receipt images to a running server (-wait for OCR)", runUpload},
		{"submit-ocr", "submit an image with an external OCR result JSON", runSubmitOCR},
		{"export", "print one image's entities as JSON", runExport},
		{"label", "label an image's receipts again and print their summaries", runLabel},
		{"import", "upload every image under a folder (-j parallel), skipping what the server has", runImport},
		{"watch", "import images dropped into a folder, then move them to .imported/ or .failed/ (-scan)", runWatch},
		{"redrive", "move dead-letter messages back to their queue (-reason, -max, -dry-run)", runRedrive},
		{"user", "add a user (password from stdin, or one made and shown once), change a password (passwd), give them the receipts from before accounts (adopt), list", runUser},
		{"token", "create (shown once), list or revoke API tokens (-scope read|write) for the CLI and scripts", runToken},
		{"doctor", "check every port, queue, dead letter, job, lease and vector collection, and the AWS deployment (-functions); print fixes", runDoctor},
		{"reset-visibility", "make messages stuck in flight in a queue visible again (-older)", runResetVisibility},
		{"retry", "run a FAILED or stuck (PENDING 30m without progress) image again from its stored upload", runRetry},
		{"export-csv", "write the receipts' summaries (filtered) as CSV, one row per receipt or per line item", runExportCSV},
		{"search", "search receipts' lines or words by text", runSearch},
		{"version", "print the version", runVersion},
		{"help", "list the subcommands", nil},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if inLambda() && len(os.Args) == 1 {
		// On Lambda, bootstrap is started with no arguments.
		if err := runLambda(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "tally lambda: %v\n", err)
			stop()
			os.Exit(1)
		}
		stop()
		return
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and turns its error into an exit code, so
// tests can drive the CLI without a subprocess.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name || c.run == nil {
			continue
		}
		err := c.run(ctx, args[1:], stdout)
		var code exitStatus
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &code):
			return int(code)
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "tally %s: %v\n", name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "tally %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "tally: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

// exitStatus is a command's exit status when it has already said why (a
// doctor report): run prints nothing more.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// errUsage marks errors in how a command was called (exit status 2).
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "Tally turns photos and scans of receipts into structured, searchable records.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: tally <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'tally <command> -h' for a command's flags. Ports are chosen by URL through")
	fmt.Fprintf(w, "%s, %s and %s; unset ones live under %s (default ./%s).\n",
		config.EnvQueueURL, config.EnvBlobURL, config.EnvItemsURL, config.EnvDataDir, config.DefaultDataDir)
}

// portFlags registers the flags every long-running command shares; the
// environment supplies their defaults.
func portFlags(fs *flag.FlagSet) *config.Config {
	c := config.FromEnv()
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory for embedded backends (env "+config.EnvDataDir+", default ./"+config.DefaultDataDir+")")
	fs.StringVar(&c.QueueURL, "queue", c.QueueURL, "queue backend URL, e.g. sqlite://PATH (env "+config.EnvQueueURL+")")
	fs.StringVar(&c.BlobURL, "blob", c.BlobURL, "blob backend URL, e.g. file://DIR (env "+config.EnvBlobURL+")")
	fs.StringVar(&c.ItemsURL, "items", c.ItemsURL, "items backend URL, e.g. sqlite://PATH (env "+config.EnvItemsURL+")")
	fs.StringVar(&c.EmbedderURL, "embedder", c.EmbedderURL, "embedder URL, e.g. hashed://512 (env "+config.EnvEmbedderURL+", default "+config.DefaultEmbedderURL+")")
	fs.StringVar(&c.LLMURL, "llm", c.LLMURL, "LLM that refines receipt labels, e.g. openai://gpt-4o-mini (env "+config.EnvLLMURL+", default none: rules only)")
	fs.StringVar(&c.VectorMode, "vector-mode", c.VectorMode, "where readers get vector segments: s3, efs, efs-copy or auto (env "+config.EnvVectorMode+", default s3)")
	fs.StringVar(&c.VectorMount, "vector-mount", c.VectorMount, "shared directory for the efs vector modes (env "+config.EnvVectorMount+")")
	fs.StringVar(&c.Tesseract, "tesseract", c.Tesseract, "tesseract binary for the OCR worker (env "+config.EnvTesseract+", default: on PATH)")
	fs.StringVar(&c.OCREngine, "ocr-engine", c.OCREngine, "OCR engine: tesseract, paddle, or auto (paddle when installed by `make deps-ocr`, else tesseract) (env "+config.EnvOCREngine+", default auto)")
	fs.StringVar(&c.PaddleDir, "paddle-dir", c.PaddleDir, "directory holding ONNX Runtime and the PaddleOCR models (env "+config.EnvPaddleDir+", default "+config.DefaultPaddleDir()+")")
	fs.IntVar(&c.OCRThreads, "ocr-threads", c.OCRThreads, "threads each image's OCR may use (env "+config.EnvOCRThreads+", default 1: one image per core)")
	fs.IntVar(&c.OCRWorkers, "ocr-workers", c.OCRWorkers, "images the OCR worker analyses at once (env "+config.EnvOCRWorkers+", default one per core)")
	fs.DurationVar(&c.Visibility, "visibility", c.Visibility, "how long a worker keeps received messages hidden; a killed worker's messages return after it (env "+config.EnvVisibility+", default 2m)")
	fs.BoolVar(&c.Renditions, "renditions", c.Renditions, "make JPEG/WebP/AVIF renditions of images and receipts in the process stage (env "+config.EnvRenditions+")")
	fs.Func("rendition-sizes", "renditions' long sides in pixels, e.g. 300,600,full (env "+config.EnvRenditionSizes+", default 300,600,1200,full)", func(v string) error {
		sizes, err := config.ParseRenditionSizes(v)
		c.RenditionSizes = sizes
		return err
	})
	fs.StringVar(&c.LogFormat, "log", c.LogFormat, "log format: text or json (default: text on a terminal, json otherwise)")
	return &c
}

// parseFlags parses args, reporting bad flags as usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	return nil
}

// newLogger logs as text on a terminal and as JSON otherwise (log shippers,
// CloudWatch), unless the format is given.
func newLogger(format string, w *os.File) *slog.Logger {
	if format == "" {
		format = "json"
		if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
