// Package auth gives Tally accounts: users with argon2id-hashed passwords,
// browser sessions, API tokens with a read or write scope, and a limit on
// failed logins. Everything lives in the items port, so the embedded server
// and the Lambda API behind API Gateway check the same users and tokens.
//
// Secrets are never stored: a session id or token is kept only as its
// SHA-256, so a copy of the table does not let anyone in.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// Errors callers branch on.
var (
	// ErrBadCredentials: unknown user, wrong password, or an unknown,
	// revoked or expired token or session. One error for all, so a caller
	// cannot tell which names exist.
	ErrBadCredentials = errors.New("auth: bad credentials")
	// ErrExists: the user or token name is taken.
	ErrExists = fmt.Errorf("auth: already exists: %w", tally.ErrConditionFailed)
	// ErrNotFound: no such user or token.
	ErrNotFound = fmt.Errorf("auth: %w", tally.ErrNotFound)
)

// RateLimitedError is returned for a login refused because too many
// attempts failed; RetryAfter says when to try again.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("auth: too many failed logins; try again in %s", e.RetryAfter.Round(time.Second))
}

// Scope is what a token may do.
type Scope string

// The scopes. A session has ScopeWrite.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// ParseScope checks a scope name.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeRead, ScopeWrite:
		return Scope(s), nil
	}
	return "", fmt.Errorf("auth: scope %q: want read or write: %w", s, tally.ErrInvalidArgument)
}

// Principal is who a request acts for.
type Principal struct {
	User  string
	Scope Scope
	// Via is "session" or "token" (or "" when accounts are off).
	Via string
}

// Login limits: at most MaxFailures failed logins per user name, and
// MaxFailuresPerClient per client address, in any FailureWindow.
const (
	MaxFailures          = 5
	MaxFailuresPerClient = 20
	FailureWindow        = 15 * time.Minute
	// SessionTTL is how long a login lasts.
	SessionTTL = 7 * 24 * time.Hour
	// MinPasswordLen is the shortest password accepted.
	MinPasswordLen = 10
)

// Item layout. Users share one partition so that "are there any users"
// and "list users" are one query without an index.
const (
	usersPK     = "AUTH#USERS"
	typeUser    = "AUTH_USER"
	typeToken   = "AUTH_TOKEN"
	typeSession = "AUTH_SESSION"
	typeLogin   = "AUTH_LOGIN_FAILURES"
)

func userKey(name string) items.Key  { return items.Key{PK: usersPK, SK: "USER#" + name} }
func tokenKey(hash string) items.Key { return items.Key{PK: "AUTH_TOKEN#" + hash, SK: "TOKEN"} }
func tokenName(user, name string) items.Key {
	return items.Key{PK: "AUTH_USER#" + user, SK: "TOKEN#" + name}
}
func sessionKey(hash string) items.Key { return items.Key{PK: "AUTH_SESSION#" + hash, SK: "SESSION"} }
func loginKey(who string) items.Key    { return items.Key{PK: "AUTH_LOGIN#" + who, SK: "FAILURES"} }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidateName checks a user or token name: lower-case letters, digits,
// dot, underscore and dash, up to 64.
func ValidateName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("auth: %s name %q: want 1–64 of a-z 0-9 . _ - starting with a letter or digit: %w", kind, name, tally.ErrInvalidArgument)
	}
	return nil
}

// Service keeps accounts in an item table.
type Service struct {
	items items.Table
	now   func() time.Time
	hash  params
}

// Options tune a Service.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FastHashForTests lowers the argon2id cost so tests that create many
	// users stay quick. Never set it in a server.
	FastHashForTests bool
}

// New returns a Service over t.
func New(t items.Table, opts Options) *Service {
	s := &Service{items: t, now: opts.Now, hash: defaultParams}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.FastHashForTests {
		s.hash = testParams
	}
	return s
}

