package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/upload"
	"github.com/tallyhq/tally/vector"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runSearch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	cfg := portFlags(fs)
	coll := fs.String("collection", vector.CollectionLines, "collection to search: lines or words")
	k := fs.Int("k", 10, "number of results")
	asJSON := fs.Bool("json", false, "print JSON")
	var where multiFlag
	fs.Var(&where, "where", "metadata filter field=value, field!=value or field=a|b (repeatable)")
	fs.SetOutput(io.Discard)
	// Flags may come before or after the query text.
	var text []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(os.Stdout)
				fmt.Fprintln(os.Stdout, "Usage: tally search [flags] TEXT")
				fs.PrintDefaults()
				return err
			}
			return fmt.Errorf("%v: %w", err, errUsage)
		}
		if fs.NArg() == 0 {
			break
		}
		text = append(text, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	query := strings.Join(text, " ")
	if strings.TrimSpace(query) == "" {
		return fmt.Errorf("no query text: %w", errUsage)
	}
	var filters []vector.Filter
	for _, w := range where {
		f, err := pipeline.ParseFilter(w)
		if err != nil {
			return fmt.Errorf("%v: %w", err, errUsage)
		}
		filters = append(filters, f)
	}
	resolved, err := cfg.Resolve()
	if err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	log := newLogger(resolved.LogFormat, os.Stderr)
	p, err := openPorts(ctx, resolved)
	if err != nil {
		return err
	}
	defer p.Close()
	store, cache, err := openVectors(ctx, resolved, p, log)
	if err != nil {
		return err
	}
	defer cache.Close()
	searcher, err := pipeline.NewSearcher(store, cache, p.Embedder, 0)
	if err != nil {
		return err
	}
	resp, err := searcher.Search(ctx, query, *coll, *k, filters)
	if err != nil {
		if errors.Is(err, tally.ErrInvalidArgument) {
			return fmt.Errorf("%v: %w", err, errUsage)
		}
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(resp)
	}
	fmt.Fprintf(stdout, "%s v%d (+%d pending deltas): %d results\n", resp.Collection, resp.Version, resp.PendingDeltas, len(resp.Results))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCORE\tTEXT\tID")
	for _, r := range resp.Results {
		fmt.Fprintf(tw, "%.4f\t%s\t%s\n", r.Score, r.Text, r.ID)
	}
	return tw.Flush()
}

// searchHandler serves GET /search?q=&collection=&k=&where=…
func searchHandler(s *pipeline.Searcher, t items.Table) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		coll := q.Get("collection")
		if coll == "" {
			coll = vector.CollectionLines
		}
		k := 10
		if ks := q.Get("k"); ks != "" {
			n, err := strconv.Atoi(ks)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("k %q is not a number", ks))
				return
			}
			k = n
		}
		var filters []vector.Filter
		for _, wv := range q["where"] {
			f, err := pipeline.ParseFilter(wv)
			if err != nil {
				writeError(w, http.StatusBadRequest, err)
				return
			}
			filters = append(filters, f)
		}
		resp, err := s.Search(r.Context(), q.Get("q"), coll, k, filters)
		if err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, tally.ErrInvalidArgument) {
				status = http.StatusBadRequest
			}
			writeError(w, status, err)
			return
		}
		// Only the user's own records: the index knows no owners.
		ids := make([]string, len(resp.Results))
		for i, res := range resp.Results {
			ids[i], _ = res.Meta["image_id"].(string)
		}
		visible := upload.Visible(r.Context(), t, ids...)
		kept := resp.Results[:0]
		for _, res := range resp.Results {
			if id, _ := res.Meta["image_id"].(string); visible(id) {
				kept = append(kept, res)
			}
		}
		resp.Results = kept
		writeJSON(w, http.StatusOK, resp)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
