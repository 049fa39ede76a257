// Package file is the embedded blob.Store: objects are files under one root
// directory, so `tally serve` needs nothing but a disk.
//
// Writes are atomic and durable: the object is written to a temp file in
// its final directory, fsynced, then renamed over the final name (Put) or
// hard-linked to it (PutIfAbsent, which fails if the name exists, even when
// another process races), and the directory is fsynced. A reader holds an
// open file, so it sees one whole version however many writers follow.
//
// Each object file starts with a small header holding the full key, the
// content type, the size, the MD5 (the ETag) and the modified time, with a
// CRC; the data follows. Header and data are one file, so they are replaced
// together by the one rename. See path.go for the key → path mapping.
//
// Presigned URLs point at BaseURL/blob/KEY and carry an HMAC-SHA256
// signature; Store.Handler serves them (tally serve mounts it at /blob/).
package file

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
)

// staleTempAge is how old a temp file must be before Open deletes it: far
// longer than any write in progress by another process should take.
const staleTempAge = time.Hour

// Options configure a Store.
type Options struct {
	// BaseURL is where tally serve is reachable by clients (e.g.
	// http://127.0.0.1:8080); presigned URLs are BaseURL/blob/KEY?…. It may
	// carry a path if a proxy strips it before Handler. Empty means
	// PresignPut and PresignGet fail.
	BaseURL string
	// Secret is the HMAC key that signs presigned URLs. Nil loads (or
	// creates, mode 0600) ROOT/.presign-key, so URLs survive restarts and
	// every process on the same root agrees.
	Secret []byte
}

// Store is a blob.Store on a local file system. It is safe for concurrent
// use by many goroutines and many processes sharing one root.
type Store struct {
	root    string
	baseURL string
	secret  []byte
}

var _ blob.Store = (*Store)(nil)

// Open opens (creating if needed) the store rooted at root. Before it
// returns, it walks the tree once to delete temp files that crashed writers
// left more than an hour ago, and empty directories, so a store that has
// seen crashes does not grow.
func Open(root string, opts Options) (*Store, error) {
	if root == "" {
		return nil, fmt.Errorf("open blob store: empty root: %w", tally.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", abs, err)
	}
	s := &Store{root: abs, baseURL: strings.TrimRight(opts.BaseURL, "/")}
	if s.baseURL != "" {
		u, err := url.Parse(s.baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("open blob store %s: base URL %q is not an absolute http(s) URL: %w", abs, opts.BaseURL, tally.ErrInvalidArgument)
		}
	}
	switch {
	case len(opts.Secret) == 0:
		if s.secret, err = loadOrCreateSecret(abs); err != nil {
			return nil, fmt.Errorf("open blob store %s: %w", abs, err)
		}
	case len(opts.Secret) < minSecretBytes:
		return nil, fmt.Errorf("open blob store %s: presign secret of %d bytes, want at least %d: %w", abs, len(opts.Secret), minSecretBytes, tally.ErrInvalidArgument)
	default:
		s.secret = append([]byte(nil), opts.Secret...)
	}
	cleanStale(abs, abs, time.Now().Add(-staleTempAge))
	return s, nil
}

// Root returns the store's root directory (absolute).
func (s *Store) Root() string { return s.root }

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (blob.Info, error) {
	return s.put(ctx, "put", key, r, opts, false)
}

// PutIfAbsent implements blob.Store. The hard link that publishes the
// object fails if the name exists, so exactly one of any number of racing
// writers, in any number of processes, wins.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (blob.Info, error) {
	return s.put(ctx, "put if absent", key, r, opts, true)
}

func (s *Store) put(ctx context.Context, op, key string, r io.Reader, opts blob.PutOptions, ifAbsent bool) (blob.Info, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Info{}, fmt.Errorf("%s: %w", op, err)
	}
	fail := func(err error) (blob.Info, error) {
		return blob.Info{}, fmt.Errorf("%s %q: %w", op, key, err)
	}
	if err := blob.ValidateContentType(opts.ContentType); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if r == nil {
		r = strings.NewReader("")
	}
	dirRel, name := keyDir(key)
	dir := filepath.Join(s.root, dirRel)
	f, tmp, err := s.createTemp(dir)
	if err != nil {
		return fail(err)
	}
	tmpGone := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !tmpGone {
			os.Remove(tmp)
		}
	}()

	m := meta{key: key, contentType: blob.ContentTypeOrDefault(opts.ContentType)}
	hdr := m.encode() // placeholder: size, MD5 and time are rewritten below
	if _, err := f.Write(hdr); err != nil {
		return fail(err)
	}
	h := md5.New()
	bufp := copyBufs.Get().(*[]byte)
	m.size, err = io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, r}, *bufp)
	copyBufs.Put(bufp)
	if err != nil {
		return fail(fmt.Errorf("write data: %w", err))
	}
	h.Sum(m.md5[:0])
	m.modified = time.Now().UTC()
	if _, err := f.WriteAt(m.encode(), 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	final := filepath.Join(dir, name)
	if ifAbsent {
		err = os.Link(tmp, final)
		if errors.Is(err, fs.ErrExist) {
			return fail(blob.ErrExists)
		}
		if err == nil {
			os.Remove(tmp) // before the directory fsync, which then covers it
			tmpGone = true
		}
	} else if err = os.Rename(tmp, final); err == nil {
		tmpGone = true
	}
	if err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return m.info(), nil
}

