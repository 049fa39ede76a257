package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/tallyhq/tally/auth"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/textindex"
)

// pageSize is how many receipts a list page shows.
const pageSize = 50

// reviewCountCap bounds the review count in the header: counting pages
// the index, so past this it says "N+".
const reviewCountCap = 99

// common is what every page's header shows.
type common struct {
	Title   string
	Nav     string
	Reviews string
	// User is who is logged in ("" when accounts are off).
	User string
}

func (a *App) common(r *http.Request, title, nav string) common {
	c := common{Title: title, Nav: nav, User: auth.Owner(r.Context())}
	// One query of the review index, at most reviewCountCap+1 summaries.
	p, err := label.List(r.Context(), a.cfg.Items, label.Filter{Status: entities.SummaryNeedsReview, Owner: auth.Owner(r.Context())}, reviewCountCap, "")
	if err != nil {
		return c
	}
	c.Reviews = strconv.Itoa(len(p.Summaries))
	if p.NextToken != "" {
		c.Reviews += "+"
	}
	return c
}

// list is the receipts list: filters, newest first, keyset pages.
func (a *App) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := filterOf(r.Context(), q)
	if text := strings.TrimSpace(q.Get("q")); text != "" {
		a.listText(w, r, f, text)
		return
	}
	p, err := label.List(r.Context(), a.cfg.Items, f, pageSize, q.Get("token"))
	if err != nil {
		a.fail(w, err)
		return
	}
	next := ""
	if p.NextToken != "" {
		nq := cloneValues(q)
		nq.Set("token", p.NextToken)
		next = "/?" + nq.Encode()
	}
	eq := cloneValues(q)
	eq.Del("token")
	a.render(w, http.StatusOK, "list", map[string]any{
		"Common": a.common(r, "Receipts", "list"), "Filter": f, "Receipts": p.Summaries, "Next": next,
		"ExportQuery": eq.Encode(), "First": q.Get("token") != "", "Failed": a.failed(r),
	})
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// review shows the next receipt that needs review.
func (a *App) review(w http.ResponseWriter, r *http.Request) {
	p, err := label.List(r.Context(), a.cfg.Items, label.Filter{Status: entities.SummaryNeedsReview, Owner: auth.Owner(r.Context())}, 1, r.URL.Query().Get("token"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if len(p.Summaries) == 0 {
		a.render(w, http.StatusOK, "list", map[string]any{"Common": a.common(r, "Review", "review"),
			"Filter": label.Filter{Status: entities.SummaryNeedsReview}, "Empty": "Nothing needs review."})
		return
	}
	s := p.Summaries[0]
	skip := "/review"
	if p.NextToken != "" {
		skip = "/review?token=" + url.QueryEscape(p.NextToken)
	}
	a.showDetail(w, r, s.ImageID, s.ReceiptID, http.StatusOK, detailOpts{review: true, skip: skip})
}

type detailOpts struct {
	// highlight are search terms whose words are marked on the image.
	highlight []string
	review    bool
	skip      string
	message   string
	errMsg    string
}

// box is one word drawn over the receipt image.
type box struct {
	Points     string
	Text       string
	Labels     string
	Class      string
	Confidence float64
	LineID     int
	WordID     int
}

// field is one editable summary field.
type field struct {
	Name  string
	Text  string
	Value string
	Conf  float64
	From  string
	Words int
}

func (a *App) detail(w http.ResponseWriter, r *http.Request) {
	id, rid, err := a.receiptRef(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.showDetail(w, r, id, rid, http.StatusOK, detailOpts{message: r.URL.Query().Get("msg"), highlight: highlightTerms(r.URL.Query().Get("hl"))})
}

func (a *App) showDetail(w http.ResponseWriter, r *http.Request, id string, rid, status int, o detailOpts) {
	set, err := entities.Load(r.Context(), a.cfg.Items, id)
	if err != nil {
		a.fail(w, err)
		return
	}
	var rc *entities.Receipt
	for i := range set.Receipts {
		if set.Receipts[i].ReceiptID == rid {
			rc = &set.Receipts[i]
		}
	}
	if rc == nil {
		a.fail(w, fmt.Errorf("image %s has no receipt %d: %w", id, rid, tally.ErrNotFound))
		return
	}
	in := label.FromSet(set, rid)
	var u entities.Understanding
	for _, s := range set.ReceiptSummaries {
		if s.ReceiptID == rid {
			u.Summary = s
		}
	}
	active := map[[2]int][]string{}
	for _, l := range set.ReceiptWordLabels {
		if l.ReceiptID == rid && l.ValidationStatus != entities.LabelInvalid {
			active[[2]int{l.LineID, l.WordID}] = append(active[[2]int{l.LineID, l.WordID}], l.Label)
		}
	}
	for _, li := range set.ReceiptLineItems {
		if li.ReceiptID == rid {
			u.LineItems = append(u.LineItems, li)
		}
	}
	wpx, hpx := max(rc.Width, 1), max(rc.Height, 1)
	boxes := make([]box, 0, len(in.Words))
	for _, wd := range in.Words {
		var pts []string
		for _, p := range wd.Quad().Points() {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.X*float64(wpx), (1-p.Y)*float64(hpx)))
		}
		ls := active[[2]int{wd.LineID, wd.WordID}]
		sort.Strings(ls)
		cls := ""
		if len(ls) > 0 {
			cls = ls[0]
		}
		class := labelClass(cls)
		if matchesTerm(wd.Text, o.highlight) {
			class += " hl"
		}
		boxes = append(boxes, box{Points: strings.Join(pts, " "), Text: wd.Text, Labels: strings.Join(ls, ", "),
			Class: class, Confidence: wd.Confidence, LineID: wd.LineID, WordID: wd.WordID})
	}
	var fields []field
	seen := map[string]bool{}
	add := func(k string) {
		if seen[k] {
			return
		}
		seen[k] = true
		f := u.Summary.Fields[k]
		fields = append(fields, field{Name: k, Text: f.Text, Value: f.Value, Conf: f.Confidence, From: f.Source, Words: len(f.Words)})
	}
	for _, k := range label.RequiredFields {
		add(k)
	}
	extra := make([]string, 0, len(u.Summary.Fields))
	for k := range u.Summary.Fields {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		add(k)
	}
	var rows []string
	for _, row := range in.Rows {
		rows = append(rows, row.Text)
	}
	var place *entities.ReceiptPlace
	for i := range set.ReceiptPlaces {
		if set.ReceiptPlaces[i].ReceiptID == rid {
			place = &set.ReceiptPlaces[i]
		}
	}
	title := u.Summary.MerchantName
	if title == "" {
		title = "Receipt " + id
	}
	nav := "list"
	if o.review {
		nav = "review"
	}
	a.render(w, status, "detail", map[string]any{
		"Common": a.common(r, title, nav), "ImageID": id, "ReceiptID": rid, "Receipt": rc, "Summary": u.Summary,
		"Labelled": u.Summary.ReceiptID != 0, "Fields": fields, "LineItems": u.LineItems, "Boxes": boxes,
		"Width": wpx, "Height": hpx, "Rows": rows, "Place": place, "Review": o.review, "Skip": o.skip,
		"Message": o.message, "Error": o.errMsg, "Words": len(boxes), "CanDelete": a.cfg.Purge != nil,
	})
}

// maxForm bounds a correction form.
const maxForm = 64 << 10

// correct applies the detail form: the fields a person changed, or an
// acceptance of the summary as it is.
func (a *App) correct(w http.ResponseWriter, r *http.Request) {
	id, rid, err := a.receiptRef(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		a.fail(w, fmt.Errorf("the form could not be read: %v: %w", err, tally.ErrInvalidArgument))
		return
	}
	review := r.PostForm.Get("review") != ""
	set, err := entities.Load(r.Context(), a.cfg.Items, id)
	if err != nil {
		a.fail(w, err)
		return
	}
	in := label.FromSet(set, rid)
	var current entities.ReceiptSummary
	for _, s := range set.ReceiptSummaries {
		if s.ReceiptID == rid {
			current = s
		}
	}
	c := label.Correction{Accept: r.PostForm.Get("accept") != "", Fields: map[string]label.FieldCorrection{}}
	for key, vals := range r.PostForm {
		name, ok := strings.CutPrefix(key, "field.")
		if !ok {
			continue
		}
		v := strings.TrimSpace(vals[0])
		old := current.Fields[name]
		if v == old.Value || (v == old.Text && !label.AmountFields[name] && name != label.Date) {
			continue
		}
		fc := label.FieldCorrection{Value: v}
		if !label.AmountFields[name] && name != label.Date {
			text := v
			fc.Text = &text
		}
		c.Fields[name] = fc
	}
	if len(c.Fields) == 0 {
		c.Fields = nil
	}
	if !c.Accept && c.Fields == nil {
		http.Redirect(w, r, detailPath(id, rid)+"?msg="+url.QueryEscape("Nothing changed."), http.StatusSeeOther)
		return
	}
	if _, err := label.Correct(r.Context(), a.cfg.Items, in, c, a.cfg.Now()); err != nil {
		status := statusOf(err)
		if status >= 500 {
			a.fail(w, err)
			return
		}
		a.showDetail(w, r, id, rid, status, detailOpts{review: review, errMsg: err.Error()})
		return
	}
	if review {
		http.Redirect(w, r, "/review", http.StatusSeeOther)
		return
	}
	msg := "Saved; the summary was recomputed."
	if c.Accept && c.Fields == nil {
		msg = "Accepted."
	}
	http.Redirect(w, r, detailPath(id, rid)+"?msg="+url.QueryEscape(msg), http.StatusSeeOther)
}

func detailPath(id string, rid int) string {
	return "/r/" + url.PathEscape(id) + "/" + strconv.Itoa(rid)
}

// highlightTerms reads the hl parameter: search terms joined by ",".
func highlightTerms(hl string) []string {
	var out []string
	for _, t := range strings.Split(hl, ",") {
		if t = foldWord(t); t != "" && len(out) < 20 {
			out = append(out, t)
		}
	}
	return out
}

// matchesTerm tells whether a word starts with one of the terms, ignoring
// case and punctuation ("TOTAL:" matches "total").
func matchesTerm(word string, terms []string) bool {
	w := foldWord(word)
	for _, t := range terms {
		if w != "" && strings.HasPrefix(w, t) {
			return true
		}
	}
	return false
}

func foldWord(s string) string {
	return strings.ToLower(strings.TrimFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }))
}

