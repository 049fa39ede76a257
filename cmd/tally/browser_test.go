package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
)

// chromium finds the browser `make test` installs.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium on PATH: `make test` installs it (apt-get install chromium)")
	return ""
}

// screenshotDir is where the browser test leaves its screenshots for a
// person to look at: $TALLY_SCREENSHOTS, else a directory under the
// system's temporary one that outlives the test.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("TALLY_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tally-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestWebAppInBrowser drives the web app in real Chromium against a real
// `tally serve` with real Tesseract: a SROIE receipt is uploaded and
// processed, its detail page draws one box per stored word over the image,
// a corrected total is saved and the summary recomputed, and the CSV
// export carries it. Screenshots of the list, detail and review pages (at
// 1440 px, and the list at 375 px) are written for review.
func TestWebAppInBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	_, addr := startServe(t)
	server := "http://" + addr
	img := fixtures.Path(t, "sroie", "img", "000.jpg")
	ctx, do, shot := newBrowser(t, exe, 1440, 1000, 4*waitfor.Stall)
	dir := screenshotDir(t)
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}

	// Upload through the page and follow it until it is labelled.
	do("upload", chromedp.Navigate(server+"/upload"), chromedp.SetUploadFiles(`#files`, []string{img}),
		chromedp.Click(`#upload-form button`), chromedp.WaitVisible(`table.uploads`))
	loc := get("location", chromedp.Location())
	// Best effort: the page may be refreshing itself as it is taken.
	if buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		os.WriteFile(filepath.Join(dir, "uploads-1440.png"), buf, 0o644)
	} else {
		t.Logf("uploads screenshot skipped: %v", err)
	}
	// The progress page reloads itself while the upload is on its way;
	// leave it so that its refreshes cannot race the steps below.
	do("leave the progress page", chromedp.Navigate("about:blank"))
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("id") == "" {
		t.Fatalf("after the upload the page is %q", loc)
	}
	imageID := u.Query().Get("id")
	var exp entities.Export
	waitfor.True(t, "receipt "+imageID+" labelled", func() bool {
		resp, err := http.Get(server + "/images/" + imageID)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return false
		}
		exp = entities.Export{}
		json.NewDecoder(resp.Body).Decode(&exp)
		return len(exp.ReceiptSummaries) > 0
	})
	words := 0
	for _, w := range exp.ReceiptWords {
		if w.ReceiptID == 1 {
			words++
		}
	}
	// Labelled now, the page no longer refreshes itself.
	do("the progress page shows it labelled", chromedp.Navigate(loc), chromedp.WaitVisible(`tr.stage-labelled`))

	do("open the list", chromedp.Navigate(server+"/"), chromedp.WaitVisible(`table.receipts tbody tr`))
	if merchant := get("merchant", chromedp.Text(`table.receipts tbody tr td:nth-child(2)`)); merchant == "" {
		t.Error("the list shows no merchant")
	}
	shot("list-1440.png")
	do("open the detail", chromedp.Navigate(fmt.Sprintf("%s/r/%s/1", server, imageID)), chromedp.WaitVisible(`svg polygon.word`))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('.overlay img').complete && document.querySelector('.overlay img').naturalWidth > 0`)); err != nil {
		t.Fatalf("the receipt image did not load: %v", err)
	}
	boxes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg polygon.word').length`))
	if err != nil {
		t.Fatal(err)
	}
	if boxes != words {
		t.Errorf("%d boxes drawn for %d stored words", boxes, words)
	}
	shot("detail-1440.png")

	// Correct the total in the form: saved, recomputed, shown.
	do("correct the total", chromedp.SetValue(`#f-GRAND_TOTAL`, "999.99"), chromedp.Click(`button[name=save]`), chromedp.WaitVisible(`p.message`))
	message := get("message", chromedp.Text(`p.message`))
	value := get("total", chromedp.Value(`#f-GRAND_TOTAL`))
	status := get("status", chromedp.Text(`h1 .status`))
	if value != "999.99" || status != "NEEDS_REVIEW" || !strings.Contains(message, "recomputed") {
		t.Errorf("after the correction: value %q status %q message %q", value, status, message)
	}
	shot("detail-corrected-1440.png")
	do("open the review queue", chromedp.Navigate(server+"/review"), chromedp.WaitVisible(`.review-help`))
	shot("review-1440.png")
	// Find it by a word it prints, open it with the word marked.
	do("search", chromedp.Navigate(server+"/find?q=JOHOR"), chromedp.WaitVisible(`ol.results li a`))
	shot("search-1440.png")
	do("open a result", chromedp.Click(`ol.results li a`), chromedp.WaitVisible(`svg polygon.word`))
	marked, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg polygon.hl').length`))
	if err != nil || marked == 0 {
		t.Errorf("the searched word is not marked on the image: %d %v", marked, err)
	}
	do("a bad query", chromedp.Navigate(server+`/find?q=%22total`), chromedp.WaitVisible(`p.error`))
	if msg := get("error", chromedp.Text(`p.error`)); !strings.Contains(strings.ToLower(msg), "quote") {
		t.Errorf("bad query message: %q", msg)
	}
	do("open the dashboard", chromedp.Navigate(server+"/dashboard"), chromedp.WaitVisible(`table.queues`))
	shot("dashboard-1440.png")
	do("a phone", chromedp.EmulateViewport(375, 800), chromedp.Navigate(server+"/"), chromedp.WaitVisible(`table.receipts`))
	shot("list-375.png")

	resp, err := http.Get(server + "/export.csv")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][0] != imageID || rows[1][8] != "999.99" {
		t.Errorf("CSV: %q %v", rows, err)
	}
	// Delete it: the page says what went, and the list is empty.
	do("delete", chromedp.Navigate(fmt.Sprintf("%s/r/%s/1", server, imageID)), chromedp.Click(`form.delete input[name=confirm]`),
		chromedp.Click(`form.delete button`), chromedp.WaitVisible(`p.message`))
	if msg := get("deleted", chromedp.Text(`p.message`)); !strings.Contains(msg, "removed") || !strings.Contains(msg, "vector") {
		t.Errorf("delete said %q", msg)
	}
	do("the list after the delete", chromedp.Navigate(server+"/"), chromedp.WaitVisible(`table.receipts`))
	if empty := get("empty list", chromedp.Text(`table.receipts tbody`)); !strings.Contains(empty, "No receipts") {
		t.Errorf("the list after the delete: %q", empty)
	}
	t.Logf("screenshots in %s", dir)
}

