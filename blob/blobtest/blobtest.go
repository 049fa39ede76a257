// Package blobtest is the conformance suite every blob.Store passes: the
// file adapter in every test run, the S3 adapter against moto_server (or S3).
//
// Every subtest writes under its own random key prefix and deletes what it
// wrote, so the suite can share one bucket (and run in parallel) unchanged.
// It asserts only behaviour real S3 also has, so an adapter that passes it
// can stand in for S3.
package blobtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
)

// Capabilities describe what an adapter offers beyond the port's core, so
// one suite fits adapters (and emulators) that differ there.
type Capabilities struct {
	// Presign means URLs from PresignPut and PresignGet are reachable over
	// HTTP from the test process; the suite uploads and downloads through
	// them.
	Presign bool
	// PresignEnforced means the server refuses, with 403, presigned
	// requests that are expired, tampered with (another key) or that carry
	// another Content-Type than the one signed. S3 and blob/file do; an
	// emulator that does not verify signatures does not.
	PresignEnforced bool
}

// Run runs the suite. newStore is called once per subtest; it may return a
// fresh store or one shared by all (as a bucket is), since subtests use
// disjoint key prefixes.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store, caps Capabilities) {
	t.Run("RoundTrip", func(t *testing.T) { t.Parallel(); testRoundTrip(t, newStore(t)) })
	t.Run("DefaultContentType", func(t *testing.T) { t.Parallel(); testDefaultContentType(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { t.Parallel(); testOverwrite(t, newStore(t)) })
	t.Run("PutIfAbsent", func(t *testing.T) { t.Parallel(); testPutIfAbsent(t, newStore(t)) })
	t.Run("PutIfAbsentRace", func(t *testing.T) { t.Parallel(); testPutIfAbsentRace(t, newStore(t)) })
	t.Run("Missing", func(t *testing.T) { t.Parallel(); testMissing(t, newStore(t)) })
	t.Run("GetRange", func(t *testing.T) { t.Parallel(); testGetRange(t, newStore(t)) })
	t.Run("EmptyObject", func(t *testing.T) { t.Parallel(); testEmptyObject(t, newStore(t)) })
	t.Run("UnicodeKeys", func(t *testing.T) { t.Parallel(); testUnicodeKeys(t, newStore(t)) })
	t.Run("FileAndDirectoryKeys", func(t *testing.T) { t.Parallel(); testFileAndDirectoryKeys(t, newStore(t)) })
	t.Run("LongSegments", func(t *testing.T) { t.Parallel(); testLongSegments(t, newStore(t)) })
	t.Run("InvalidKeys", func(t *testing.T) { t.Parallel(); testInvalidKeys(t, newStore(t)) })
	t.Run("ListPrefixDelimiter", func(t *testing.T) { t.Parallel(); testListPrefixDelimiter(t, newStore(t)) })
	t.Run("ListPagination", func(t *testing.T) { t.Parallel(); testListPagination(t, newStore(t)) })
	t.Run("ListInvalid", func(t *testing.T) { t.Parallel(); testListInvalid(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { t.Parallel(); testDelete(t, newStore(t)) })
	t.Run("FailedPutKeepsOld", func(t *testing.T) { t.Parallel(); testFailedPut(t, newStore(t)) })
	t.Run("ConcurrentPutsAndReads", func(t *testing.T) { t.Parallel(); testConcurrent(t, newStore(t)) })
	t.Run("LargeObject", func(t *testing.T) { t.Parallel(); testLarge(t, newStore(t)) })
	t.Run("PresignInvalid", func(t *testing.T) { t.Parallel(); testPresignInvalid(t, newStore(t)) })
	if caps.Presign {
		t.Run("PresignRoundTrip", func(t *testing.T) { t.Parallel(); testPresignRoundTrip(t, newStore(t)) })
	}
	if caps.Presign && caps.PresignEnforced {
		t.Run("PresignRefusals", func(t *testing.T) { t.Parallel(); testPresignRefusals(t, newStore(t)) })
	}
}

// ---- helpers ----

// prefix returns a fresh key prefix for one subtest and deletes every
// object under it when the test ends.
func prefix(t *testing.T, s blob.Store) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	p := "blobtest-" + hex.EncodeToString(b[:]) + "/"
	t.Cleanup(func() {
		ctx := context.Background()
		for token := ""; ; {
			page, err := s.List(ctx, blob.ListOptions{Prefix: p, Token: token})
			if err != nil {
				t.Logf("cleanup: list %q: %v", p, err)
				return
			}
			for _, o := range page.Objects {
				if err := s.Delete(ctx, o.Key); err != nil {
					t.Logf("cleanup: %v", err)
				}
			}
			if token = page.NextToken; token == "" {
				return
			}
		}
	})
	return p
}

func put(t *testing.T, s blob.Store, key string, data []byte, contentType string) blob.Info {
	t.Helper()
	info, err := s.Put(t.Context(), key, bytes.NewReader(data), blob.PutOptions{ContentType: contentType})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func get(t *testing.T, s blob.Store, key string) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	// Sized by Info, so large objects are read without regrowing a buffer;
	// a reader longer or shorter than Info.Size still shows in the result.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(info.Size, 0), 64<<20)+bytes.MinRead))
	if _, err := buf.ReadFrom(rc); err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return buf.Bytes(), info
}

func etag(data []byte) string {
	sum := md5.Sum(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// randBytes returns n pseudo-random bytes, distinct for each seed. A 64 KiB
// random block is repeated with each copy stamped with its index, which is
// cheap even under the race detector and still differs at every block.
func randBytes(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	block := make([]byte, min(n, 64<<10))
	mrand.NewChaCha8(s).Read(block)
	b := make([]byte, n)
	for off, i := 0, uint64(0); off < n; off, i = off+len(block), i+1 {
		c := copy(b[off:], block)
		if c >= 8 {
			binary.LittleEndian.PutUint64(b[off:], i^seed<<32)
		}
	}
	return b
}

// checkInfo compares the fields every adapter reports from Put, Head, Get.
func checkInfo(t *testing.T, what string, got blob.Info, key string, data []byte, contentType string) {
	t.Helper()
	if got.Key != key {
		t.Errorf("%s: Key = %q, want %q", what, got.Key, key)
	}
	if got.Size != int64(len(data)) {
		t.Errorf("%s: Size = %d, want %d", what, got.Size, len(data))
	}
	if want := etag(data); got.ETag != want {
		t.Errorf("%s: ETag = %s, want %s (quoted hex MD5)", what, got.ETag, want)
	}
	if contentType != "" && got.ContentType != contentType {
		t.Errorf("%s: ContentType = %q, want %q", what, got.ContentType, contentType)
	}
}

func wantErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: error = %v, want one matching %v", what, err, target)
		}
	}
}

// ---- object round trips ----

func testRoundTrip(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "receipts/2026/r1.json"
	data := []byte(`{"merchant":"Corner Shop","total":"12.50"}`)
	before := time.Now()
	pi := put(t, s, key, data, "application/json")
	after := time.Now()
	checkInfo(t, "Put", pi, key, data, "application/json")

	hi, err := s.Head(t.Context(), key)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	checkInfo(t, "Head", hi, key, data, "application/json")
	// Stores keep seconds or finer; allow for clock skew with a remote one.
	if hi.Modified.Before(before.Add(-time.Minute)) || hi.Modified.After(after.Add(time.Minute)) {
		t.Errorf("Head: Modified = %v, want about %v", hi.Modified, before)
	}

	got, gi := get(t, s, key)
	if !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
	checkInfo(t, "Get", gi, key, data, "application/json")
	if !gi.Modified.Equal(hi.Modified) {
		t.Errorf("Get Modified = %v, Head Modified = %v", gi.Modified, hi.Modified)
	}

	all, err := blob.ReadAll(t.Context(), s, key)
	if err != nil || !bytes.Equal(all, data) {
		t.Errorf("ReadAll = %q, %v", all, err)
	}
}

func testDefaultContentType(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	put(t, s, p+"x.bin", []byte{1, 2, 3}, "")
	hi, err := s.Head(t.Context(), p+"x.bin")
	if err != nil {
		t.Fatal(err)
	}
	if hi.ContentType != blob.DefaultContentType {
		t.Errorf("ContentType = %q, want %q", hi.ContentType, blob.DefaultContentType)
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "img.png"
	put(t, s, key, []byte("version one, rather longer than the second"), "image/png")
	v2 := []byte("version two")
	pi := put(t, s, key, v2, "image/jpeg")
	checkInfo(t, "Put", pi, key, v2, "image/jpeg")
	got, gi := get(t, s, key)
	if !bytes.Equal(got, v2) {
		t.Errorf("after overwrite Get = %q, want %q", got, v2)
	}
	checkInfo(t, "Get", gi, key, v2, "image/jpeg")
	hi, err := s.Head(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, "Head", hi, key, v2, "image/jpeg")
}

func testPutIfAbsent(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "manifests/v0001.json"
	v1 := []byte(`{"version":1}`)
	info, err := s.PutIfAbsent(t.Context(), key, bytes.NewReader(v1), blob.PutOptions{ContentType: "application/json"})
	if err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	checkInfo(t, "PutIfAbsent", info, key, v1, "application/json")

	_, err = s.PutIfAbsent(t.Context(), key, strings.NewReader(`{"version":"other"}`), blob.PutOptions{ContentType: "text/plain"})
	wantErr(t, "second PutIfAbsent", err, blob.ErrExists, tally.ErrConditionFailed)
	if !blob.IsExists(err) {
		t.Errorf("IsExists(%v) = false", err)
	}
	got, gi := get(t, s, key)
	if !bytes.Equal(got, v1) {
		t.Errorf("after refused PutIfAbsent Get = %q, want %q", got, v1)
	}
	checkInfo(t, "Get", gi, key, v1, "application/json")

	// Once deleted, the key is free again.
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutIfAbsent(t.Context(), key, strings.NewReader("again"), blob.PutOptions{}); err != nil {
		t.Errorf("PutIfAbsent after Delete: %v", err)
	}
}

func testPutIfAbsentRace(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	const rounds, n = 4, 8
	for round := range rounds {
		key := fmt.Sprintf("%slease-%d", p, round)
		// Every writer's body blocks until all have started, so the
		// conditional writes land together and a check-then-write races.
		start := newBarrier(n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := &barrierReader{b: start, r: bytes.NewReader(fmt.Appendf(nil, "writer %d", i))}
				_, errs[i] = s.PutIfAbsent(t.Context(), key, body, blob.PutOptions{})
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: writers %d and %d both won PutIfAbsent", round, winner, i)
			case err == nil:
				winner = i
			case !blob.IsExists(err):
				t.Errorf("round %d: writer %d: %v, want ErrExists", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won PutIfAbsent", round)
		}
		if got, _ := get(t, s, key); string(got) != fmt.Sprintf("writer %d", winner) {
			t.Errorf("round %d: stored %q, but writer %d won", round, got, winner)
		}
	}
}

// barrier releases its waiters once n have arrived (or after a while, so an
// adapter that never reads a body cannot hang the suite).
type barrier struct {
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{waiting: n, open: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	if b.waiting--; b.waiting == 0 {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(5 * time.Second):
	}
}

// barrierReader waits at its barrier before its first byte.
type barrierReader struct {
	b      *barrier
	passed bool
	r      io.Reader
}

func (r *barrierReader) Read(p []byte) (int, error) {
	if !r.passed {
		r.passed = true
		r.b.wait()
	}
	return r.r.Read(p)
}

func testMissing(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	put(t, s, p+"dir/child", []byte("x"), "")
	for _, key := range []string{p + "nothing-here", p + "dir", p + "dir/child/grandchild", p + "dir/chil"} {
		_, _, err := s.Get(t.Context(), key)
		wantErr(t, "Get "+key, err, tally.ErrNotFound)
		_, err = s.Head(t.Context(), key)
		wantErr(t, "Head "+key, err, tally.ErrNotFound)
		_, err = s.GetRange(t.Context(), key, 0, 1)
		wantErr(t, "GetRange "+key, err, tally.ErrNotFound)
	}
}

func testGetRange(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "range.txt"
	data := []byte("0123456789abcdefghij") // 20 bytes
	put(t, s, key, data, "text/plain")
	for _, tc := range []struct {
		name           string
		offset, length int64
		want           string // "" with err set
		err            error
	}{
		{"middle", 5, 4, "5678", nil},
		{"first byte", 0, 1, "0", nil},
		{"last byte", 19, 1, "j", nil},
		{"to end", 12, -1, "cdefghij", nil},
		{"whole", 0, -1, string(data), nil},
		{"length past end is cut", 15, 100, "fghij", nil},
		{"offset at end", 20, 1, "", tally.ErrInvalidArgument},
		{"offset at end to end", 20, -1, "", tally.ErrInvalidArgument},
		{"offset past end", 25, -1, "", tally.ErrInvalidArgument},
		{"negative offset", -1, 2, "", tally.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := s.GetRange(t.Context(), key, tc.offset, tc.length)
			if tc.err != nil {
				if err == nil {
					rc.Close()
				}
				wantErr(t, "GetRange", err, tc.err)
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tc.offset, tc.length, err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || string(got) != tc.want {
				t.Errorf("GetRange(%d, %d) = %q, %v; want %q", tc.offset, tc.length, got, err, tc.want)
			}
		})
	}
}

func testEmptyObject(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "empty"
	pi := put(t, s, key, nil, "text/plain")
	checkInfo(t, "Put", pi, key, nil, "text/plain")
	got, gi := get(t, s, key)
	if len(got) != 0 {
		t.Errorf("Get = %q, want empty", got)
	}
	checkInfo(t, "Get", gi, key, nil, "text/plain")
	hi, err := s.Head(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, "Head", hi, key, nil, "text/plain")
	if hi.ETag != `"d41d8cd98f00b204e9800998ecf8427e"` {
		t.Errorf("ETag of empty object = %s", hi.ETag)
	}
	page, err := s.List(t.Context(), blob.ListOptions{Prefix: p})
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Size != 0 {
		t.Errorf("List = %+v, %v; want the one empty object", page, err)
	}
}

func testUnicodeKeys(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	keys := map[string]string{
		p + "收据/été 2026/🧾.json": "receipt",
		p + "é":                  "nfc",     // U+00E9
		p + "e\u0301":            "nfd",     // e + combining acute: another key
		p + "Total":              "upper",   // case matters
		p + "total":              "lower",   //
		p + "a b+c%20d#e?f&g=h":  "symbols", // URL-special characters
		p + "~!$'()*,;:@[]{}^`|": "punct",   //
	}
	for k, v := range keys {
		pi := put(t, s, k, []byte(v), "text/plain")
		if pi.Key != k {
			t.Errorf("Put(%q).Key = %q", k, pi.Key)
		}
	}
	for k, v := range keys {
		got, gi := get(t, s, k)
		if string(got) != v || gi.Key != k {
			t.Errorf("Get(%q) = %q (key %q), want %q", k, got, gi.Key, v)
		}
	}
	var want []string
	for k := range keys {
		want = append(want, k)
	}
	slices.Sort(want)
	objs, cps := listAll(t, s, blob.ListOptions{Prefix: p}, 3)
	if !slices.Equal(objs, want) || len(cps) != 0 {
		t.Errorf("List = %q, %q\nwant %q", objs, cps, want)
	}
	objs, cps = listAll(t, s, blob.ListOptions{Prefix: p + "收据/", Delimiter: "/"}, 0)
	if len(objs) != 0 || !slices.Equal(cps, []string{p + "收据/été 2026/"}) {
		t.Errorf("List(收据/, /) = %q, %q", objs, cps)
	}
	objs, _ = listAll(t, s, blob.ListOptions{Prefix: p + "收据/été 2026/🧾"}, 0)
	if !slices.Equal(objs, []string{p + "收据/été 2026/🧾.json"}) {
		t.Errorf("List(收据/été 2026/🧾) = %q", objs)
	}
	// A prefix may end inside a UTF-8 sequence: it is a byte prefix.
	objs, cps = listAll(t, s, blob.ListOptions{Prefix: p + "收"[:2], Delimiter: "/"}, 0)
	if len(objs) != 0 || !slices.Equal(cps, []string{p + "收据/"}) {
		t.Errorf("List(half a rune) = %q, %q", objs, cps)
	}
}

func testFileAndDirectoryKeys(t *testing.T, s blob.Store) {
	// S3 keys are flat strings: "a" and "a/b" coexist, as do keys that look
	// like any encoding an adapter might use on disk.
	p := prefix(t, s)
	keys := []string{"a", "a/b", "a/b/c", "a.o", "a.d", "a.d/b", "a%2Fb", "a%2fb", "=x", "%", ".hidden", "a/.tmp-0123456789abcdef", "..a", "a..", "-", "_"}
	for i, k := range keys {
		put(t, s, p+k, []byte(k), fmt.Sprintf("text/x-%d", i))
	}
	for i, k := range keys {
		got, gi := get(t, s, p+k)
		if string(got) != k {
			t.Errorf("Get(%q) = %q", k, got)
		}
		checkInfo(t, "Get", gi, p+k, []byte(k), fmt.Sprintf("text/x-%d", i))
	}
	want := make([]string, len(keys))
	for i, k := range keys {
		want[i] = p + k
	}
	slices.Sort(want)
	if objs, _ := listAll(t, s, blob.ListOptions{Prefix: p}, 4); !slices.Equal(objs, want) {
		t.Errorf("List = %q\nwant %q", objs, want)
	}
	if err := s.Delete(t.Context(), p+"a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, s, p+"a/b"); string(got) != "a/b" {
		t.Errorf("after deleting a: Get(a/b) = %q", got)
	}
	if err := s.Delete(t.Context(), p+"a/b/c"); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, s, p+"a/b"); string(got) != "a/b" {
		t.Errorf("after deleting a/b/c: Get(a/b) = %q", got)
	}
}

func testLongSegments(t *testing.T, s blob.Store) {
	// Segments far longer than a file name may be (S3 has no such limit).
	p := prefix(t, s)
	long := strings.Repeat("x", 300)
	wide := strings.Repeat("é", 150) // 300 bytes, and more once escaped
	keys := []string{long, long + "/a", long + "/b/" + wide, long + "y", wide, wide + "/" + long, "x/" + long, "w"}
	for _, k := range keys {
		put(t, s, p+k, []byte(k), "")
	}
	for _, k := range keys {
		if got, gi := get(t, s, p+k); string(got) != k || gi.Key != p+k {
			t.Errorf("Get(%.20q…) = %.20q… (key %.20q…)", k, got, gi.Key)
		}
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = p + k
	}
	for _, tc := range []struct{ prefix, delim string }{{"", ""}, {"", "/"}, {long, "/"}, {long + "/", "/"}, {wide, ""}, {"x", "/"}} {
		wantObjs, wantCPs := expectList(full, p+tc.prefix, tc.delim)
		objs, cps := listAll(t, s, blob.ListOptions{Prefix: p + tc.prefix, Delimiter: tc.delim}, 2)
		if !slices.Equal(objs, wantObjs) || !slices.Equal(cps, wantCPs) {
			t.Errorf("List(%.20q…, %q) = %q, %q\nwant %q, %q", tc.prefix, tc.delim, objs, cps, wantObjs, wantCPs)
		}
	}
}

// badKeys are refused by every method.
var badKeys = []struct{ name, key string }{
	{"empty", ""},
	{"dot-dot first", "../x"},
	{"dot-dot inside", "a/../b"},
	{"dot segment", "a/./b"},
	{"absolute", "/abs"},
	{"NUL", "a\x00b"},
	{"control", "a\nb"},
	{"too long", strings.Repeat("k", blob.MaxKeyBytes+1)},
	{"empty segment", "a//b"},
	{"trailing slash", "a/"},
	{"invalid UTF-8", "a\xffb"},
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	ctx := t.Context()
	for _, bk := range badKeys {
		key := bk.key
		t.Run(bk.name, func(t *testing.T) {
			calls := map[string]func() error{
				"Put": func() error {
					_, err := s.Put(ctx, key, strings.NewReader("x"), blob.PutOptions{})
					return err
				},
				"PutIfAbsent": func() error {
					_, err := s.PutIfAbsent(ctx, key, strings.NewReader("x"), blob.PutOptions{})
					return err
				},
				"Get": func() error {
					rc, _, err := s.Get(ctx, key)
					if err == nil {
						rc.Close()
					}
					return err
				},
				"GetRange": func() error {
					rc, err := s.GetRange(ctx, key, 0, 1)
					if err == nil {
						rc.Close()
					}
					return err
				},
				"Head":   func() error { _, err := s.Head(ctx, key); return err },
				"Delete": func() error { return s.Delete(ctx, key) },
				"PresignPut": func() error {
					_, err := s.PresignPut(ctx, key, "image/jpeg", time.Minute)
					return err
				},
				"PresignGet": func() error { _, err := s.PresignGet(ctx, key, time.Minute); return err },
			}
			for name, call := range calls {
				wantErr(t, name, call(), tally.ErrInvalidArgument)
			}
		})
	}
	// The longest valid key works.
	p := prefix(t, s)
	long := p + strings.Repeat("k", blob.MaxKeyBytes-len(p))
	put(t, s, long, []byte("long"), "")
	if got, _ := get(t, s, long); string(got) != "long" {
		t.Errorf("Get(1024-byte key) = %q", got)
	}
}

// ---- listing ----

// listAll lists every page (with the given page size) and returns the keys
// and common prefixes, checking page size, order and that no item repeats.
func listAll(t *testing.T, s blob.Store, opts blob.ListOptions, limit int) (objs, cps []string) {
	t.Helper()
	opts.Limit = limit
	var last string
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("List(%+v): no end after %d pages", opts, pages)
		}
		page, err := s.List(t.Context(), opts)
		if err != nil {
			t.Fatalf("List(%+v): %v", opts, err)
		}
		if n := len(page.Objects) + len(page.CommonPrefixes); limit > 0 && n > limit {
			t.Fatalf("List(%+v): page of %d items, limit %d", opts, n, limit)
		}
		var items []string
		for _, o := range page.Objects {
			items = append(items, o.Key)
			objs = append(objs, o.Key)
		}
		items = append(items, page.CommonPrefixes...)
		cps = append(cps, page.CommonPrefixes...)
		slices.Sort(items)
		for _, it := range items {
			if it <= last && last != "" {
				t.Fatalf("List(%+v): item %q after %q (repeated or out of order)", opts, it, last)
			}
			last = it
		}
		if page.NextToken == "" {
			break
		}
		opts.Token = page.NextToken
	}
	if !slices.IsSorted(objs) || !slices.IsSorted(cps) {
		t.Errorf("List(%+v): not sorted: %q %q", opts, objs, cps)
	}
	return objs, cps
}

// expectList is the reference: S3's ListObjectsV2 over keys.
func expectList(keys []string, prefix, delim string) (objs, cps []string) {
	seen := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if i := strings.Index(k[len(prefix):], delim); delim != "" && i >= 0 {
			cp := k[:len(prefix)+i+len(delim)]
			if !seen[cp] {
				seen[cp] = true
				cps = append(cps, cp)
			}
			continue
		}
		objs = append(objs, k)
	}
	slices.Sort(objs)
	slices.Sort(cps)
	return objs, cps
}

