package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/upload"
)

// defaultReceiptsLimit is the page size of GET /receipts without ?limit=.
const defaultReceiptsLimit = 50

// maxCorrectionBytes caps a PATCH /receipts body.
const maxCorrectionBytes = 64 << 10

// receiptsPage is the body of GET /receipts: summaries newest first and
// the token of the next page ("" on the last).
type receiptsPage struct {
	Receipts  []entities.ReceiptSummary `json:"receipts"`
	NextToken string                    `json:"next_token"`
}

// listReceiptsHandler serves GET
// /receipts?merchant=&from=&to=&min_total=&max_total=&status=&limit=&token=
// (see label.List; limit defaults to defaultReceiptsLimit).
func listReceiptsHandler(t items.Table) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := defaultReceiptsLimit
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("limit %q is not a number", v))
				return
			}
			limit = n
		}
		f := label.Filter{Owner: auth.Owner(r.Context()),
			Merchant: q.Get("merchant"), From: q.Get("from"), To: q.Get("to"),
			MinTotal: q.Get("min_total"), MaxTotal: q.Get("max_total"), Status: q.Get("status"),
		}
		page, err := label.List(r.Context(), t, f, limit, q.Get("token"))
		if err != nil {
			writeError(w, upload.StatusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, receiptsPage{Receipts: page.Summaries, NextToken: page.NextToken})
	})
}

// understandingBody is a receipt's understanding as the API answers it.
type understandingBody struct {
	Summary   entities.ReceiptSummary     `json:"summary"`
	LineItems []entities.ReceiptLineItem  `json:"line_items"`
	Labels    []entities.ReceiptWordLabel `json:"labels"`
}

func newUnderstandingBody(u entities.Understanding) understandingBody {
	b := understandingBody{Summary: u.Summary, LineItems: u.LineItems, Labels: u.Labels}
	if b.LineItems == nil {
		b.LineItems = []entities.ReceiptLineItem{}
	}
	if b.Labels == nil {
		b.Labels = []entities.ReceiptWordLabel{}
	}
	return b
}

// correctReceiptHandler serves PATCH /receipts/{image_id}/{receipt_id}
// with a label.Correction body: it applies a person's correction and
// answers the receipt's recomputed understanding. An invalid correction is
// 400 and stores nothing; an unknown image or receipt, or one never
// labelled, is 404.
func correctReceiptHandler(t items.Table, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imageID := r.PathValue("image_id")
		err := ocrjob.ValidateID("image_id", imageID)
		if err == nil {
			err = upload.CheckOwner(r.Context(), t, imageID)
		}
		if err != nil {
			writeError(w, upload.StatusOf(err), err)
			return
		}
		receiptID, err := strconv.Atoi(r.PathValue("receipt_id"))
		if err != nil || receiptID < 1 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("receipt_id %q is not a receipt number (1, 2, …)", r.PathValue("receipt_id")))
			return
		}
		c, err := decodeCorrection(http.MaxBytesReader(w, r.Body, maxCorrectionBytes))
		if err != nil {
			writeError(w, upload.StatusOf(err), err)
			return
		}
		u, err := correctReceipt(r.Context(), t, imageID, receiptID, c, now())
		if err != nil {
			writeError(w, upload.StatusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, newUnderstandingBody(u))
	})
}

// decodeCorrection reads one JSON label.Correction, refusing unknown
// fields and anything after it.
func decodeCorrection(body io.Reader) (label.Correction, error) {
	var c label.Correction
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&c)
	if err == nil {
		var extra json.RawMessage
		switch err2 := dec.Decode(&extra); {
		case err2 == nil:
			err = errors.New("more than one JSON value")
		case !errors.Is(err2, io.EOF):
			err = fmt.Errorf("after the correction: %w", err2)
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return label.Correction{}, fmt.Errorf("correction over %d bytes: %w", mbe.Limit, err)
	case errors.Is(err, io.EOF):
		return label.Correction{}, fmt.Errorf(`empty body: want a correction {"fields": {…}, "labels": […]}: %w`, tally.ErrInvalidArgument)
	case err != nil:
		return label.Correction{}, fmt.Errorf(`correction (want {"fields": {LABEL: {"value", "text", "words"}}, "labels": [{"line_id", "word_id", "label", "from", "remove"}]}): %v: %w`, err, tally.ErrInvalidArgument)
	}
	return c, nil
}

// correctReceipt applies c to a stored receipt's understanding (see
// label.Correct).
func correctReceipt(ctx context.Context, t items.Table, imageID string, receiptID int, c label.Correction, at time.Time) (entities.Understanding, error) {
	set, err := entities.Load(ctx, t, imageID)
	if err != nil {
		return entities.Understanding{}, err
	}
	if !hasReceipt(set, receiptID) {
		return entities.Understanding{}, fmt.Errorf("image %s has no receipt %d: %w", imageID, receiptID, tally.ErrNotFound)
	}
	u, err := label.Correct(ctx, t, label.FromSet(set, receiptID), c, at)
	if err != nil {
		return entities.Understanding{}, fmt.Errorf("correct receipt %s/%d: %w", imageID, receiptID, err)
	}
	return u, nil
}

func hasReceipt(set entities.Set, receiptID int) bool {
	for _, rc := range set.Receipts {
		if rc.ReceiptID == receiptID {
			return true
		}
	}
	return false
}
