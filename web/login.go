package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/auth"
)

// Router is where the app's routes go: an *http.ServeMux, or an auth.Mux
// that guards them.
type Router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// publicRouter also takes routes open to anyone; auth.Mux is one.
type publicRouter interface {
	Public(pattern string, h http.Handler, why string)
}

// public registers a route every visitor needs before logging in.
func public(mux Router, pattern string, h http.HandlerFunc, why string) {
	if p, ok := mux.(publicRouter); ok {
		p.Public(pattern, h, why)
		return
	}
	mux.HandleFunc(pattern, h)
}

type loginPage struct {
	Common            common
	Error, Next, User string
}

func (a *App) loginForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, "login", loginPage{Common: common{Title: "Log in", Nav: "login"}, Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks the form's password and opens a session. Failures say only
// "wrong user or password", or how long a locked account must wait.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.render(w, http.StatusBadRequest, "login", loginPage{Common: common{Title: "Log in", Nav: "login"}, Error: "The form could not be read."})
		return
	}
	page := loginPage{Common: common{Title: "Log in", Nav: "login"}, Next: safeNext(r.PostForm.Get("next")), User: r.PostForm.Get("user")}
	if a.cfg.Auth == nil {
		page.Error = "Accounts are not configured on this server."
		a.render(w, http.StatusNotFound, "login", page)
		return
	}
	secret, err := a.cfg.Auth.Login(r.Context(), page.User, r.PostForm.Get("password"), auth.ClientAddr(r))
	var limited *auth.RateLimitedError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", retryAfter(limited.RetryAfter))
		page.Error = "Too many failed logins. Try again in " + limited.RetryAfter.Round(time.Minute).String() + "."
		a.render(w, http.StatusTooManyRequests, "login", page)
		return
	case errors.Is(err, auth.ErrBadCredentials):
		page.Error = "Wrong user or password."
		a.render(w, http.StatusUnauthorized, "login", page)
		return
	case err != nil:
		a.fail(w, err)
		return
	}
	auth.SetSessionCookie(w, secret)
	http.Redirect(w, r, page.Next, http.StatusSeeOther)
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(auth.SessionCookie); err == nil && a.cfg.Auth != nil {
		if err := a.cfg.Auth.Logout(r.Context(), c.Value); err != nil {
			a.fail(w, err)
			return
		}
	}
	auth.ClearSessionCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: a path, never a
// scheme-relative or absolute URL.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// retryAfter is a Retry-After header value: whole seconds, rounded up.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}