// AddUser creates a user with a password; ErrExists if the name is taken.
func (s *Service) AddUser(ctx context.Context, name, password string) error {
	if err := ValidateName("user", name); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	h, err := s.hash.hash(password)
	if err != nil {
		return err
	}
	k := userKey(name)
	err = s.items.Put(ctx, items.Item{items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: typeUser,
		"user": name, "password": h, "created_at": s.now().UTC().Format(time.RFC3339)},
		items.Cond{Expr: "attribute_not_exists(PK)"})
	if errors.Is(err, tally.ErrConditionFailed) {
		return fmt.Errorf("add user %q: %w", name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	return nil
}

// SetPassword replaces a user's password.
func (s *Service) SetPassword(ctx context.Context, name, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	h, err := s.hash.hash(password)
	if err != nil {
		return err
	}
	_, err = s.items.Update(ctx, userKey(name), items.Update{Expr: "SET password = :p", Cond: "attribute_exists(PK)",
		Values: map[string]any{":p": h}})
	if errors.Is(err, tally.ErrConditionFailed) {
		return fmt.Errorf("set password of %q: %w", name, ErrNotFound)
	}
	return err
}

func checkPassword(p string) error {
	if len([]rune(p)) < MinPasswordLen || len(p) > 1024 {
		return fmt.Errorf("auth: a password needs %d to 1024 characters: %w", MinPasswordLen, tally.ErrInvalidArgument)
	}
	return nil
}

// Users lists the user names.
func (s *Service) Users(ctx context.Context) ([]string, error) {
	its, err := items.QueryAll(ctx, s.items, items.Query{PK: usersPK, SK: items.SKCond{Op: items.SKBeginsWith, Value: "USER#"}})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]string, 0, len(its))
	for _, it := range its {
		if u, ok := it["user"].(string); ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// HasUsers reports whether any account exists: without one, accounts are
// off (a loopback-only single-user server).
func (s *Service) HasUsers(ctx context.Context) (bool, error) {
	page, err := s.items.Query(ctx, items.Query{PK: usersPK, SK: items.SKCond{Op: items.SKBeginsWith, Value: "USER#"}, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("look for users: %w", err)
	}
	return len(page.Items) > 0, nil
}

// Login checks a password and opens a session, returning the session
// secret for the cookie. client is the caller's address, limited apart
// from the user name so one client cannot lock every account.
func (s *Service) Login(ctx context.Context, name, password, client string) (string, error) {
	now := s.now()
	for _, who := range []struct {
		key   string
		limit int
	}{{"user:" + name, MaxFailures}, {"client:" + client, MaxFailuresPerClient}} {
		if wait, err := s.locked(ctx, who.key, who.limit, now); err != nil {
			return "", err
		} else if wait > 0 {
			return "", &RateLimitedError{RetryAfter: wait}
		}
	}
	ok, err := s.verify(ctx, name, password)
	if err != nil {
		return "", err
	}
	if !ok {
		for _, who := range []string{"user:" + name, "client:" + client} {
			if err := s.fail(ctx, who, now); err != nil {
				return "", err
			}
		}
		return "", ErrBadCredentials
	}
	if err := s.items.Delete(ctx, loginKey("user:"+name), items.Cond{}); err != nil {
		return "", fmt.Errorf("login: clear failures: %w", err)
	}
	secret, err := newSecret("tally_s_")
	if err != nil {
		return "", err
	}
	k := sessionKey(digest(secret))
	exp := now.Add(SessionTTL)
	if err := s.items.Put(ctx, items.Item{items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: typeSession,
		"user": name, "expires_at": exp.Unix(), items.AttrTTL: exp.Unix()}, items.Cond{}); err != nil {
		return "", fmt.Errorf("login: store session: %w", err)
	}
	return secret, nil
}

// verify checks name's password, spending the same hashing work whether
// or not the user exists.
func (s *Service) verify(ctx context.Context, name, password string) (bool, error) {
	if ValidateName("user", name) != nil {
		s.hash.compare(dummyHash(), password)
		return false, nil
	}
	it, err := s.items.Get(ctx, userKey(name))
	if errors.Is(err, tally.ErrNotFound) {
		s.hash.compare(dummyHash(), password)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("login: read user: %w", err)
	}
	stored, _ := it["password"].(string)
	return s.hash.compare(stored, password), nil
}

// locked returns how long who must wait, when it has failed limit times in
// the current window.
func (s *Service) locked(ctx context.Context, who string, limit int, now time.Time) (time.Duration, error) {
	it, err := s.items.Get(ctx, loginKey(who))
	if errors.Is(err, tally.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("login: read failures: %w", err)
	}
	n, _ := items.Int64Of(it["count"])
	start, _ := items.Int64Of(it["window_start_ms"])
	end := time.UnixMilli(start).Add(FailureWindow)
	if n >= int64(limit) && now.Before(end) {
		return end.Sub(now), nil
	}
	return 0, nil
}

// fail counts one failed login for who, starting a new window when the
// last one ended.
func (s *Service) fail(ctx context.Context, who string, now time.Time) error {
	k := loginKey(who)
	cutoff := now.Add(-FailureWindow).UnixMilli()
	_, err := s.items.Update(ctx, k, items.Update{
		Expr:   "SET #type = :type, #ttl = :ttl ADD #count :one",
		Cond:   "attribute_exists(PK) AND window_start_ms > :cutoff",
		Names:  map[string]string{"#type": items.AttrType, "#ttl": items.AttrTTL, "#count": "count"},
		Values: map[string]any{":type": typeLogin, ":ttl": now.Add(FailureWindow).Unix(), ":one": 1, ":cutoff": cutoff},
	})
	if errors.Is(err, tally.ErrConditionFailed) {
		// No window yet, or it ended: start one.
		err = s.items.Put(ctx, items.Item{items.AttrPK: k.PK, items.AttrSK: k.SK, items.AttrType: typeLogin,
			"count": 1, "window_start_ms": now.UnixMilli(), items.AttrTTL: now.Add(FailureWindow).Unix()}, items.Cond{})
	}
	if err != nil {
		return fmt.Errorf("login: count failure: %w", err)
	}
	return nil
}

// Session returns the principal of a session secret.
func (s *Service) Session(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, "tally_s_") {
		return Principal{}, ErrBadCredentials
	}
	it, err := s.items.Get(ctx, sessionKey(digest(secret)))
	if errors.Is(err, tally.ErrNotFound) {
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, fmt.Errorf("read session: %w", err)
	}
	exp, _ := items.Int64Of(it["expires_at"])
	if !s.now().Before(time.Unix(exp, 0)) {
		return Principal{}, ErrBadCredentials
	}
	user, _ := it["user"].(string)
	return Principal{User: user, Scope: ScopeWrite, Via: "session"}, nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, secret string) error {
	return s.items.Delete(ctx, sessionKey(digest(secret)), items.Cond{})
}

// Token is an API token as listed (never its secret).
type Token struct {
	Name, User string
	Scope      Scope
	CreatedAt  time.Time
}

// CreateToken makes an API token for user and returns its secret, which is
// shown once: only its hash is kept.
func (s *Service) CreateToken(ctx context.Context, user, name string, scope Scope) (string, error) {
	if err := ValidateName("token", name); err != nil {
		return "", err
	}
	if _, err := ParseScope(string(scope)); err != nil {
		return "", err
	}
	if _, err := s.items.Get(ctx, userKey(user)); err != nil {
		if errors.Is(err, tally.ErrNotFound) {
			return "", fmt.Errorf("create token for %q: %w", user, ErrNotFound)
		}
		return "", err
	}
	secret, err := newSecret("tally_t_")
	if err != nil {
		return "", err
	}
	h := digest(secret)
	now := s.now().UTC().Format(time.RFC3339)
	tk, nk := tokenKey(h), tokenName(user, name)
	err = s.items.TransactWrite(ctx, []items.Write{
		items.PutWrite(items.Item{items.AttrPK: nk.PK, items.AttrSK: nk.SK, items.AttrType: typeToken,
			"user": user, "name": name, "scope": string(scope), "hash": h, "created_at": now}, items.Cond{Expr: "attribute_not_exists(PK)"}),
		items.PutWrite(items.Item{items.AttrPK: tk.PK, items.AttrSK: tk.SK, items.AttrType: typeToken,
			"user": user, "name": name, "scope": string(scope), "created_at": now}, items.Cond{}),
	})
	if errors.Is(err, tally.ErrConditionFailed) {
		return "", fmt.Errorf("create token %q for %q: %w", name, user, ErrExists)
	}
	if err != nil {
		return "", fmt.Errorf("create token %q: %w", name, err)
	}
	return secret, nil
}

// Tokens lists a user's tokens.
func (s *Service) Tokens(ctx context.Context, user string) ([]Token, error) {
	its, err := items.QueryAll(ctx, s.items, items.Query{PK: "AUTH_USER#" + user, SK: items.SKCond{Op: items.SKBeginsWith, Value: "TOKEN#"}})
	if err != nil {
		return nil, fmt.Errorf("list tokens of %q: %w", user, err)
	}
	var out []Token
	for _, it := range its {
		t := Token{User: user}
		t.Name, _ = it["name"].(string)
		sc, _ := it["scope"].(string)
		t.Scope = Scope(sc)
		if ts, ok := it["created_at"].(string); ok {
			t.CreatedAt, _ = time.Parse(time.RFC3339, ts)
		}
		out = append(out, t)
	}
	return out, nil
}

// RevokeToken deletes a token; ErrNotFound when there is none.
func (s *Service) RevokeToken(ctx context.Context, user, name string) error {
	nk := tokenName(user, name)
	it, err := s.items.Get(ctx, nk)
	if errors.Is(err, tally.ErrNotFound) {
		return fmt.Errorf("revoke token %q of %q: %w", name, user, ErrNotFound)
	}
	if err != nil {
		return err
	}
	h, _ := it["hash"].(string)
	return s.items.TransactWrite(ctx, []items.Write{
		items.DeleteWrite(nk, items.Cond{}), items.DeleteWrite(tokenKey(h), items.Cond{}),
	})
}

// Token returns the principal of a token secret.
func (s *Service) Token(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, "tally_t_") {
		return Principal{}, ErrBadCredentials
	}
	it, err := s.items.Get(ctx, tokenKey(digest(secret)))
	if errors.Is(err, tally.ErrNotFound) {
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, fmt.Errorf("read token: %w", err)
	}
	user, _ := it["user"].(string)
	sc, _ := it["scope"].(string)
	return Principal{User: user, Scope: Scope(sc), Via: "token"}, nil
}

// newSecret is prefix plus 32 random bytes, URL-safe.
func newSecret(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: random secret: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// digest is the stored form of a secret.
func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// equal compares secrets in constant time.
func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
