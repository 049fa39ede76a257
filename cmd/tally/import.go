package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tallyhq/tally/internal/ctxtime"
	"github.com/tallyhq/tally/upload"
)

// importExts are the image kinds `tally import` takes.
var importExts = map[string]string{".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
	".heic": "image/heic", ".heif": "image/heic", ".tif": "image/tiff", ".tiff": "image/tiff"}

// importOutcome is one file's end.
type importOutcome struct {
	path, imageID, status, reason string // status: imported, duplicate, skipped, failed
}

func runImport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	server := serverFlag(fs)
	jobs := fs.Int("j", 4, "files uploaded at once")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("want tally import DIR|FILE...: %w", errUsage)
	}
	if *jobs < 1 || *jobs > 64 {
		return fmt.Errorf("-j %d outside 1–64: %w", *jobs, errUsage)
	}
	var files []string
	var outcomes []importOutcome
	for _, p := range pos {
		found, skipped, err := collect(p)
		if err != nil {
			return err
		}
		files = append(files, found...)
		outcomes = append(outcomes, skipped...)
	}
	base := strings.TrimRight(*server, "/")
	results := make([]importOutcome, len(files))
	var mu sync.Mutex
	done := 0
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range *jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = importOne(ctx, base, files[i])
				mu.Lock()
				done++
				if done%10 == 0 || done == len(files) {
					left := time.Duration(float64(time.Since(start)) / float64(done) * float64(len(files)-done))
					fmt.Fprintf(stdout, "progress: %d/%d files, ETA %s\n", done, len(files), left.Round(time.Second))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	outcomes = append(outcomes, results...)
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o.status]++
	}
	sort.SliceStable(outcomes, func(i, j int) bool { return outcomes[i].status < outcomes[j].status })
	for _, o := range outcomes {
		if o.status != "imported" && o.status != "duplicate" {
			fmt.Fprintf(stdout, "%s\t%q\t%s\n", o.status, o.path, o.reason)
		}
	}
	fmt.Fprintf(stdout, "imported %d, duplicates %d, skipped %d, failed %d\n", counts["imported"], counts["duplicate"], counts["skipped"], counts["failed"])
	if counts["failed"] > 0 {
		return fmt.Errorf("%d files failed", counts["failed"])
	}
	return nil
}

// collect lists the importable files under p (a directory, walked
// recursively, or one file) and the ones it skips with why. Symbolic links
// are followed only when they stay inside the directory.
func collect(p string) (files []string, skipped []importOutcome, err error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, nil, fmt.Errorf("import %s: %w", p, err)
	}
	if !info.IsDir() {
		if why := skipReason(p, info); why != "" {
			return nil, []importOutcome{{path: p, status: "skipped", reason: why}}, nil
		}
		return []string{p}, nil, nil
	}
	root, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, nil, err
	}
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			skipped = append(skipped, importOutcome{path: path, status: "skipped", reason: err.Error()})
			return nil
		}
		if d.IsDir() {
			if path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			real, err := filepath.EvalSymlinks(path)
			if err != nil || !strings.HasPrefix(real, root+string(filepath.Separator)) {
				skipped = append(skipped, importOutcome{path: path, status: "skipped", reason: "a symbolic link out of the folder"})
				return nil
			}
		}
		info, err := os.Stat(path)
		if err != nil {
			skipped = append(skipped, importOutcome{path: path, status: "skipped", reason: err.Error()})
			return nil
		}
		if why := skipReason(path, info); why != "" {
			skipped = append(skipped, importOutcome{path: path, status: "skipped", reason: why})
			return nil
		}
		files = append(files, path)
		return nil
	})
	return files, skipped, err
}

func skipReason(path string, info fs.FileInfo) string {
	switch {
	case !info.Mode().IsRegular():
		return "not a regular file"
	case importExts[strings.ToLower(filepath.Ext(path))] == "":
		return "not an image kind Tally takes (JPEG, PNG, WebP, HEIC, TIFF)"
	case info.Size() == 0:
		return "empty (0 bytes)"
	case !utf8.ValidString(filepath.Base(path)):
		return "its name is not valid UTF-8"
	}
	return ""
}

// importOne uploads one file unless the server already has its bytes,
// retrying a server that cannot be reached with backoff.
func importOne(ctx context.Context, base, path string) importOutcome {
	o := importOutcome{path: path}
	data, err := os.ReadFile(path)
	if err != nil {
		o.status, o.reason = "skipped", "unreadable: "+err.Error()
		return o
	}
	sum := sha256.Sum256(data)
	name := filepath.Base(path)
	var have struct {
		ImageID string `json:"image_id"`
	}
	err = retrying(ctx, func() error {
		return call(ctx, http.MethodGet, base+"/images/by-sha256/"+hex.EncodeToString(sum[:]), "", nil, &have)
	})
	if err == nil && have.ImageID != "" {
		o.status, o.imageID = "duplicate", have.ImageID
		return o
	}
	if err != nil && unreachable(err) {
		o.status, o.reason = "failed", err.Error()
		return o
	}
	var resp upload.ReceiptsResponse
	err = retrying(ctx, func() error {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		part, err := mw.CreateFormFile("file", sanitizeName(name))
		if err != nil {
			return err
		}
		part.Write(data)
		mw.Close()
		resp = upload.ReceiptsResponse{}
		return call(ctx, http.MethodPost, base+"/receipts", mw.FormDataContentType(), &body, &resp)
	})
	switch {
	case len(resp.Receipts) == 1:
		o.imageID, o.status = resp.Receipts[0].ImageID, "imported"
		if resp.Receipts[0].Duplicate {
			o.status = "duplicate"
		}
	case len(resp.Errors) == 1:
		o.status, o.reason = "failed", resp.Errors[0].Error
	case err != nil:
		o.status, o.reason = "failed", err.Error()
	default:
		o.status, o.reason = "failed", "the server answered nothing for it"
	}
	return o
}

// sanitizeName keeps a file name printable for the JSON request.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// retrying calls f until it succeeds, fails for a reason other than an
// unreachable server, or 5 attempts with backoff (0.1 s doubling) fail.
func retrying(ctx context.Context, f func() error) error {
	wait := 100 * time.Millisecond
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = f(); err == nil || !unreachable(err) {
			return err
		}
		if serr := ctxtime.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
		wait *= 2
	}
	return fmt.Errorf("after 5 attempts: %w", err)
}

func unreachable(err error) bool { return strings.Contains(err.Error(), "reach tally server") }
