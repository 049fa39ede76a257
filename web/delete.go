package web

import (
	"fmt"
	"net/http"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/purge"
)

// remove deletes an image and everything made from it — entities,
// labels, renditions, blobs, vectors, text index rows — and says what went.
func (a *App) remove(w http.ResponseWriter, r *http.Request) {
	id, err := a.imageRef(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	if a.cfg.Purge == nil {
		a.fail(w, fmt.Errorf("deleting is not served here: %w", tally.ErrNotFound))
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		a.fail(w, fmt.Errorf("tick the box to confirm the deletion: %w", tally.ErrInvalidArgument))
		return
	}
	rep, err := purge.Image(r.Context(), *a.cfg.Purge, id)
	if err != nil {
		a.fail(w, err)
		return
	}
	msg := rep.String()
	if a.cfg.Text != nil {
		if err := a.cfg.Text.Delete(r.Context(), id); err != nil {
			a.fail(w, fmt.Errorf("deleted, but the text index kept its rows: %w", err))
			return
		}
		msg += ", and its rows from the text index"
	}
	a.render(w, http.StatusOK, "error", map[string]any{"Common": a.common(r, "Deleted", "list"), "Title": "Deleted", "Message": msg, "OK": true})
}
