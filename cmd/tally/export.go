package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/upload"
)

func runExport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	cfg := portFlags(fs)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want tally export IMAGE_ID: %w", errUsage)
	}
	p, _, err := openFlagged(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	out, err := exportImage(ctx, p.Items, pos[0])
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// exportImage loads an image's entities as one JSON object.
func exportImage(ctx context.Context, t items.Table, imageID string) (entities.Export, error) {
	if err := ocrjob.ValidateID("image_id", imageID); err != nil {
		return entities.Export{}, err
	}
	set, err := entities.Load(ctx, t, imageID)
	if err != nil {
		return entities.Export{}, fmt.Errorf("export image %s: %w", imageID, err)
	}
	return set.Export(), nil
}

// imageHandler answers GET /images/{id} with the export of one image.
func imageHandler(t items.Table) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		err := ocrjob.ValidateID("image_id", id)
		if err == nil {
			err = upload.CheckOwner(r.Context(), t, id)
		}
		var out any
		if err == nil {
			out, err = exportImage(r.Context(), t, id)
		}
		if err != nil {
			writeError(w, upload.StatusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}