var listKeys = []string{
	"a", "a/b", "a/c/d", "a/c/e", "a-b", "a0", "ab/c", "b/x/y", "b/z", "c", "C",
	"é", "z/1", "z/2", "z/3", "z/4/deep/er", "收据/été 2026/🧾.json", "收据/2025/x",
}

func putListKeys(t *testing.T, s blob.Store) (p string, keys []string) {
	p = prefix(t, s)
	for _, k := range listKeys {
		put(t, s, p+k, []byte(k), "")
		keys = append(keys, p+k)
	}
	return p, keys
}

func testListPrefixDelimiter(t *testing.T, s blob.Store) {
	p, keys := putListKeys(t, s)
	add := func(xs ...string) []string {
		for i := range xs {
			xs[i] = p + xs[i]
		}
		return xs
	}
	for _, tc := range []struct {
		prefix, delim  string
		objs, prefixes []string // nil: take the reference's answer
	}{
		{prefix: "", delim: "/", objs: add("C", "a", "a-b", "a0", "c", "é"), prefixes: add("a/", "ab/", "b/", "z/", "收据/")},
		{prefix: "a", delim: "/", objs: add("a", "a-b", "a0"), prefixes: add("a/", "ab/")},
		{prefix: "a/", delim: "/", objs: add("a/b"), prefixes: add("a/c/")},
		{prefix: "b/", delim: "", objs: add("b/x/y", "b/z")},
		{prefix: "b/x", delim: "/", prefixes: add("b/x/")},
		{prefix: "z/4/d", delim: "/", prefixes: add("z/4/deep/")},
		{prefix: "a/c/d", delim: "/", objs: add("a/c/d")},
		{prefix: "nope/", delim: "/"},
		{prefix: "a//", delim: "/"},
		{prefix: "收", delim: "/", prefixes: add("收据/")},
		{prefix: "", delim: "-"},
		{prefix: "a", delim: "c"},
		{prefix: "", delim: "/c/"},
		{prefix: "", delim: ""},
		{prefix: "z/", delim: "/"},
	} {
		t.Run(fmt.Sprintf("%q,%q", tc.prefix, tc.delim), func(t *testing.T) {
			wantObjs, wantCPs := expectList(keys, p+tc.prefix, tc.delim)
			if tc.objs != nil || tc.prefixes != nil {
				if !slices.Equal(wantObjs, tc.objs) || !slices.Equal(wantCPs, tc.prefixes) {
					t.Fatalf("reference disagrees with the table: %q %q", wantObjs, wantCPs)
				}
			}
			for _, limit := range []int{0, 1, 2, 5} {
				objs, cps := listAll(t, s, blob.ListOptions{Prefix: p + tc.prefix, Delimiter: tc.delim}, limit)
				if !slices.Equal(objs, wantObjs) || !slices.Equal(cps, wantCPs) {
					t.Errorf("limit %d: List = %q, %q\nwant %q, %q", limit, objs, cps, wantObjs, wantCPs)
				}
			}
		})
	}
}