// failedShown bounds the failed uploads the list shows above the receipts.
const failedShown = 10

// failed lists the images whose latest job failed (newest first), which
// have no summary to list: they need a retry, not a review.
func (a *App) failed(r *http.Request) []ocrjob.Job {
	jobs, err := ocrjob.JobsWithStatus(r.Context(), a.cfg.Items, ocrjob.StatusFailed, failedShown*2)
	if err != nil {
		a.cfg.Log.Warn("failed uploads", "err", err)
		return nil
	}
	var out []ocrjob.Job
	me := auth.Owner(r.Context())
	for _, j := range jobs {
		if j.Owner != me {
			continue // another user's upload
		}
		latest, err := ocrjob.LatestJob(r.Context(), a.cfg.Items, j.ImageID)
		if err == nil && latest.JobID == j.JobID && len(out) < failedShown {
			out = append(out, j)
		}
	}
	return out
}

// textListCap bounds the rows a text filter reads from the index.
const textListCap = 200

// listText is the list filtered by words in the receipts' text: the
// receipts of the best-matching rows (at most textListCap rows), through
// the other filters, in the list's order, on one page.
func (a *App) listText(w http.ResponseWriter, r *http.Request, f label.Filter, text string) {
	data := map[string]any{"Common": a.common(r, "Receipts", "list"), "Filter": f, "Q": text}
	if a.cfg.Text == nil {
		data["Error"] = "the text filter needs the full-text index of the embedded item store; use Search for similar rows"
		a.render(w, http.StatusBadRequest, "list", data)
		return
	}
	hits, err := a.cfg.Text.Search(r.Context(), textindex.Query{Text: text, Limit: textListCap})
	if err != nil {
		if status := statusOf(err); status < 500 {
			data["Error"] = err.Error()
			a.render(w, status, "list", data)
			return
		}
		a.fail(w, err)
		return
	}
	seen := map[string]bool{}
	var out []entities.ReceiptSummary
	for _, h := range hits {
		k := h.ImageID + "#" + strconv.Itoa(h.ReceiptID)
		if seen[k] {
			continue
		}
		seen[k] = true
		u, ok, err := label.Stored(r.Context(), a.cfg.Items, h.ImageID, h.ReceiptID)
		if err != nil {
			a.fail(w, err)
			return
		}
		if !ok {
			continue
		}
		match, err := f.Matches(u.Summary)
		if err != nil {
			a.fail(w, err)
			return
		}
		if match {
			out = append(out, u.Summary)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a := entities.SummaryByDateSK(out[i].Date, out[i].ImageID, out[i].ReceiptID)
		b := entities.SummaryByDateSK(out[j].Date, out[j].ImageID, out[j].ReceiptID)
		if f.Oldest {
			return a < b
		}
		return a > b
	})
	data["Receipts"] = out
	a.render(w, http.StatusOK, "list", data)
}
