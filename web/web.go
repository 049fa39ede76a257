// Package web is Tally's web app: server-rendered pages (html/template,
// so every receipt's text is escaped) over the item and blob ports — the
// receipts list, a receipt's detail with its words drawn over the image,
// corrections, the review queue and CSV export. Pages work without
// JavaScript; the small script embedded with them only adds keyboard
// shortcuts. Assets are embedded in the binary and served under names
// that carry their content hash, so they can be cached for good.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/purge"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/textindex"
	"github.com/tallyhq/tally/upload"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the app reads and writes through.
type Config struct {
	Items items.Table
	// Blob holds raw uploads and receipt crops; Assets the renditions
	// (Blob when nil). Images reach the browser through presigned GETs.
	Blob, Assets blob.Store
	Log          *slog.Logger
	// Upload takes the upload form's files and reports their progress;
	// nil serves no uploads.
	Upload *upload.Service
	// Queues are shown on the dashboard with their depths (the pipeline's
	// queues and their dead-letter queues).
	Queues []queue.Queue
	// Text serves exact-word search (nil where the item store has no
	// full-text index: DynamoDB); Similar the vector search of rows.
	Text    textindex.Index
	Similar Similar
	// Purge deletes an image and everything made from it; nil offers no
	// delete.
	Purge *purge.Config
	// Now is the clock corrections are stamped with; default time.Now.
	Now func() time.Time
	// Auth checks logins on the login page; nil when accounts are not
	// served here.
	Auth *auth.Service
}

// App serves the pages.
type App struct {
	cfg    Config
	pages  map[string]*template.Template
	static map[string]asset // by hashed name
	names  map[string]string
}

type asset struct {
	body []byte
	typ  string
}

