// Package merchant resolves the business a receipt came from. It reads the
// receipt's own clues (phone, address, URL, the name printed at the top),
// asks Google Places (tier 1: by phone, then address, then text), and
// otherwise borrows the answer of similar receipts already resolved (tier 2:
// nearest rows in the lines collection, raised by phone and address
// matches). It runs without a Places key (tier 2 alone) and never sends a
// toll-free number to Places (it names a chain, not a store).
package merchant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocr/extract"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/places"
	"github.com/tallyhq/tally/vector"
)

// MatchedThreshold is the confidence from which a place is MATCHED.
const MatchedThreshold = 0.8

// Places is what the resolver asks of Google Places; places.Cache is one.
type Places interface {
	FindByPhone(ctx context.Context, e164 string) ([]places.Place, error)
	FindByAddress(ctx context.Context, address string) ([]places.Place, error)
	FindByText(ctx context.Context, text string) ([]places.Place, error)
}

// Searcher finds the nearest records of a collection; pipeline.Searcher is
// one.
type Searcher interface {
	Search(ctx context.Context, text, coll string, k int, filters []vector.Filter) (pipeline.SearchResponse, error)
}

// Resolver resolves receipts.
type Resolver struct {
	// Places is nil without a key: tier 2 alone runs.
	Places Places
	// Similar is nil when there is no vector store to ask.
	Similar Searcher
	Items   items.Table
	// SimilarThreshold is the least score a similar receipt needs to lend
	// its place (default 0.75).
	SimilarThreshold float64
	Log              *slog.Logger
	Now              func() time.Time
}

// Clues are what a receipt says about its merchant.
type Clues struct {
	Name    string // the first line that looks like a name
	Phone   string // E.164, when the printed number normalizes
	Address string
	URL     string
	// TollFree is set when the phone is a toll-free number (never looked up).
	TollFree bool
	// Rows are the receipt's first rows (texts), the query for tier 2.
	Rows []string
}

// ExtractClues reads a receipt's phone, address, URL and name from its
// words' extracted_data and, failing that, from rules over its rows.
func ExtractClues(set entities.Set, receiptID int) Clues {
	var c Clues
	var rows []entities.ReceiptRow
	for _, r := range set.ReceiptRows {
		if r.ReceiptID == receiptID {
			rows = append(rows, r)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].RowID < rows[j].RowID })
	take := func(typ, value string) {
		switch typ {
		case ocr.ExtractPhone:
			if c.Phone == "" && !c.TollFree {
				if e164, ok := extract.NormalizePhone(value); ok {
					if extract.IsTollFree(e164) {
						c.TollFree = true
					} else {
						c.Phone = e164
					}
				}
			}
		case ocr.ExtractAddress:
			if c.Address == "" {
				c.Address = value
			}
		case ocr.ExtractURL:
			if c.URL == "" {
				c.URL = value
			}
		}
	}
	for _, w := range set.ReceiptWords {
		if w.ReceiptID == receiptID && w.ExtractedData != nil {
			take(w.ExtractedData.Type, w.ExtractedData.Value)
		}
	}
	for _, r := range rows {
		for _, m := range extract.Find(r.Text) {
			take(m.Type, m.Value)
		}
	}
	for i, r := range rows {
		if i < 8 {
			c.Rows = append(c.Rows, r.Text)
		}
		if c.Name == "" && i < 6 && looksLikeName(r.Text) {
			c.Name = strings.TrimSpace(r.Text)
		}
	}
	return c
}

// looksLikeName: mostly letters, not a date, phone, address or amount.
func looksLikeName(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) < 3 || len(extract.Find(s)) > 0 {
		return false
	}
	letters, digits := 0, 0
	for _, r := range s {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.IsDigit(r):
			digits++
		}
	}
	return letters >= 3 && digits*3 < letters
}

