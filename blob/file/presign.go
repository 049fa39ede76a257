package file

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
)

// PathPrefix is the URL path under which presigned URLs point and Handler
// serves; tally serve mounts Handler there.
const PathPrefix = "/blob/"

// Presigned URLs look like
//
//	BASE/blob/KEY?expires=UNIX&content-type=CT&signature=HEX
//
// where KEY is the key with each segment path-escaped, content-type appears
// only on PUT URLs, and the signature is the hex HMAC-SHA256, under the
// store's secret, of
//
//	"tally-blob-v1\n" METHOD "\n" KEY "\n" UNIX "\n" CT
//
// Keys and content types contain no newline, so the message is unambiguous.
// A URL therefore names one method, one key, one expiry and (for PUT) one
// Content-Type; changing any of them breaks the signature.
const (
	keyFile        = ".presign-key"
	minSecretBytes = 16
	secretBytes    = 32
	// maxUploadBytes is S3's limit on a single PUT.
	maxUploadBytes = 5 << 30
)

// PresignPut implements blob.Store.
func (s *Store) PresignPut(ctx context.Context, key, contentType string, expiry time.Duration) (string, error) {
	if err := blob.ValidateContentType(contentType); err != nil {
		return "", fmt.Errorf("presign put %q: %w", key, err)
	}
	return s.presign(ctx, http.MethodPut, key, contentType, expiry)
}

// PresignGet implements blob.Store.
func (s *Store) PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error) {
	return s.presign(ctx, http.MethodGet, key, "", expiry)
}

func (s *Store) presign(ctx context.Context, method, key, contentType string, expiry time.Duration) (string, error) {
	op := "presign " + strings.ToLower(method)
	if err := blob.ValidateKey(key); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if err := blob.CheckExpiry(expiry); err != nil {
		return "", fmt.Errorf("%s %q: %w", op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s %q: %w", op, key, err)
	}
	if s.baseURL == "" {
		return "", fmt.Errorf("%s %q: the blob store was opened without a BaseURL, so it cannot make URLs: %w", op, key, tally.ErrInvalidArgument)
	}
	// Valid through the whole second exp (see serveHTTP), so never early.
	exp := strconv.FormatInt(time.Now().Add(expiry).Unix(), 10)
	q := url.Values{"expires": {exp}}
	if method == http.MethodPut {
		q.Set("content-type", contentType)
	}
	q.Set("signature", s.sign(method, key, exp, contentType))
	return s.baseURL + PathPrefix + escapeURLPath(key) + "?" + q.Encode(), nil
}

func (s *Store) sign(method, key, expires, contentType string) string {
	mac := hmac.New(sha256.New, s.secret)
	fmt.Fprintf(mac, "tally-blob-v1\n%s\n%s\n%s\n%s", method, key, expires, contentType)
	return hex.EncodeToString(mac.Sum(nil))
}

// escapeURLPath escapes each segment of key for a URL path.
func escapeURLPath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// Handler serves presigned URLs under PathPrefix ("/blob/"): GET streams the
// object (with Content-Type, ETag, Last-Modified and Range support), PUT
// stores the body with the same atomic Put. A request whose signature,
// expiry or Content-Type does not match is refused with 403 and a message
// saying which.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	refuse := func(code int, format string, args ...any) {
		http.Error(w, fmt.Sprintf(format, args...), code)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPut {
		w.Header().Set("Allow", "GET, PUT")
		refuse(http.StatusMethodNotAllowed, "method %s not allowed: presigned blob URLs accept GET or PUT", r.Method)
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		refuse(http.StatusNotFound, "not a blob URL: path must start with %s", PathPrefix)
		return
	}
	if err := blob.ValidateKey(key); err != nil {
		refuse(http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	exp, sig := q.Get("expires"), q.Get("signature")
	expUnix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sig == "" {
		refuse(http.StatusForbidden, "forbidden: not a presigned URL (expires or signature missing)")
		return
	}
	signedCT := ""
	if r.Method == http.MethodPut {
		signedCT = q.Get("content-type")
	}
	want := s.sign(r.Method, key, exp, signedCT)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		refuse(http.StatusForbidden, "forbidden: signature does not match this method, key, expiry and content type (tampered URL, or one signed for another request)")
		return
	}
	if now := time.Now(); now.Unix() > expUnix {
		refuse(http.StatusForbidden, "forbidden: URL expired at %s", time.Unix(expUnix, 0).UTC().Format(time.RFC3339))
		return
	}
	if r.Method == http.MethodPut {
		s.servePut(w, r, key, signedCT)
		return
	}
	s.serveGet(w, r, key)
}

func (s *Store) servePut(w http.ResponseWriter, r *http.Request, key, signedCT string) {
	if got := r.Header.Get("Content-Type"); got != signedCT {
		http.Error(w, fmt.Sprintf("forbidden: Content-Type %q does not match the %q this URL was signed for", got, signedCT), http.StatusForbidden)
		return
	}
	info, err := s.Put(r.Context(), key, http.MaxBytesReader(w, r.Body, maxUploadBytes), blob.PutOptions{ContentType: signedCT})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, fmt.Sprintf("object larger than %d bytes", int64(maxUploadBytes)), http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, tally.ErrInvalidArgument):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, "storing the object failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", info.ETag)
	w.WriteHeader(http.StatusOK)
}

func (s *Store) serveGet(w http.ResponseWriter, r *http.Request, key string) {
	rc, info, err := s.Get(r.Context(), key)
	switch {
	case errors.Is(err, tally.ErrNotFound):
		http.Error(w, "no such object", http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, "reading the object failed", http.StatusInternalServerError)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", info.ContentType)
	w.Header().Set("ETag", info.ETag)
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", info.Modified, rs) // Range, conditional requests
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	io.Copy(w, rc)
}

// loadOrCreateSecret returns the secret in root/.presign-key, creating it
// if absent. The new key is written to a temp file and hard-linked into
// place, so processes racing to create it all end up with the one winner.
func loadOrCreateSecret(root string) ([]byte, error) {
	path := filepath.Join(root, keyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err = createSecret(root, path); err == nil {
			b, err = os.ReadFile(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("presign key: %w", err)
	}
	if len(b) < minSecretBytes {
		return nil, fmt.Errorf("presign key %s: %d bytes, want at least %d (delete it to make a new one)", path, len(b), minSecretBytes)
	}
	return b, nil
}

func createSecret(root, path string) error {
	secret := make([]byte, secretBytes)
	rand.Read(secret)
	f, tmp, err := (&Store{root: root}).createTemp(root)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	_, err = f.Write(secret)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(root)
}