// TestLoginInBrowser: once an account exists, the browser is sent to the
// login page; a wrong password says so; the right one lands on the page
// asked for with the user named; logging out returns to the login page.
func TestLoginInBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	cfg, addr := startServe(t)
	server := "http://" + addr
	p, err := openPorts(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := auth.New(p.Items, auth.Options{FastHashForTests: true}).AddUser(context.Background(), "alice", "alice has a long password"); err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	waitfor.True(t, "the server to notice the account", func() bool {
		req, _ := http.NewRequest("GET", server+"/dashboard", nil)
		req.Header.Set("Accept", "text/html")
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusSeeOther
	})
	ctx, do, shot := newBrowser(t, exe, 1000, 700, 2*waitfor.Stall)
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	do("open the dashboard", chromedp.Navigate(server+"/dashboard"), chromedp.WaitVisible(`input[name=password]`))
	shot("login.png")
	do("a wrong password", chromedp.SendKeys(`input[name=user]`, "alice"), chromedp.SendKeys(`input[name=password]`, "not her password"),
		chromedp.Submit(`input[name=password]`), chromedp.WaitVisible(`p.error`))
	if msg := text(`p.error`); !strings.Contains(msg, "Wrong user or password") {
		t.Errorf("wrong password says %q", msg)
	}
	shot("login-wrong.png")
	do("the right password", chromedp.SetValue(`input[name=password]`, "alice has a long password"),
		chromedp.Submit(`input[name=password]`), chromedp.WaitVisible(`table.queues`))
	if who := text(`form.who span`); who != "alice" {
		t.Errorf("the page names %q, want alice", who)
	}
	shot("dashboard-logged-in.png")
	do("log out", chromedp.Click(`form.who button`), chromedp.WaitVisible(`input[name=password]`))
	do("the list after logging out", chromedp.Navigate(server+"/"), chromedp.WaitVisible(`input[name=password]`))
}

// newBrowser starts Chromium at width×height for the test, closed when it
// ends, with do (run steps or fail) and shot (a full-page screenshot into
// screenshotDir).
func newBrowser(t *testing.T, exe string, width, height int, budget time.Duration) (context.Context, func(string, ...chromedp.Action[chromedp.Void]), func(string)) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(width, height))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, budget)
	t.Cleanup(func() { cancel(); cancelCtx(); cancelAlloc() })
	dir := screenshotDir(t)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, do, shot
}