// New parses the templates and hashes the assets.
func New(cfg Config) (*App, error) {
	if cfg.Items == nil || cfg.Blob == nil {
		return nil, fmt.Errorf("web: Items and Blob are required: %w", tally.ErrInvalidArgument)
	}
	if cfg.Assets == nil {
		cfg.Assets = cfg.Blob
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &App{cfg: cfg, pages: map[string]*template.Template{}, static: map[string]asset{}, names: map[string]string{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		base := path.Base(p)
		ext := path.Ext(base)
		hashed := strings.TrimSuffix(base, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		typ := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}[ext]
		a.static[hashed] = asset{body: body, typ: typ}
		a.names[base] = "/static/" + hashed
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: assets: %w", err)
	}
	funcs := template.FuncMap{
		"asset":   func(name string) string { return a.names[name] },
		"join":    strings.Join,
		"pct":     func(f float64) string { return strconv.Itoa(int(f*100+0.5)) + "%" },
		"labelOf": labelClass,
		"slice2":  func(a, b any) []any { return []any{a, b} },
	}
	for _, page := range []string{"list", "detail", "error", "upload", "uploads", "dashboard", "search", "login"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", page, err)
		}
		a.pages[page] = t
	}
	return a, nil
}

// Register adds the app's routes to mux. The login page and the assets
// it draws with are public when mux can tell (auth.Mux); the rest are
// guarded by it.
func (a *App) Register(mux Router) {
	public(mux, "GET /login", a.loginForm, "the login page")
	public(mux, "POST /login", a.login, "logging in (rate-limited per user and client)")
	public(mux, "GET /static/{name}", a.asset, "the stylesheet and script the login page needs; nothing private")
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /{$}", a.list)
	mux.HandleFunc("GET /review", a.review)
	mux.HandleFunc("GET /r/{image_id}/{receipt_id}", a.detail)
	mux.HandleFunc("POST /r/{image_id}/{receipt_id}", a.correct)
	mux.HandleFunc("GET /r/{image_id}/{receipt_id}/image", a.image)
	mux.HandleFunc("GET /r/{image_id}/original", a.original)
	mux.HandleFunc("GET /export.csv", a.exportCSV)
	mux.HandleFunc("GET /export.json", a.exportJSON)
	mux.HandleFunc("GET /dashboard", a.dashboard)
	mux.HandleFunc("GET /find", a.search)
	mux.HandleFunc("POST /r/{image_id}/delete", a.remove)
	mux.HandleFunc("GET /upload", a.uploadForm)
	mux.HandleFunc("POST /upload", a.uploadFiles)
	mux.HandleFunc("GET /uploads", a.uploads)
	mux.HandleFunc("POST /uploads/{image_id}/retry", a.retry)
}

func (a *App) asset(w http.ResponseWriter, r *http.Request) {
	s, ok := a.static[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", s.typ)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(s.body)
}

// render writes a page, buffered so that a template error is a clean 500.
func (a *App) render(w http.ResponseWriter, status int, page string, data any) {
	var b bytes.Buffer
	if err := a.pages[page].Execute(&b, data); err != nil {
		a.cfg.Log.Error("render page", "page", page, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: http: https:; style-src 'self'; script-src 'self'")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// fail renders the error page with the status err calls for.
func (a *App) fail(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status >= 500 {
		a.cfg.Log.Error("web request failed", "err", err)
	}
	a.render(w, status, "error", map[string]any{"Title": http.StatusText(status), "Status": status, "Message": err.Error()})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, tally.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, upload.ErrNotRetryable):
		return http.StatusConflict
	case upload.StatusOf(err) < 500:
		return upload.StatusOf(err)
	case errors.Is(err, tally.ErrInvalidArgument), errors.Is(err, label.ErrInvalidCorrection),
		errors.Is(err, label.ErrUnknownLabel), errors.Is(err, label.ErrUnknownWord):
		return http.StatusBadRequest
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// receiptRef reads {image_id}/{receipt_id} from the path, of an image the
// user may see (another's is not found).
func (a *App) receiptRef(r *http.Request) (string, int, error) {
	id, err := a.imageRef(r)
	if err != nil {
		return "", 0, err
	}
	rid, err := strconv.Atoi(r.PathValue("receipt_id"))
	if err != nil || rid < 1 {
		return "", 0, fmt.Errorf("receipt id %q is not a positive number: %w", r.PathValue("receipt_id"), tally.ErrInvalidArgument)
	}
	return id, rid, nil
}

// imageRef reads {image_id} from the path, of an image the user may see.
func (a *App) imageRef(r *http.Request) (string, error) {
	id := r.PathValue("image_id")
	if err := ocrjob.ValidateID("image_id", id); err != nil {
		return "", err
	}
	if err := upload.CheckOwner(r.Context(), a.cfg.Items, id); err != nil {
		return "", err
	}
	return id, nil
}

// filterOf reads the list filters of a query, over the requesting user's
// receipts only.
func filterOf(ctx context.Context, q url.Values) label.Filter {
	return label.Filter{Merchant: strings.TrimSpace(q.Get("merchant")), From: q.Get("from"), To: q.Get("to"),
		MinTotal: q.Get("min_total"), MaxTotal: q.Get("max_total"), Status: q.Get("status"), Oldest: q.Get("sort") == "oldest",
		Owner: auth.Owner(ctx)}
}

// image redirects to a presigned GET of the receipt's rendition (size
// 300, 600, 1200 or full; WebP when there is one), or of its crop when
// renditions are off.
func (a *App) image(w http.ResponseWriter, r *http.Request) {
	id, rid, err := a.receiptRef(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	rc, err := entities.GetReceipt(r.Context(), a.cfg.Items, id, rid)
	if err != nil {
		a.fail(w, err)
		return
	}
	store, key := a.cfg.Assets, ""
	if sz, ok := rc.CDNSizes[r.URL.Query().Get("size")]; ok {
		key = sz.Key
		if sz.WebPKey != "" {
			key = sz.WebPKey
		}
	}
	if key == "" {
		key = rc.CDNKey
		if rc.CDNWebPKey != "" {
			key = rc.CDNWebPKey
		}
	}
	if key == "" {
		store, key = a.cfg.Blob, rc.RawS3Key
	}
	a.redirect(w, r, store, key)
}

// original redirects to the raw upload.
func (a *App) original(w http.ResponseWriter, r *http.Request) {
	id, err := a.imageRef(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	it, err := a.cfg.Items.Get(r.Context(), ocrjob.ImageKey(id))
	if err != nil {
		a.fail(w, err)
		return
	}
	key, _ := it["raw_s3_key"].(string)
	a.redirect(w, r, a.cfg.Blob, key)
}

func (a *App) redirect(w http.ResponseWriter, r *http.Request, store blob.Store, key string) {
	if key == "" {
		a.fail(w, fmt.Errorf("no image stored: %w", tally.ErrNotFound))
		return
	}
	u, err := store.PresignGet(r.Context(), key, time.Hour)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "private, max-age=3000")
	http.Redirect(w, r, u, http.StatusFound)
}

// labelClass is the CSS class of a label's colour.
func labelClass(l string) string {
	switch l {
	case label.MerchantName, label.AddressLine, label.PhoneNumber, label.Website, label.StoreHours, label.LoyaltyID:
		return "l-merchant"
	case label.Date, label.Time:
		return "l-when"
	case label.ProductName, label.Quantity, label.UnitPrice, label.LineTotal:
		return "l-item"
	case label.Subtotal, label.Tax, label.Tip, label.GrandTotal, label.Discount, label.Coupon, label.Refund:
		return "l-total"
	case label.PaymentMethod, label.Change, label.CashBack:
		return "l-pay"
	case "":
		return "l-none"
	}
	return "l-other"
}