// copyBufs recycles Put's copy buffers.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// createTemp creates a new temp file in dir, creating dir (and parents) if
// needed. A concurrent Delete may remove an empty directory between the
// mkdir and the create, so it retries.
func (s *Store) createTemp(dir string) (*os.File, string, error) {
	var lastErr error
	for range 16 {
		var rnd [8]byte
		rand.Read(rnd[:])
		tmp := filepath.Join(dir, tempPrefix+hex.EncodeToString(rnd[:]))
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			return f, tmp, nil
		case errors.Is(err, fs.ErrExist):
			lastErr = err
		case errors.Is(err, fs.ErrNotExist):
			lastErr = err
			if err := s.mkdirs(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, "", err
			}
		default:
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("create temp file: %w", lastErr)
}

// mkdirs creates dir and its missing parents up to the root, fsyncing each
// parent that gains an entry so the new object stays reachable after a
// crash.
func (s *Store) mkdirs(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrNotExist) && dir != s.root && len(dir) > len(s.root) {
		if err := s.mkdirs(filepath.Dir(dir)); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o700)
	}
	switch {
	case err == nil:
		return syncDir(filepath.Dir(dir))
	case errors.Is(err, fs.ErrExist):
		return nil
	}
	return err
}

// syncDir fsyncs a directory so that entries renamed, linked or removed in
// it survive a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) { // file systems that cannot fsync a directory
		err = nil
	}
	return err
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	f, m, hlen, err := s.open(ctx, "get", key)
	if err != nil {
		return nil, blob.Info{}, err
	}
	return &objectReader{io.NewSectionReader(f, hlen, m.size), f}, m.info(), nil
}

// GetRange implements blob.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	f, m, hlen, err := s.open(ctx, "get range", key)
	if err != nil {
		return nil, err
	}
	n, err := blob.CheckRange(offset, length, m.size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get range %q: %w", key, err)
	}
	return &objectReader{io.NewSectionReader(f, hlen+offset, n), f}, nil
}

// Head implements blob.Store.
func (s *Store) Head(ctx context.Context, key string) (blob.Info, error) {
	f, m, _, err := s.open(ctx, "head", key)
	if err != nil {
		return blob.Info{}, err
	}
	f.Close()
	return m.info(), nil
}

// open opens key's object file and reads its header.
func (s *Store) open(ctx context.Context, op, key string) (*os.File, meta, int64, error) {
	if err := blob.ValidateKey(key); err != nil {
		return nil, meta{}, 0, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, meta{}, 0, fmt.Errorf("%s %q: %w", op, key, err)
	}
	f, m, hlen, err := openObject(filepath.Join(s.root, keyPath(key)))
	if err == nil && m.key != key {
		f.Close()
		err = fmt.Errorf("object file %s holds key %q: %w", keyPath(key), m.key, errCorrupt)
	}
	if err != nil {
		return nil, meta{}, 0, fmt.Errorf("%s %q: %w", op, key, err)
	}
	return f, m, hlen, nil
}

// openObject opens an object file and reads and checks its header. A
// missing file (or path) is tally.ErrNotFound.
func openObject(path string) (*os.File, meta, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if notExist(err) {
			return nil, meta{}, 0, tally.ErrNotFound
		}
		return nil, meta{}, 0, err
	}
	m, hlen, err := readMeta(f)
	if err != nil {
		f.Close()
		return nil, meta{}, 0, err
	}
	return f, m, hlen, nil
}

func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// objectReader reads an object's data from its open file.
type objectReader struct {
	*io.SectionReader
	f *os.File
}

// Close closes the object's file.
func (r *objectReader) Close() error { return r.f.Close() }

// Delete implements blob.Store. It also removes the directories the object
// leaves empty, so listing never wades through dead directories.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidateKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	dirRel, name := keyDir(key)
	dir := filepath.Join(s.root, dirRel)
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		if notExist(err) {
			return nil
		}
		return fmt.Errorf("delete %q: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	// Fails harmlessly at the first directory that is not empty; a Put
	// racing with it retries its mkdir.
	for d := dir; d != s.root && len(d) > len(s.root); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}