func testListPagination(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	var keys []string
	for i := range 23 {
		k := fmt.Sprintf("%sk%02d", p, i)
		if i%4 == 0 {
			k = fmt.Sprintf("%sk%02d/nested/%d", p, i, i)
		}
		keys = append(keys, k)
		put(t, s, k, []byte{byte(i)}, "")
	}
	slices.Sort(keys)
	for _, limit := range []int{1, 2, 3, 7, 22, 23, 24, 1000} {
		objs, _ := listAll(t, s, blob.ListOptions{Prefix: p}, limit)
		if !slices.Equal(objs, keys) {
			t.Errorf("limit %d: listed %q\nwant %q", limit, objs, keys)
		}
	}
	// Objects carry their metadata.
	page, err := s.List(t.Context(), blob.ListOptions{Prefix: p, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 1 || page.NextToken == "" {
		t.Fatalf("first page of 1 = %+v", page)
	}
	o := page.Objects[0]
	if o.Key != keys[0] || o.Size != 1 || o.ETag != etag([]byte{0}) || o.Modified.IsZero() {
		t.Errorf("listed %+v, want key %q, size 1, ETag %s and a time", o, keys[0], etag([]byte{0}))
	}
	// A token stays valid while keys change around it.
	put(t, s, p+"a-first", []byte("new"), "") // before the token: not listed
	if err := s.Delete(t.Context(), keys[1]); err != nil {
		t.Fatal(err)
	}
	rest, _ := listAll(t, s, blob.ListOptions{Prefix: p, Token: page.NextToken}, 5)
	if !slices.Equal(rest, keys[2:]) {
		t.Errorf("after the first page: %q\nwant %q", rest, keys[2:])
	}
}

func testListInvalid(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	put(t, s, p+"x", []byte("x"), "")
	_, err := s.List(t.Context(), blob.ListOptions{Prefix: p, Limit: -1})
	wantErr(t, "List(limit -1)", err, tally.ErrInvalidArgument)
	page, err := s.List(t.Context(), blob.ListOptions{Prefix: p + "nothing/"})
	if err != nil || len(page.Objects)+len(page.CommonPrefixes) != 0 || page.NextToken != "" {
		t.Errorf("List(empty prefix) = %+v, %v; want an empty last page", page, err)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "deep/er/obj"
	put(t, s, key, []byte("x"), "")
	put(t, s, p+"deep/sibling", []byte("y"), "")
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Head(t.Context(), key)
	wantErr(t, "Head after Delete", err, tally.ErrNotFound)
	if err := s.Delete(t.Context(), key); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
	if err := s.Delete(t.Context(), p+"never/was/here"); err != nil {
		t.Errorf("Delete of a never-written key: %v, want nil", err)
	}
	objs, cps := listAll(t, s, blob.ListOptions{Prefix: p, Delimiter: "/"}, 0)
	if len(objs) != 0 || !slices.Equal(cps, []string{p + "deep/"}) {
		t.Errorf("List after Delete = %q %q, want only %q", objs, cps, p+"deep/")
	}
	objs, cps = listAll(t, s, blob.ListOptions{Prefix: p + "deep/", Delimiter: "/"}, 0)
	if !slices.Equal(objs, []string{p + "deep/sibling"}) || len(cps) != 0 {
		t.Errorf("List(deep/) after Delete = %q %q (a prefix with no objects left is not listed)", objs, cps)
	}
	if err := s.Delete(t.Context(), p+"deep/sibling"); err != nil {
		t.Fatal(err)
	}
	if objs, cps = listAll(t, s, blob.ListOptions{Prefix: p, Delimiter: "/"}, 0); len(objs)+len(cps) != 0 {
		t.Errorf("List after deleting everything = %q %q", objs, cps)
	}
}

// failingReader yields n bytes, then fails.
type failingReader struct{ n int }

var errReader = errors.New("reader broke")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errReader
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func testFailedPut(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "obj"
	put(t, s, key, []byte("old"), "text/plain")
	if _, err := s.Put(t.Context(), key, &failingReader{n: 100 << 10}, blob.PutOptions{}); err == nil {
		t.Error("Put from a failing reader succeeded")
	}
	if got, _ := get(t, s, key); string(got) != "old" {
		t.Errorf("after a failed Put: %q, want the old object", got)
	}
	if _, err := s.Put(t.Context(), p+"new", &failingReader{n: 10}, blob.PutOptions{}); err == nil {
		t.Error("Put from a failing reader succeeded")
	}
	_, err := s.Head(t.Context(), p+"new")
	wantErr(t, "Head after a failed Put", err, tally.ErrNotFound)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, key, strings.NewReader("canceled"), blob.PutOptions{}); err == nil {
		t.Error("Put with a canceled context succeeded")
	}
	if _, err := s.PutIfAbsent(ctx, p+"canceled", strings.NewReader("canceled"), blob.PutOptions{}); err == nil {
		t.Error("PutIfAbsent with a canceled context succeeded")
	}
	if got, _ := get(t, s, key); string(got) != "old" {
		t.Errorf("after a canceled Put: %q, want the old object", got)
	}
	objs, _ := listAll(t, s, blob.ListOptions{Prefix: p}, 0)
	if !slices.Equal(objs, []string{key}) {
		t.Errorf("after failed Puts List = %q, want only %q", objs, key)
	}
}

// ---- concurrency and size ----

func testConcurrent(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "hot"
	const writers, perWriter, readers = 4, 4, 4
	versions := map[string]int{} // ETag → size
	var contents [][]byte
	for i := range writers * perWriter {
		b := randBytes(uint64(i+1), (64<<10)+i*(13<<10)) // distinct sizes and bytes
		contents = append(contents, b)
		versions[etag(b)] = len(b)
	}
	initial := []byte("initial version")
	versions[etag(initial)] = len(initial)
	put(t, s, key, initial, "")

	ctx := t.Context()
	done := make(chan struct{})
	var rwg, wwg sync.WaitGroup
	var mu sync.Mutex
	var reads int
	for range readers {
		rwg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				rc, info, err := s.Get(ctx, key)
				if err != nil {
					t.Errorf("Get during writes: %v", err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Errorf("read during writes: %v", err)
					return
				}
				size, ok := versions[etag(b)]
				switch {
				case !ok:
					t.Errorf("read %d bytes matching no written version (torn or partial read)", len(b))
					return
				case size != len(b) || info.Size != int64(len(b)) || info.ETag != etag(b):
					t.Errorf("read %d bytes with Info size %d ETag %s: metadata of another version", len(b), info.Size, info.ETag)
					return
				}
				mu.Lock()
				reads++
				mu.Unlock()
			}
		})
	}
	for w := range writers {
		wwg.Go(func() {
			for i := range perWriter {
				if _, err := s.Put(ctx, key, bytes.NewReader(contents[w*perWriter+i]), blob.PutOptions{}); err != nil {
					t.Errorf("Put: %v", err)
				}
			}
		})
	}
	wwg.Wait()
	close(done)
	rwg.Wait()
	t.Logf("%d consistent reads during %d writes", reads, writers*perWriter)
	got, _ := get(t, s, key)
	if _, ok := versions[etag(got)]; !ok {
		t.Error("final object matches no written version")
	}
}

