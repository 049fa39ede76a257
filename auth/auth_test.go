package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/auth"
	"github.com/tallyhq/tally/items"
	itemssqlite "github.com/tallyhq/tally/items/sqlite"
)

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func setup(t *testing.T) (*auth.Service, items.Table, *clock) {
	t.Helper()
	tbl, err := itemssqlite.Open(context.Background(), filepath.Join(t.TempDir(), "items.db"), items.DefaultIndexes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	clk := &clock{}
	clk.ns.Store(time.Now().UnixNano()) // the store drops items past their TTL by the real clock
	return auth.New(tbl, auth.Options{Now: clk.Now, FastHashForTests: true}), tbl, clk
}

func TestUsersAndLogin(t *testing.T) {
	t.Parallel()
	svc, tbl, clk := setup(t)
	ctx := context.Background()
	if on, err := svc.HasUsers(ctx); err != nil || on {
		t.Fatalf("HasUsers on an empty table = %v, %v", on, err)
	}
	for _, bad := range []struct{ name, pw string }{
		{"Alice", "long enough password"}, {"", "long enough password"}, {"a/b", "long enough password"},
		{"alice", "short"}, {"alice", strings.Repeat("x", 2000)},
	} {
		if err := svc.AddUser(ctx, bad.name, bad.pw); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("AddUser(%q, %d chars) = %v, want ErrInvalidArgument", bad.name, len(bad.pw), err)
		}
	}
	if err := svc.AddUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if err := svc.AddUser(ctx, "alice", "another password here"); !errors.Is(err, auth.ErrExists) {
		t.Errorf("second AddUser(alice) = %v, want ErrExists", err)
	}
	if on, err := svc.HasUsers(ctx); err != nil || !on {
		t.Fatalf("HasUsers = %v, %v", on, err)
	}
	// The password is stored only as an argon2id hash.
	it, err := tbl.Get(ctx, items.Key{PK: "AUTH#USERS", SK: "USER#alice"})
	if err != nil || !strings.HasPrefix(it["password"].(string), "$argon2id$v=19$") || strings.Contains(it["password"].(string), "horse") {
		t.Fatalf("stored user = %v, %v", it, err)
	}

	secret, err := svc.Login(ctx, "alice", "correct horse battery", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Session(ctx, secret)
	if err != nil || p.User != "alice" || p.Scope != auth.ScopeWrite {
		t.Fatalf("Session = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "tally_s_nope", secret + "x", "tally_t_" + secret[8:]} {
		if _, err := svc.Session(ctx, bad); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("Session(%q) = %v, want ErrBadCredentials", bad, err)
		}
	}
	if _, err := svc.Login(ctx, "alice", "wrong password!!", "10.0.0.1"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := svc.Login(ctx, "nobody", "correct horse battery", "10.0.0.1"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("unknown user: %v", err)
	}
	// A session ends at its TTL, and at logout.
	clk.Advance(auth.SessionTTL + time.Second)
	if _, err := svc.Session(ctx, secret); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("expired session: %v", err)
	}
	s2, err := svc.Login(ctx, "alice", "correct horse battery", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Logout(ctx, s2); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Session(ctx, s2); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("session after logout: %v", err)
	}
	if err := svc.SetPassword(ctx, "alice", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, "alice", "correct horse battery", "10.0.0.1"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("old password after SetPassword: %v", err)
	}
	if err := svc.SetPassword(ctx, "bob", "a brand new password"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("SetPassword(unknown) = %v", err)
	}
	if users, err := svc.Users(ctx); err != nil || len(users) != 1 || users[0] != "alice" {
		t.Errorf("Users = %v, %v", users, err)
	}
}

// TestLoginRateLimit: after MaxFailures wrong passwords a user is locked
// for the rest of the window, even with the right password; a new window
// lets them in; another client cannot be locked out by one address's
// failures beyond its own limit.
func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	svc, _, clk := setup(t)
	ctx := context.Background()
	if err := svc.AddUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	for i := range auth.MaxFailures {
		if _, err := svc.Login(ctx, "alice", "wrong password!!", "10.0.0.1"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	var limited *auth.RateLimitedError
	if _, err := svc.Login(ctx, "alice", "correct horse battery", "10.0.0.2"); !errors.As(err, &limited) || limited.RetryAfter <= 0 || limited.RetryAfter > auth.FailureWindow {
		t.Fatalf("login while locked = %v, want RateLimitedError", err)
	}
	clk.Advance(auth.FailureWindow + time.Second)
	if _, err := svc.Login(ctx, "alice", "correct horse battery", "10.0.0.2"); err != nil {
		t.Fatalf("login after the window: %v", err)
	}
	// One client guessing many names is limited by its address.
	for i := range auth.MaxFailuresPerClient {
		svc.Login(ctx, "guess"+string(rune('a'+i%26)), "wrong password!!", "10.9.9.9")
	}
	if _, err := svc.Login(ctx, "alice", "correct horse battery", "10.9.9.9"); !errors.As(err, &limited) {
		t.Errorf("client over its limit = %v, want RateLimitedError", err)
	}
	if _, err := svc.Login(ctx, "alice", "correct horse battery", "10.0.0.3"); err != nil {
		t.Errorf("alice from another address: %v", err)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	svc, tbl, _ := setup(t)
	ctx := context.Background()
	if err := svc.AddUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateToken(ctx, "bob", "ci", auth.ScopeRead); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("token for an unknown user: %v", err)
	}
	if _, err := svc.CreateToken(ctx, "alice", "ci", "admin"); !errors.Is(err, tally.ErrInvalidArgument) {
		t.Errorf("bad scope: %v", err)
	}
	read, err := svc.CreateToken(ctx, "alice", "ci", auth.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateToken(ctx, "alice", "ci", auth.ScopeWrite); !errors.Is(err, auth.ErrExists) {
		t.Errorf("duplicate token name: %v", err)
	}
	p, err := svc.Token(ctx, read)
	if err != nil || p.User != "alice" || p.Scope != auth.ScopeRead || p.Via != "token" {
		t.Fatalf("Token = %+v, %v", p, err)
	}
	// Only the hash is stored.
	its, err := items.QueryAll(ctx, tbl, items.Query{Index: "GSITYPE", PK: "AUTH_TOKEN"})
	if err != nil || len(its) != 2 {
		t.Fatalf("token items: %v %v", its, err)
	}
	for _, it := range its {
		for k, v := range it {
			if s, ok := v.(string); ok && strings.Contains(s, read[8:]) {
				t.Errorf("token secret stored in %s", k)
			}
		}
	}
	if list, err := svc.Tokens(ctx, "alice"); err != nil || len(list) != 1 || list[0].Name != "ci" || list[0].Scope != auth.ScopeRead {
		t.Errorf("Tokens = %+v, %v", list, err)
	}
	if err := svc.RevokeToken(ctx, "alice", "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Token(ctx, read); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("revoked token: %v", err)
	}
	if err := svc.RevokeToken(ctx, "alice", "ci"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoke twice: %v", err)
	}
}

// TestMux: accounts off, every route is open; once a user exists, guarded
// routes want a session or token, public ones do not, a read token cannot
// write, and a cross-origin browser POST is refused even with a session.
func TestMux(t *testing.T) {
	t.Parallel()
	svc, _, _ := setup(t)
	ctx := context.Background()
	m := auth.NewMux(auth.NewGuard(svc, auth.GuardOptions{}))
	who := func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		w.Write([]byte("user=" + p.User))
	}
	m.HandleFunc("GET /data", who)
	m.HandleFunc("POST /data", who)
	m.Public("GET /healthz", http.HandlerFunc(who), "load balancers")
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	do := func(method, path string, hdr map[string]string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String(), resp.Header
	}
	if code, body, _ := do("GET", "/data", nil); code != 200 || body != "user=" {
		t.Fatalf("accounts off: %d %q", code, body)
	}
	if err := svc.AddUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	// The guard notices the first user within recheckEvery.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, _ := do("GET", "/data", nil)
		if code == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the guard never noticed the first user")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, h := do("GET", "/data", map[string]string{"Accept": "text/html"}); code != 303 || h.Get("Location") != "/login?next=%2Fdata" {
		t.Errorf("browser without a session: %d → %q", code, h.Get("Location"))
	}
	if code, _, h := do("GET", "/data", nil); code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("API without a token: %d", code)
	}
	if code, _, _ := do("GET", "/healthz", nil); code != 200 {
		t.Errorf("public route: %d", code)
	}
	read, _ := svc.CreateToken(ctx, "alice", "r", auth.ScopeRead)
	write, _ := svc.CreateToken(ctx, "alice", "w", auth.ScopeWrite)
	session, _ := svc.Login(ctx, "alice", "correct horse battery", "127.0.0.1")
	for _, tc := range []struct {
		name, method string
		hdr          map[string]string
		code         int
	}{
		{"read token reads", "GET", map[string]string{"Authorization": "Bearer " + read}, 200},
		{"read token cannot write", "POST", map[string]string{"Authorization": "Bearer " + read}, 403},
		{"write token writes", "POST", map[string]string{"Authorization": "Bearer " + write}, 200},
		{"bad token", "GET", map[string]string{"Authorization": "Bearer tally_t_forged"}, 401},
		{"basic auth is not a token", "GET", map[string]string{"Authorization": "Basic YWxpY2U6eA=="}, 401},
		{"session reads", "GET", map[string]string{"Cookie": auth.SessionCookie + "=" + session}, 200},
		{"session posts same-origin", "POST", map[string]string{"Cookie": auth.SessionCookie + "=" + session, "Sec-Fetch-Site": "same-origin"}, 200},
		{"cross-site POST refused", "POST", map[string]string{"Cookie": auth.SessionCookie + "=" + session, "Sec-Fetch-Site": "cross-site"}, 403},
		{"foreign Origin refused", "POST", map[string]string{"Cookie": auth.SessionCookie + "=" + session, "Origin": "https://evil.example"}, 403},
	} {
		code, body, _ := do(tc.method, "/data", tc.hdr)
		if code != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.name, code, body, tc.code)
		}
		if code == 200 && body != "user=alice" {
			t.Errorf("%s: handler saw %q, want alice", tc.name, body)
		}
	}
	routes := m.Routes()
	if len(routes) != 3 || routes[2].Pattern != "GET /healthz" || !routes[2].Public || routes[0].Public {
		t.Errorf("Routes = %+v", routes)
	}
}

// TestRequireAccounts: a guard for a public server refuses everything
// until the first user exists.
func TestRequireAccounts(t *testing.T) {
	t.Parallel()
	svc, _, _ := setup(t)
	m := auth.NewMux(auth.NewGuard(svc, auth.GuardOptions{RequireAccounts: true}))
	m.HandleFunc("GET /data", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("data")) })
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/data", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "tally user add") {
		t.Fatalf("no accounts on a public server: %d %s", rec.Code, rec.Body)
	}
}