// Resolve finds the receipt's place and returns its ReceiptPlace (status
// NO_MATCH when nothing qualifies). Errors are transient (Places or store
// failures); a Places key that is refused is logged and tier 2 runs.
func (r *Resolver) Resolve(ctx context.Context, set entities.Set, receiptID int) (entities.ReceiptPlace, error) {
	imageID := ""
	if len(set.Images) > 0 {
		imageID = set.Images[0].ImageID
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	out := entities.ReceiptPlace{ImageID: imageID, ReceiptID: receiptID, ValidationStatus: entities.PlaceNoMatch,
		Timestamp: now().UTC().Format(time.RFC3339), MerchantTypes: []string{}, MatchedFields: []string{}}
	c := ExtractClues(set, receiptID)
	if r.Places != nil {
		p, err := r.tier1(ctx, c)
		switch {
		case errors.Is(err, places.ErrDenied), errors.Is(err, places.ErrQuota):
			r.log().Warn("Places unavailable; resolving from similar receipts only", "err", err)
		case err != nil:
			return out, err
		case p != nil:
			return p.fill(out), nil
		}
	}
	if r.Similar != nil && r.Items != nil {
		p, err := r.tier2(ctx, imageID, c)
		if err != nil {
			return out, err
		}
		if p != nil {
			return p.fill(out), nil
		}
	}
	if c.Name != "" {
		out.MerchantName = c.Name
	}
	return out, nil
}

func (r *Resolver) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// candidate is a place with how it was found and how sure we are.
type candidate struct {
	place      places.Place
	matched    []string
	confidence float64
	by         string
	// fromReceipt is a neighbour's ReceiptPlace (tier 2).
	fromReceipt *entities.ReceiptPlace
}

func (cd *candidate) fill(out entities.ReceiptPlace) entities.ReceiptPlace {
	if cd.fromReceipt != nil {
		n := *cd.fromReceipt
		out.PlaceID, out.MerchantName, out.MerchantTypes, out.MerchantCategory = n.PlaceID, n.MerchantName, n.MerchantTypes, n.MerchantCategory
		out.FormattedAddress, out.PhoneNumber, out.Website, out.Latitude, out.Longitude = n.FormattedAddress, n.PhoneNumber, n.Website, n.Latitude, n.Longitude
	} else {
		p := cd.place
		out.PlaceID, out.MerchantName, out.MerchantTypes = p.ID, p.Name, append([]string{}, p.Types...)
		out.FormattedAddress, out.PhoneNumber, out.Website, out.Latitude, out.Longitude = p.FormattedAddress, p.Phone, p.Website, p.Lat, p.Lng
		if len(p.Types) > 0 {
			out.MerchantCategory = p.Types[0]
		}
	}
	if out.MerchantTypes == nil {
		out.MerchantTypes = []string{}
	}
	out.MatchedFields = append([]string{}, cd.matched...)
	out.Confidence = math.Round(cd.confidence*1000) / 1000
	out.ValidatedBy = cd.by
	out.ValidationStatus = entities.PlaceUnsure
	if cd.confidence >= MatchedThreshold {
		out.ValidationStatus = entities.PlaceMatched
	}
	return out
}

// tier1 asks Places by phone, then address, then text, and scores each
// answer against the receipt's clues.
func (r *Resolver) tier1(ctx context.Context, c Clues) (*candidate, error) {
	type ask struct {
		by   string
		call func() ([]places.Place, error)
	}
	var asks []ask
	if c.Phone != "" {
		asks = append(asks, ask{"PHONE_LOOKUP", func() ([]places.Place, error) { return r.Places.FindByPhone(ctx, c.Phone) }})
	}
	if c.Address != "" {
		asks = append(asks, ask{"ADDRESS_LOOKUP", func() ([]places.Place, error) { return r.Places.FindByAddress(ctx, c.Address) }})
	}
	if c.Name != "" {
		q := c.Name
		if c.Address != "" {
			q += " " + c.Address
		}
		asks = append(asks, ask{"TEXT_SEARCH", func() ([]places.Place, error) { return r.Places.FindByText(ctx, q) }})
	}
	var best *candidate
	for _, a := range asks {
		found, err := a.call()
		if err != nil && !errors.Is(err, tally.ErrNotFound) {
			return nil, fmt.Errorf("places %s: %w", strings.ToLower(a.by), err)
		}
		for _, p := range found {
			cd := score(p, c, a.by)
			if best == nil || cd.confidence > best.confidence {
				best = cd
			}
		}
		if best != nil && best.confidence >= MatchedThreshold {
			return best, nil
		}
	}
	return best, nil
}

// score rates a place against the clues: a phone match is strong, an
// address match nearly so, a name match supports either.
func score(p places.Place, c Clues, by string) *candidate {
	cd := &candidate{place: p, by: by}
	conf := 0.0
	if c.Phone != "" {
		// A phone lookup's answers are listed under that number, whether or
		// not the answer repeats it.
		if e, ok := extract.NormalizePhone(p.Phone); (ok && e == c.Phone) || by == "PHONE_LOOKUP" {
			cd.matched = append(cd.matched, "phone")
			conf += 0.8
		}
	}
	if c.Address != "" && p.FormattedAddress != "" {
		if s := tokenOverlap(c.Address, p.FormattedAddress); s >= 0.5 {
			cd.matched = append(cd.matched, "address")
			conf += 0.5 * s
		}
	}
	if c.Name != "" && p.Name != "" {
		if s := tokenOverlap(c.Name, p.Name); s >= 0.5 {
			cd.matched = append(cd.matched, "name")
			conf += 0.3 * s
		}
	}
	if c.URL != "" && p.Website != "" && strings.Contains(host(p.Website), host(c.URL)) {
		cd.matched = append(cd.matched, "url")
		conf += 0.2
	}
	if len(cd.matched) == 0 {
		conf = 0.3 // the service's answer alone
	}
	cd.confidence = math.Min(conf, 0.99)
	return cd
}

// tier2 searches the lines collection for rows like this receipt's first
// rows on other images, votes per neighbouring receipt, raises receipts
// whose place shares the phone or address, and lends the best one's place.
func (r *Resolver) tier2(ctx context.Context, imageID string, c Clues) (*candidate, error) {
	if len(c.Rows) == 0 {
		return nil, nil
	}
	type key struct {
		image   string
		receipt int
	}
	votes := map[key]float64{}
	// Query as the rows were embedded: each with its neighbours.
	queries := pipeline.RowTexts(c.Rows)
	if len(queries) > 3 {
		queries = queries[:3]
	}
	for _, text := range queries {
		resp, err := r.Similar.Search(ctx, text, vector.CollectionLines, 10,
			[]vector.Filter{{Field: "image_id", Op: vector.OpNe, Values: []any{imageID}}})
		if err != nil {
			return nil, fmt.Errorf("similar receipts: %w", err)
		}
		seen := map[key]bool{}
		for _, h := range resp.Results {
			img, _ := h.Meta["image_id"].(string)
			rid, ok := items.Int64Of(h.Meta["receipt_id"])
			k := key{img, int(rid)}
			if img == "" || !ok || seen[k] {
				continue
			}
			seen[k] = true
			votes[k] += float64(h.Score) / float64(len(queries))
		}
	}
	var best *candidate
	for k, v := range votes {
		it, err := r.Items.Get(ctx, entities.PlaceKey(k.image, k.receipt))
		if errors.Is(err, tally.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		n, err := entities.PlaceFromItem(it)
		if err != nil || n.PlaceID == "" || n.ValidationStatus == entities.PlaceNoMatch {
			continue
		}
		s := v
		matched := []string{"similar_receipt"}
		if c.Phone != "" {
			if e, ok := extract.NormalizePhone(n.PhoneNumber); ok && e == c.Phone {
				s += 0.15
				matched = append(matched, "phone")
			}
		}
		if c.Address != "" && tokenOverlap(c.Address, n.FormattedAddress) >= 0.5 {
			s += 0.1
			matched = append(matched, "address")
		}
		if best == nil || s > best.confidence {
			best = &candidate{fromReceipt: &n, matched: matched, confidence: math.Min(s, 0.95), by: "SIMILAR_RECEIPT"}
		}
	}
	threshold := r.SimilarThreshold
	if threshold == 0 {
		threshold = 0.75
	}
	if best == nil || best.confidence < threshold {
		return nil, nil
	}
	return best, nil
}

// tokenOverlap is the share of a's words (letters and digits, upper-cased)
// found in b.
func tokenOverlap(a, b string) float64 {
	ta, tb := tokens(a), tokens(b)
	if len(ta) == 0 {
		return 0
	}
	in := map[string]bool{}
	for _, t := range tb {
		in[t] = true
	}
	n := 0
	for _, t := range ta {
		if in[t] {
			n++
		}
	}
	return float64(n) / float64(len(ta))
}

func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToUpper(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func host(u string) string {
	u = strings.ToLower(u)
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	u = strings.TrimPrefix(u, "www.")
	h, _, _ := strings.Cut(u, "/")
	return h
}