func testLarge(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "large.bin"
	data := randBytes(42, 20<<20)
	pi := put(t, s, key, data, "application/octet-stream")
	checkInfo(t, "Put", pi, key, data, "application/octet-stream")
	got, gi := get(t, s, key)
	if !bytes.Equal(got, data) {
		t.Errorf("Get of 20 MiB: content differs (got %d bytes)", len(got))
	}
	checkInfo(t, "Get", gi, key, data, "")
	off, n := int64(7<<20)+3, int64(1<<20)
	rc, err := s.GetRange(t.Context(), key, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	part, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(part, data[off:off+n]) {
		t.Errorf("GetRange in a large object: %d bytes, %v; content differs", len(part), err)
	}
}

// ---- presigned URLs ----

func testPresignInvalid(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	for _, d := range []time.Duration{0, -time.Second, blob.MaxPresignExpiry + time.Second} {
		_, err := s.PresignGet(t.Context(), p+"x", d)
		wantErr(t, fmt.Sprintf("PresignGet(expiry %v)", d), err, tally.ErrInvalidArgument)
		_, err = s.PresignPut(t.Context(), p+"x", "text/plain", d)
		wantErr(t, fmt.Sprintf("PresignPut(expiry %v)", d), err, tally.ErrInvalidArgument)
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func do(t *testing.T, method, u, contentType string, body []byte, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp.StatusCode, resp.Header, b
}

func testPresignRoundTrip(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	key := p + "uploads/收据 1.jpg"
	data := randBytes(7, 100<<10)
	putURL, err := s.PresignPut(t.Context(), key, "image/jpeg", 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignPut: %v", err)
	}
	if code, _, body := do(t, http.MethodPut, putURL, "image/jpeg", data, nil); code != http.StatusOK {
		t.Fatalf("presigned PUT: %d %s", code, body)
	}
	got, gi := get(t, s, key)
	if !bytes.Equal(got, data) {
		t.Fatal("object stored through the presigned PUT differs")
	}
	checkInfo(t, "Get after presigned PUT", gi, key, data, "image/jpeg")

	getURL, err := s.PresignGet(t.Context(), key, 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignGet: %v", err)
	}
	code, h, body := do(t, http.MethodGet, getURL, "", nil, nil)
	if code != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("presigned GET: %d, %d bytes (want 200, %d bytes)", code, len(body), len(data))
	}
	if ct := h.Get("Content-Type"); ct != "image/jpeg" {
		t.Errorf("presigned GET Content-Type = %q, want image/jpeg", ct)
	}
	if et := h.Get("ETag"); et != etag(data) {
		t.Errorf("presigned GET ETag = %q, want %s", et, etag(data))
	}
	code, _, body = do(t, http.MethodGet, getURL, "", nil, map[string]string{"Range": "bytes=1000-1999"})
	if code != http.StatusPartialContent || !bytes.Equal(body, data[1000:2000]) {
		t.Errorf("presigned ranged GET: %d, %d bytes (want 206, 1000 bytes)", code, len(body))
	}
	// A URL may be used until it expires: overwrite through it again.
	if code, _, body := do(t, http.MethodPut, putURL, "image/jpeg", []byte("second"), nil); code != http.StatusOK {
		t.Fatalf("second presigned PUT: %d %s", code, body)
	}
	if got, _ := get(t, s, key); string(got) != "second" {
		t.Errorf("after second presigned PUT: %q", got)
	}
	// A GET URL for a missing object is refused (404, or 403 without list
	// permission on S3).
	missURL, err := s.PresignGet(t.Context(), p+"missing", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := do(t, http.MethodGet, missURL, "", nil, nil); code != http.StatusNotFound && code != http.StatusForbidden {
		t.Errorf("presigned GET of a missing object: %d, want 404", code)
	}
}

func testPresignRefusals(t *testing.T, s blob.Store) {
	p := prefix(t, s)
	keyA, keyB := p+"tamper/a.jpg", p+"tamper/b.jpg"
	put(t, s, keyA, []byte("original"), "image/jpeg")

	// Signed first, so that the wait for their expiry overlaps the rest.
	signed := time.Now()
	shortPut, err := s.PresignPut(t.Context(), keyA, "image/jpeg", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	shortGet, err := s.PresignGet(t.Context(), keyA, time.Second)
	if err != nil {
		t.Fatal(err)
	}

	putURL, err := s.PresignPut(t.Context(), keyA, "image/jpeg", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, body := do(t, http.MethodPut, putURL, "image/png", []byte("wrong type"), nil); code != http.StatusForbidden {
		t.Errorf("presigned PUT with another Content-Type: %d %s, want 403", code, body)
	}
	if got, _ := get(t, s, keyA); string(got) != "original" {
		t.Errorf("refused PUT changed the object to %q", got)
	}

	u, err := url.Parse(putURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath = strings.Replace(u.Path, "a.jpg", "b.jpg", 1), ""
	if code, _, body := do(t, http.MethodPut, u.String(), "image/jpeg", []byte("tampered"), nil); code != http.StatusForbidden {
		t.Errorf("PUT to a URL edited to name another key: %d %s, want 403", code, body)
	}
	_, err = s.Head(t.Context(), keyB)
	wantErr(t, "Head of the tampered key", err, tally.ErrNotFound)

	getURL, err := s.PresignGet(t.Context(), keyA, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := do(t, http.MethodPut, getURL, "image/jpeg", []byte("via get url"), nil); code != http.StatusForbidden {
		t.Errorf("PUT to a GET URL: %d, want 403", code)
	}

	// Expiries have one-second resolution: 2.5 s after signing, a 1 s URL
	// has expired whichever way the signer rounds.
	time.Sleep(time.Until(signed.Add(2500 * time.Millisecond)))
	if code, _, body := do(t, http.MethodPut, shortPut, "image/jpeg", []byte("late"), nil); code != http.StatusForbidden {
		t.Errorf("expired presigned PUT: %d %s, want 403", code, body)
	}
	if code, _, body := do(t, http.MethodGet, shortGet, "", nil, nil); code != http.StatusForbidden {
		t.Errorf("expired presigned GET: %d %s, want 403", code, body)
	}
	if got, _ := get(t, s, keyA); string(got) != "original" {
		t.Errorf("refused PUTs changed the object to %q", got)
	}
}
