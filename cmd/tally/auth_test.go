package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/internal/config"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/internal/waitfor"
	"github.com/tallyhq/tally/upload"
)

// publicRoutes are the only routes anyone may call without an account.
var publicRoutes = []string{"GET /healthz", "GET /login", "POST /login", "GET /static/{name}", "/blob/"}

// TestEveryRouteNeedsAnAccount enumerates the API's router: with one user
// present, every route but the public ones answers a request without
// credentials with 401 (or, for a browser page, a redirect to the login
// page), and the public ones are exactly the listed few.
func TestEveryRouteNeedsAnAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := config.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	e, err := openEnv(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := auth.New(e.ports.Items, auth.Options{FastHashForTests: true}).AddUser(ctx, "alice", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	mux, err := apiHandler(e, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	wildcard := regexp.MustCompile(`\{[^}]*\}`)
	routes := mux.Routes()
	if len(routes) < 25 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, rt := range routes {
		if rt.Public {
			if !slices.Contains(publicRoutes, rt.Pattern) || rt.Why == "" {
				t.Errorf("route %q is public (%q) but not one of %v", rt.Pattern, rt.Why, publicRoutes)
			}
			continue
		}
		method, path, ok := strings.Cut(rt.Pattern, " ")
		if !ok {
			method, path = "GET", rt.Pattern
		}
		path = wildcard.ReplaceAllStringFunc(path, func(w string) string {
			switch w {
			case "{$}":
				return ""
			case "{receipt_id}":
				return "1"
			}
			return "0b6f1f7c-58f4-4a0e-9f59-1c2d3e4f5a6b"
		})
		for _, accept := range []string{"application/json", "text/html"} {
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("x"))
			req.Header.Set("Accept", accept)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			browserPage := accept == "text/html" && method == http.MethodGet
			switch {
			case browserPage && resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login?next="):
			case !browserPage && resp.StatusCode == http.StatusUnauthorized:
			default:
				t.Errorf("%s %s (Accept %s) without credentials: %d %s", method, path, accept, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
}

// TestAccountsKeepReceiptsApart: two users on one server. Each sees,
// searches, exports and changes only their own receipts; the other's are
// not found (not forbidden: their ids reveal nothing); the same bytes
// uploaded by both are two images; a read token cannot write; the login
// form opens a session in a Secure, HttpOnly, SameSite cookie.
func TestAccountsKeepReceiptsApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, addr := startServe(t)
	server := "http://" + addr
	p, err := openPorts(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	accounts := auth.New(p.Items, auth.Options{FastHashForTests: true})
	for _, u := range []string{"alice", "bob"} {
		if err := accounts.AddUser(ctx, u, u+" has a long password"); err != nil {
			t.Fatal(err)
		}
	}
	tok := map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		if tok[u], err = accounts.CreateToken(ctx, u, "test", auth.ScopeWrite); err != nil {
			t.Fatal(err)
		}
	}
	readOnly, err := accounts.CreateToken(ctx, "alice", "ro", auth.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	do := func(who, method, path, contentType string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, server+path, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if who != "" {
			req.Header.Set("Authorization", "Bearer "+who)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitfor.True(t, "the server to notice the accounts", func() bool {
		code, _ := do("", "GET", "/receipts", "", nil)
		return code == http.StatusUnauthorized
	})

	img, err := os.ReadFile(fixtures.Path(t, "sroie", "img", "000.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	uploadAs := func(who string) upload.Accepted {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", "000.jpg")
		fw.Write(img)
		mw.Close()
		code, out := do(who, "POST", "/receipts", mw.FormDataContentType(), body.Bytes())
		var rr upload.ReceiptsResponse
		if err := json.Unmarshal([]byte(out), &rr); err != nil || code != 200 || len(rr.Receipts) != 1 {
			t.Fatalf("upload: %d %s", code, out)
		}
		return rr.Receipts[0]
	}
	if code, _ := do(readOnly, "POST", "/receipts", "multipart/form-data; boundary=x", []byte("--x--")); code != http.StatusForbidden {
		t.Errorf("a read token uploading: %d, want 403", code)
	}
	mine := uploadAs(tok["alice"])
	var listed struct {
		Receipts []struct {
			ImageID string `json:"image_id"`
		} `json:"receipts"`
	}
	waitfor.True(t, "alice's receipt labelled", func() bool {
		code, out := do(tok["alice"], "GET", "/receipts", "", nil)
		return code == 200 && json.Unmarshal([]byte(out), &listed) == nil && len(listed.Receipts) == 1
	})
	if listed.Receipts[0].ImageID != mine.ImageID {
		t.Fatalf("alice lists %+v, want her image %s", listed, mine.ImageID)
	}
	if code, out := do(readOnly, "GET", "/images/"+mine.ImageID, "", nil); code != 200 {
		t.Errorf("alice's read token reading her image: %d %s", code, out)
	}

	// Bob sees none of it.
	bob := tok["bob"]
	for _, c := range []struct {
		method, path, contentType, body string
	}{
		{"GET", "/images/" + mine.ImageID, "", ""},
		{"GET", "/upload-status?image_id=" + mine.ImageID, "", ""},
		{"GET", "/images/by-sha256/" + hex.EncodeToString(sum[:]), "", ""},
		{"POST", "/images/" + mine.ImageID + "/retry", "", ""},
		{"PATCH", "/receipts/" + mine.ImageID + "/1", "application/json", `{"fields":{"MERCHANT_NAME":"bob was here"}}`},
		{"GET", "/r/" + mine.ImageID + "/1", "", ""},
		{"GET", "/r/" + mine.ImageID + "/1/image", "", ""},
		{"GET", "/r/" + mine.ImageID + "/original", "", ""},
		{"POST", "/r/" + mine.ImageID + "/delete", "application/x-www-form-urlencoded", "confirm=yes"},
		{"POST", "/r/" + mine.ImageID + "/1", "application/x-www-form-urlencoded", "MERCHANT_NAME=bob"},
	} {
		if code, out := do(bob, c.method, c.path, c.contentType, []byte(c.body)); code != http.StatusNotFound {
			t.Errorf("bob: %s %s = %d %.200s, want 404", c.method, c.path, code, out)
		}
	}
	if code, out := do(bob, "GET", "/receipts", "", nil); code != 200 || strings.Contains(out, mine.ImageID) {
		t.Errorf("bob's list: %d %s", code, out)
	}
	for _, path := range []string{"/export.csv", "/export.json", "/", "/review", "/dashboard", "/find?q=" + url.QueryEscape("TOTAL"), "/search?q=total&k=10"} {
		if code, out := do(bob, "GET", path, "", nil); code != 200 || strings.Contains(out, mine.ImageID) {
			t.Errorf("bob: GET %s = %d and mentions alice's image: %v", path, code, strings.Contains(out, mine.ImageID))
		}
	}
	if code, out := do(tok["alice"], "GET", "/search?q=total&k=10", "", nil); code != 200 || !strings.Contains(out, mine.ImageID) {
		t.Errorf("alice's search does not find her image: %d %.300s", code, out)
	}
	// The same bytes from bob are his own image, not a duplicate of hers.
	his := uploadAs(bob)
	if his.ImageID == mine.ImageID || his.Duplicate {
		t.Errorf("bob's upload of the same bytes = %+v; want a new image of his own", his)
	}
	if again := uploadAs(tok["alice"]); again.ImageID != mine.ImageID || !again.Duplicate {
		t.Errorf("alice's second upload = %+v; want a duplicate of %s", again, mine.ImageID)
	}

	// The login form: a wrong password is refused, a right one gives a
	// session cookie that opens the pages.
	form := func(pw string) *http.Response {
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).PostForm(server+"/login",
			url.Values{"user": {"alice"}, "password": {pw}, "next": {"/review"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := form("not her password"); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("wrong password: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp := form("alice has a long password")
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/review" || len(cookies) != 1 {
		t.Fatalf("login: %d → %s, cookies %v", resp.StatusCode, resp.Header.Get("Location"), cookies)
	}
	if c := cookies[0]; c.Name != auth.SessionCookie || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Lax", c)
	}
	req, _ := http.NewRequest("GET", server+"/", nil)
	req.AddCookie(cookies[0])
	page, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(b), "alice") || !strings.Contains(string(b), "Log out") {
		t.Errorf("the list page with alice's session: %d", page.StatusCode)
	}
}

// TestServeRefusesAnOpenPublicAddress: listening where other machines can
// reach it, with no account, is refused with what to do.
func TestServeRefusesAnOpenPublicAddress(t *testing.T) {
	t.Parallel()
	cfg, err := config.Config{DataDir: t.TempDir(), Addr: "0.0.0.0:0"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	err = serve(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "tally user add") {
		t.Fatalf("serve on 0.0.0.0 without accounts = %v, want a refusal naming tally user add", err)
	}
}

// TestUserAndTokenCommands drives tally user and tally token.
func TestUserAndTokenCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cmd := func(in string, args ...string) (int, string) {
		stdin = strings.NewReader(in)
		defer func() { stdin = os.Stdin }()
		var out, errb bytes.Buffer
		code := run(ctx, append(args, "-data", dir), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := cmd("", "user", "add", "alice"); code != 0 || !strings.Contains(out, "shown once") {
		t.Fatalf("user add with a made password: %d %s", code, out)
	}
	if code, out := cmd("chosen by bob, long enough\n", "user", "add", "bob"); code != 0 || !strings.Contains(out, "password set") {
		t.Fatalf("user add from stdin: %d %s", code, out)
	}
	if code, out := cmd("short\n", "user", "add", "carol"); code != 2 || !strings.Contains(out, "password needs") {
		t.Errorf("a short password: %d %s", code, out)
	}
	if code, out := cmd("x long enough password\n", "user", "add", "Not A Name"); code != 2 {
		t.Errorf("a bad name: %d %s", code, out)
	}
	if code, out := cmd("", "user", "adopt", "alice"); code != 0 || !strings.Contains(out, "alice now owns 0 images") {
		t.Errorf("user adopt with nothing to adopt: %d %s", code, out)
	}
	if code, out := cmd("", "user", "adopt", "zed"); code != 2 {
		t.Errorf("user adopt of an unknown user: %d %s", code, out)
	}
	if code, out := cmd("", "user", "list"); code != 0 || out != "alice\nbob\n" {
		t.Errorf("user list: %d %q", code, out)
	}
	if code, out := cmd("", "token", "create", "ci"); code != 2 || !strings.Contains(out, "-user") {
		t.Errorf("token create with two users and no -user: %d %s", code, out)
	}
	code, out := cmd("", "token", "create", "ci", "-user", "bob", "-scope", "read")
	secret := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if code != 0 || !strings.HasPrefix(secret, "tally_t_") {
		t.Fatalf("token create: %d %s", code, out)
	}
	if code, out := cmd("", "token", "list", "-user", "bob"); code != 0 || !strings.HasPrefix(out, "ci\tread\t") || strings.Contains(out, secret) {
		t.Errorf("token list: %d %q", code, out)
	}
	if code, out := cmd("", "token", "create", "x", "-user", "bob", "-scope", "admin"); code != 2 {
		t.Errorf("bad scope: %d %s", code, out)
	}
	if code, out := cmd("", "token", "revoke", "ci", "-user", "bob"); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("token revoke: %d %s", code, out)
	}
	if code, out := cmd("", "token", "revoke", "ci", "-user", "bob"); code != 1 {
		t.Errorf("revoke twice: %d %s", code, out)
	}
}