// cleanStale removes temp files last written before cutoff and empty
// directories under dir, best effort. It reports whether dir is now empty.
func cleanStale(root, dir string, cutoff time.Time) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	left := len(des)
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		switch {
		case strings.HasPrefix(de.Name(), tempPrefix) && de.Type().IsRegular():
			if fi, err := de.Info(); err == nil && fi.ModTime().Before(cutoff) && os.Remove(p) == nil {
				left--
			}
		case de.IsDir() && strings.HasSuffix(de.Name(), dirSuffix):
			if cleanStale(root, p, cutoff) && os.Remove(p) == nil {
				left--
			}
		}
	}
	return left == 0 && dir != root
}

// The object file header, before the data:
//
//	magic   [8]byte  "TALLYOB1"
//	hlen    uint32   header length including the CRC; the data starts here
//	size    uint64   data length
//	md5     [16]byte MD5 of the data (the ETag)
//	mtime   int64    Unix nanoseconds of the write
//	keylen  uint16, key bytes
//	ctlen   uint16, content type bytes
//	crc     uint32   CRC-32C of everything above
//
// Integers are big-endian. The file's length must be hlen+size.
const (
	magic       = "TALLYOB1"
	fixedHeader = 8 + 4 + 8 + 16 + 8 + 2
	maxHeader   = fixedHeader + blob.MaxKeyBytes + 2 + blob.MaxContentTypeBytes + 4
)

var (
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
	errCorrupt = errors.New("corrupt object file")
)

// meta is what the header holds.
type meta struct {
	key, contentType string
	size             int64
	md5              [md5.Size]byte
	modified         time.Time
}

func (m meta) info() blob.Info {
	return blob.Info{Key: m.key, Size: m.size, ETag: blob.ETag(m.md5[:]), ContentType: m.contentType, Modified: m.modified}
}

func (m meta) encode() []byte {
	hlen := fixedHeader + len(m.key) + 2 + len(m.contentType) + 4
	b := make([]byte, 0, hlen)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint32(b, uint32(hlen))
	b = binary.BigEndian.AppendUint64(b, uint64(m.size))
	b = append(b, m.md5[:]...)
	var nanos int64
	if !m.modified.IsZero() {
		nanos = m.modified.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(nanos))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.key)))
	b = append(b, m.key...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.contentType)))
	b = append(b, m.contentType...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// readMeta reads and checks the header of an object file.
func readMeta(f *os.File) (meta, int64, error) {
	buf := make([]byte, maxHeader)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return meta{}, 0, err
	}
	m, hlen, err := decodeHeader(buf[:n])
	if err != nil {
		return meta{}, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return meta{}, 0, err
	}
	if fi.Size() != hlen+m.size {
		return meta{}, 0, fmt.Errorf("%w: %d bytes, header says %d", errCorrupt, fi.Size(), hlen+m.size)
	}
	return m, hlen, nil
}

// decodeHeader parses a header from the start of b; it never panics.
func decodeHeader(b []byte) (meta, int64, error) {
	bad := func(why string) (meta, int64, error) { return meta{}, 0, fmt.Errorf("%w: %s", errCorrupt, why) }
	if len(b) < fixedHeader || string(b[:8]) != magic {
		return bad("no header")
	}
	hlen := int(binary.BigEndian.Uint32(b[8:]))
	if hlen < fixedHeader+2+4 || hlen > maxHeader || hlen > len(b) {
		return bad("header length out of range")
	}
	h := b[:hlen]
	if crc32.Checksum(h[:hlen-4], crcTable) != binary.BigEndian.Uint32(h[hlen-4:]) {
		return bad("header checksum mismatch")
	}
	var m meta
	size := binary.BigEndian.Uint64(h[12:])
	if size > 1<<62 {
		return bad("size out of range")
	}
	m.size = int64(size)
	copy(m.md5[:], h[20:36])
	if nanos := int64(binary.BigEndian.Uint64(h[36:])); nanos != 0 {
		m.modified = time.Unix(0, nanos).UTC()
	}
	klen := int(binary.BigEndian.Uint16(h[44:]))
	rest := h[fixedHeader : hlen-4]
	if klen > len(rest)-2 {
		return bad("key length out of range")
	}
	m.key = string(rest[:klen])
	rest = rest[klen:]
	clen := int(binary.BigEndian.Uint16(rest))
	if clen != len(rest)-2 {
		return bad("content type length out of range")
	}
	m.contentType = string(rest[2:])
	return m, int64(hlen), nil
}
