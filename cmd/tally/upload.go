package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/upload"
)

// serverFlag is the -server flag of the client commands.
func serverFlag(fs *flag.FlagSet) *string {
	def := os.Getenv(config.EnvBaseURL)
	if def == "" {
		def = "http://" + config.DefaultAddr
	}
	return fs.String("server", def, "URL of a running `tally serve` (env "+config.EnvBaseURL+")")
}

func runUpload(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	server := serverFlag(fs)
	wait := fs.Bool("wait", false, "wait for OCR to finish and print each image's final status")
	timeout := fs.Duration("timeout", 10*time.Minute, "with -wait, how long to wait")
	force := fs.Bool("force", false, "upload even if the same bytes were uploaded before")
	files, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no files given: want tally upload FILE... [-wait]: %w", errUsage)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		part, err := mw.CreateFormFile("file", filepath.Base(f))
		if err != nil {
			return err
		}
		part.Write(data)
	}
	mw.Close()
	client := newClient(*server)
	target := "/receipts"
	if *force {
		target += "?force=true"
	}
	var resp upload.ReceiptsResponse
	if err := client.Call(ctx, http.MethodPost, target, mw.FormDataContentType(), &body, &resp); err != nil && len(resp.Receipts)+len(resp.Errors) == 0 {
		return err
	}
	for _, e := range resp.Errors {
		fmt.Fprintf(stdout, "%s\trefused\t%s\n", e.Filename, e.Error)
	}
	for _, a := range resp.Receipts {
		note := ""
		if a.Duplicate {
			note = "\tduplicate"
		}
		fmt.Fprintf(stdout, "%s\t%s%s\n", a.Filename, a.ImageID, note)
	}
	if !*wait {
		if len(resp.Errors) > 0 {
			return fmt.Errorf("%d of %d files refused", len(resp.Errors), len(files))
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	failed := len(resp.Errors)
	for _, a := range resp.Receipts {
		st, err := client.WaitOCR(ctx, a.ImageID)
		if err != nil {
			return err
		}
		line, _ := json.Marshal(st)
		fmt.Fprintf(stdout, "%s\n", line)
		if st.OCRStatus == ocrjob.StatusFailed {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files failed", failed, len(files))
	}
	return nil
}

// parseWithArgs parses flags that may appear before or after positional
// arguments (tally upload a.jpg b.jpg -wait) and returns the positionals.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlagsOnly(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.Usage()
			return err
		}
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	return nil
}

func runSubmitOCR(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("submit-ocr", flag.ContinueOnError)
	server := serverFlag(fs)
	force := fs.Bool("force", false, "submit even if the same image bytes were uploaded before")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("want tally submit-ocr IMAGE RESULT.json: %w", errUsage)
	}
	image, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	result, err := os.ReadFile(pos[1])
	if err != nil {
		return err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	ip, _ := mw.CreateFormFile("image", filepath.Base(pos[0]))
	ip.Write(image)
	rp, _ := mw.CreateFormFile("result", filepath.Base(pos[1]))
	rp.Write(result)
	mw.Close()
	target := "/ocr-results"
	if *force {
		target += "?force=true"
	}
	var acc upload.Accepted
	if err := newClient(*server).Call(ctx, http.MethodPost, target, mw.FormDataContentType(), &body, &acc); err != nil {
		return err
	}
	note := ""
	if acc.Duplicate {
		note = "\tduplicate"
	}
	fmt.Fprintf(stdout, "%s\t%s%s\n", pos[0], acc.ImageID, note)
	return nil
}
