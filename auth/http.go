package auth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// SessionCookie is the browser session cookie's name.
const SessionCookie = "tally_session"

// recheckEvery bounds how long a server without users takes to notice the
// first one (`tally user add` in another process). Once users exist,
// accounts stay on.
const recheckEvery = 2 * time.Second

// Guard authenticates requests: a Bearer token, else a session cookie.
type Guard struct {
	svc     *Service
	log     *slog.Logger
	require bool

	mu      sync.Mutex
	on      bool
	checked time.Time
}

// GuardOptions tune a Guard.
type GuardOptions struct {
	// RequireAccounts refuses every guarded request while no user exists,
	// instead of serving it openly: for servers anyone may reach (the
	// Lambda API behind API Gateway). A loopback-only server leaves it
	// false, so one person can use Tally without an account.
	RequireAccounts bool
	Log             *slog.Logger
}

// NewGuard returns a Guard over svc.
func NewGuard(svc *Service, opts GuardOptions) *Guard {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Guard{svc: svc, log: opts.Log, require: opts.RequireAccounts}
}

// Service is the account store the guard checks against.
func (g *Guard) Service() *Service { return g.svc }

// Enabled reports whether accounts are on: once any user exists, every
// guarded route needs credentials.
func (g *Guard) Enabled(ctx context.Context) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.on || time.Since(g.checked) < recheckEvery && !g.checked.IsZero() {
		return g.on, nil
	}
	on, err := g.svc.HasUsers(ctx)
	if err != nil {
		return false, err
	}
	g.on, g.checked = on, time.Now()
	return on, nil
}

type principalKey struct{}

// WithPrincipal attaches p to ctx.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's principal; ok is false when the
// request was not authenticated (accounts off, or a public route).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.User != ""
}

// Owner is the user a request's records belong to: "" when accounts are
// off, which is also the owner of everything stored before they were on.
func Owner(ctx context.Context) string {
	p, _ := FromContext(ctx)
	return p.User
}

// Authenticate resolves r's credentials. A request with none, when
// accounts are on, is ErrBadCredentials.
func (g *Guard) Authenticate(r *http.Request) (Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, ErrBadCredentials
		}
		return g.svc.Token(r.Context(), strings.TrimSpace(secret))
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return g.svc.Session(r.Context(), c.Value)
	}
	return Principal{}, ErrBadCredentials
}

// Require wraps h so that it runs only for an authenticated principal
// (when accounts are on), with the principal in the request's context. A
// read-scoped token may only read.
func (g *Guard) Require(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		on, err := g.Enabled(r.Context())
		if err != nil {
			g.log.Error("auth: cannot read accounts", "err", err)
			writeError(w, http.StatusServiceUnavailable, "accounts cannot be read: "+err.Error())
			return
		}
		if !on && g.require {
			writeError(w, http.StatusServiceUnavailable, "this server has no accounts yet: add one with `tally user add NAME` against its item store")
			return
		}
		if !on {
			h.ServeHTTP(w, r)
			return
		}
		p, err := g.Authenticate(r)
		switch {
		case errors.Is(err, ErrBadCredentials):
			g.refuse(w, r)
			return
		case err != nil:
			g.log.Error("auth: cannot check credentials", "err", err)
			writeError(w, http.StatusServiceUnavailable, "credentials cannot be checked: "+err.Error())
			return
		}
		if p.Scope == ScopeRead && !safeMethod(r.Method) {
			writeError(w, http.StatusForbidden, "this token may only read")
			return
		}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// refuse answers an unauthenticated request: a browser asking for a page
// goes to the login page, anything else gets 401.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") && r.Header.Get("Authorization") == "" {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tally"`)
	writeError(w, http.StatusUnauthorized, "authentication required: log in, or send Authorization: Bearer TOKEN (tally token create)")
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// SetSessionCookie gives the browser its session: Secure, HttpOnly and
// SameSite=Lax, for SessionTTL.
func SetSessionCookie(w http.ResponseWriter, secret string) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", MaxAge: int(SessionTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// ClearSessionCookie removes the session cookie.
func ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// ClientAddr is the address login failures are counted against: the
// connection's host (a proxy in front should be trusted explicitly, not
// by a header any client can send).
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Route is one registered pattern and whether it is open to anyone.
type Route struct {
	Pattern string
	Public  bool
	// Why says why a public route needs no account.
	Why string
}

// Mux is an http.ServeMux on which every route is guarded unless
// registered as Public with a reason, and every unsafe cross-origin
// browser request is refused (CSRF). It lists its routes so a test can
// prove that none is open by mistake.
type Mux struct {
	guard  *Guard
	mux    *http.ServeMux
	csrf   *http.CrossOriginProtection
	mu     sync.Mutex
	routes []Route
}

// NewMux returns an empty Mux guarded by g.
func NewMux(g *Guard) *Mux {
	return &Mux{guard: g, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection()}
}

// Handle registers a guarded route.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.add(Route{Pattern: pattern})
	m.mux.Handle(pattern, m.guard.Require(h))
}

// HandleFunc registers a guarded route.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// Public registers a route anyone may call, saying why.
func (m *Mux) Public(pattern string, h http.Handler, why string) {
	m.add(Route{Pattern: pattern, Public: true, Why: why})
	m.mux.Handle(pattern, h)
}

func (m *Mux) add(r Route) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes = append(m.routes, r)
}

// Routes lists every registered route in registration order.
func (m *Mux) Routes() []Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Route(nil), m.routes...)
}

// ServeHTTP serves r after the cross-origin check.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.csrf.Handler(m.mux).ServeHTTP(w, r)
}
