package s3_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/blob/s3"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/awstest"
)

const minPart = s3.MinPartSize // 5 MiB, S3's smallest part

// transport wraps the real one so tests can watch and fault requests.
type transport struct {
	mu       sync.Mutex
	requests []*http.Request
	// fault, when set, may answer a request instead of the server.
	fault func(r *http.Request) *http.Response
	// inFlight and maxInFlight count concurrent UploadPart requests.
	inFlight, maxInFlight int
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	tr.requests = append(tr.requests, r)
	fault := tr.fault
	part := r.URL.Query().Has("partNumber")
	if part {
		tr.inFlight++
		tr.maxInFlight = max(tr.maxInFlight, tr.inFlight)
	}
	tr.mu.Unlock()
	if part {
		defer func() { tr.mu.Lock(); tr.inFlight--; tr.mu.Unlock() }()
	}
	if fault != nil {
		if resp := fault(r); resp != nil {
			if r.Body != nil {
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
			resp.Request = r
			return resp, nil
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (tr *transport) setFault(f func(*http.Request) *http.Response) {
	tr.mu.Lock()
	tr.fault = f
	tr.mu.Unlock()
}

// count returns how many requests matched.
func (tr *transport) count(match func(*http.Request) bool) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.requests {
		if match(r) {
			n++
		}
	}
	return n
}

func s3Error(status int, code, msg string) *http.Response {
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>test</RequestId></Error>`, code, msg)
	return &http.Response{
		StatusCode:    status,
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
	}
}

// env is a bucket on the shared moto_server reached through a transport.
type env struct {
	cfg    aws.Config
	tr     *transport
	bucket string
	raw    *awss3.Client // for checks behind the adapter's back
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := awstest.Shared(t)
	// The SDK can add an AWS_CA_BUNDLE (set on some machines) only to its
	// own client type, and fails on any other: this test client talks
	// plain HTTP to the emulator, so it needs none.
	t.Setenv("AWS_CA_BUNDLE", "")
	tr := &transport{}
	opts := srv.Options()
	opts.HTTPClient = &http.Client{Transport: tr}
	cfg, err := awsenv.Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cfg: cfg, tr: tr, bucket: newBucket(t, cfg)}
	e.raw = awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = true })
	return e
}

func (e *env) store(t testing.TB, opts s3.Options) *s3.Store {
	t.Helper()
	opts.Bucket = e.bucket
	return newStore(t, e.cfg, opts)
}

// pendingUploads lists the bucket's unfinished multipart uploads.
func (e *env) pendingUploads(t testing.TB) []string {
	t.Helper()
	out, err := e.raw.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range out.Uploads {
		ids = append(ids, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	return ids
}

func randBytes(seed uint64, n int) []byte {
	r := mrand.New(mrand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// onlyReader hides bytes.Reader's Len and Seek, as a network body would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// failAfter yields n bytes of r and then fails.
type failAfter struct {
	r      io.Reader
	n      int
	err    error
	onFail func() // called before failing
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		if f.onFail != nil {
			f.onFail()
		}
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	k, err := f.r.Read(p)
	f.n -= k
	return k, err
}

func get(t *testing.T, st blob.Store, key string) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b, info
}

func isPart(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Has("partNumber")
}

func TestMultipartRoundTrip(t *testing.T) {
	e := newEnv(t)
	const concurrency = 2
	st := e.store(t, s3.Options{PartSize: minPart, Concurrency: concurrency})
	for _, tc := range []struct {
		name  string
		size  int
		parts int
	}{
		{"two and a half parts", minPart * 5 / 2, 3},
		{"exactly two parts", 2 * minPart, 2},
		{"one part and a byte", minPart + 1, 2},
		{"exactly one part", minPart, 0}, // one PutObject
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randBytes(uint64(tc.size), tc.size)
			key := "mp/" + strings.ReplaceAll(tc.name, " ", "-")
			before := e.tr.count(isPart)
			info, err := st.Put(t.Context(), key, onlyReader{bytes.NewReader(data)}, blob.PutOptions{ContentType: "image/tiff"})
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if got := e.tr.count(isPart) - before; got != tc.parts {
				t.Errorf("uploaded %d parts, want %d", got, tc.parts)
			}
			sum := md5.Sum(data)
			wantETag := `"` + hex.EncodeToString(sum[:]) + `"`
			if tc.parts > 0 {
				// S3's multipart ETag: MD5 of the parts' MD5s, dash, count.
				wantETag = multipartETag(data, minPart)
			}
			if info.Key != key || info.Size != int64(tc.size) || info.ETag != wantETag || info.ContentType != "image/tiff" || info.Modified.IsZero() {
				t.Errorf("Put = %+v, want key %q size %d ETag %s", info, key, tc.size, wantETag)
			}
			got, gi := get(t, st, key)
			if !bytes.Equal(got, data) {
				t.Fatalf("Get: %d bytes differ from the %d written", len(got), len(data))
			}
			if gi.Size != int64(tc.size) || gi.ETag != wantETag || gi.ContentType != "image/tiff" {
				t.Errorf("Get info = %+v", gi)
			}
			if ids := e.pendingUploads(t); len(ids) != 0 {
				t.Errorf("pending multipart uploads after Put: %q", ids)
			}
		})
	}
	if e.tr.maxInFlight > concurrency {
		t.Errorf("%d parts uploaded at once, Concurrency is %d", e.tr.maxInFlight, concurrency)
	}
}

func multipartETag(data []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(data); off += partSize {
		s := md5.Sum(data[off:min(off+partSize, len(data))])
		sums = append(sums, s[:]...)
		n++
	}
	s := md5.Sum(sums)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(s[:]), n)
}

func TestMultipartFailuresLeaveNothing(t *testing.T) {
	e := newEnv(t)
	st := e.store(t, s3.Options{PartSize: minPart, Concurrency: 2})
	errBroken := errors.New("camera upload broke")
	for _, tc := range []struct {
		name   string
		body   func(cancel context.CancelFunc) io.Reader
		fault  func(*http.Request) *http.Response
		wantIs error
	}{
		{
			name: "reader fails in the second part",
			body: func(context.CancelFunc) io.Reader {
				return &failAfter{r: bytes.NewReader(randBytes(1, 3*minPart)), n: minPart + minPart/2, err: errBroken}
			},
			wantIs: errBroken,
		},
		{
			name: "reader fails in the third part",
			body: func(context.CancelFunc) io.Reader {
				return &failAfter{r: bytes.NewReader(randBytes(2, 3*minPart)), n: 2*minPart + 1, err: errBroken}
			},
			wantIs: errBroken,
		},
		{
			name: "context canceled mid-stream",
			body: func(cancel context.CancelFunc) io.Reader {
				// The caller gives up while the second part is read.
				return &failAfter{r: bytes.NewReader(randBytes(3, 3*minPart)), n: minPart + 100, err: errBroken, onFail: cancel}
			},
			wantIs: context.Canceled,
		},
		{
			name: "context canceled, reader goes on",
			body: func(cancel context.CancelFunc) io.Reader {
				return io.MultiReader(
					bytes.NewReader(randBytes(6, minPart+100)),
					&failAfter{n: 0, onFail: cancel, err: io.EOF}, // cancels, reads nothing
					bytes.NewReader(randBytes(7, 2*minPart)))
			},
			wantIs: context.Canceled,
		},
		{
			name: "a part is refused",
			body: func(context.CancelFunc) io.Reader { return onlyReader{bytes.NewReader(randBytes(4, 3*minPart))} },
			fault: func(r *http.Request) *http.Response {
				if isPart(r) && r.URL.Query().Get("partNumber") == "2" {
					return s3Error(http.StatusBadRequest, "InvalidDigest", "injected")
				}
				return nil
			},
		},
		{
			name: "completion is refused",
			body: func(context.CancelFunc) io.Reader { return onlyReader{bytes.NewReader(randBytes(5, 2*minPart+10))} },
			fault: func(r *http.Request) *http.Response {
				if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") {
					return s3Error(http.StatusBadRequest, "InvalidPart", "injected")
				}
				return nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "fail/" + strings.ReplaceAll(tc.name, " ", "-")
			e.tr.setFault(tc.fault)
			defer e.tr.setFault(nil)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			aborts := e.tr.count(isAbort)
			_, err := st.Put(ctx, key, tc.body(cancel), blob.PutOptions{})
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Put error = %v, want one matching %v", err, tc.wantIs)
			}
			e.tr.setFault(nil)
			if _, err := st.Head(t.Context(), key); !errors.Is(err, tally.ErrNotFound) {
				t.Errorf("Head after a failed Put: %v, want not found", err)
			}
			if got := e.tr.count(isAbort) - aborts; got < 1 {
				t.Errorf("%d AbortMultipartUpload requests, want at least 1", got)
			}
			if ids := e.pendingUploads(t); len(ids) != 0 {
				t.Errorf("pending multipart uploads after a failed Put: %q", ids)
			}
		})
	}
}

func isAbort(r *http.Request) bool {
	return r.Method == http.MethodDelete && r.URL.Query().Has("uploadId")
}

func TestPutIfAbsentMultipart(t *testing.T) {
	e := newEnv(t)
	st := e.store(t, s3.Options{PartSize: minPart})
	key := "lease/big"
	first := randBytes(10, minPart*3/2)
	info, err := st.PutIfAbsent(t.Context(), key, onlyReader{bytes.NewReader(first)}, blob.PutOptions{})
	if err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	if !strings.HasSuffix(info.ETag, `-2"`) {
		t.Errorf("ETag %s: want a 2-part multipart ETag", info.ETag)
	}
	for _, tc := range []struct {
		name string
		size int
	}{{"multipart over multipart", 2*minPart + 7}, {"single over multipart", 100}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.PutIfAbsent(t.Context(), key, onlyReader{bytes.NewReader(randBytes(11, tc.size))}, blob.PutOptions{})
			if !blob.IsExists(err) || !errors.Is(err, tally.ErrConditionFailed) {
				t.Errorf("PutIfAbsent over an existing object: %v, want ErrExists", err)
			}
			if got, _ := get(t, st, key); !bytes.Equal(got, first) {
				t.Error("the refused PutIfAbsent changed the object")
			}
			if ids := e.pendingUploads(t); len(ids) != 0 {
				t.Errorf("pending multipart uploads after a refused PutIfAbsent: %q", ids)
			}
		})
	}
	// A multipart PutIfAbsent over a single-part object is refused too.
	if _, err := st.Put(t.Context(), "lease/small", strings.NewReader("small"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = st.PutIfAbsent(t.Context(), "lease/small", onlyReader{bytes.NewReader(randBytes(12, minPart+1))}, blob.PutOptions{})
	if !blob.IsExists(err) {
		t.Errorf("multipart PutIfAbsent over a small object: %v, want ErrExists", err)
	}
}

func TestConditionalConflictRetried(t *testing.T) {
	// S3 answers 409 ConditionalRequestConflict when another conditional
	// write to the key is in flight, and asks the client to retry; the
	// retry gets 412 if that write won, or succeeds if it failed.
	e := newEnv(t)
	st := e.store(t, s3.Options{})
	var conflicts atomic.Int32
	e.tr.setFault(func(r *http.Request) *http.Response {
		if r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*" && conflicts.Add(1) <= 2 {
			return s3Error(http.StatusConflict, "ConditionalRequestConflict", "injected")
		}
		return nil
	})
	if _, err := st.PutIfAbsent(t.Context(), "c", strings.NewReader("won after conflicts"), blob.PutOptions{}); err != nil {
		t.Fatalf("PutIfAbsent after two conflicts: %v", err)
	}
	if n := conflicts.Load(); n != 3 {
		t.Errorf("%d conditional PUTs, want 3 (two conflicts, then the write)", n)
	}
	if got, _ := get(t, st, "c"); string(got) != "won after conflicts" {
		t.Errorf("stored %q", got)
	}
}

func TestGetRangeEdges(t *testing.T) {
	e := newEnv(t)
	st := e.store(t, s3.Options{PartSize: minPart})
	data := randBytes(20, minPart+1000) // two parts: ranges cross the boundary
	key := "range/obj"
	if _, err := st.Put(t.Context(), key, bytes.NewReader(data), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	for _, tc := range []struct {
		name           string
		offset, length int64
		err            error
	}{
		{"first byte", 0, 1, nil},
		{"last byte", size - 1, 1, nil},
		{"last byte to end", size - 1, -1, nil},
		{"across the part boundary", minPart - 10, 20, nil},
		{"whole", 0, -1, nil},
		{"exactly whole", 0, size, nil},
		{"one past whole is cut", 0, size + 1, nil},
		{"huge length is cut", 10, math.MaxInt64, nil},
		{"offset at end", size, 1, tally.ErrInvalidArgument},
		{"offset at end to end", size, -1, tally.ErrInvalidArgument},
		{"offset far past end", math.MaxInt64, 1, tally.ErrInvalidArgument},
		{"zero length", 5, 0, tally.ErrInvalidArgument},
		{"negative offset", -1, 1, tally.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requests := e.tr.count(func(*http.Request) bool { return true })
			rc, err := st.GetRange(t.Context(), key, tc.offset, tc.length)
			if tc.err != nil {
				if err == nil {
					rc.Close()
				}
				if !errors.Is(err, tc.err) {
					t.Errorf("GetRange(%d, %d) = %v, want %v", tc.offset, tc.length, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tc.offset, tc.length, err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			n, _ := blob.CheckRange(tc.offset, tc.length, size)
			if err != nil || !bytes.Equal(got, data[tc.offset:tc.offset+n]) {
				t.Errorf("GetRange(%d, %d): %d bytes, %v; want %d bytes from %d", tc.offset, tc.length, len(got), err, n, tc.offset)
			}
			if r := e.tr.count(func(*http.Request) bool { return true }) - requests; r != 1 {
				t.Errorf("GetRange sent %d requests, want 1", r)
			}
		})
	}
	// The checks that need no size send nothing.
	requests := e.tr.count(func(*http.Request) bool { return true })
	st.GetRange(t.Context(), key, -1, 1)
	st.GetRange(t.Context(), key, 1, 0)
	if r := e.tr.count(func(*http.Request) bool { return true }) - requests; r != 0 {
		t.Errorf("invalid ranges sent %d requests", r)
	}
}

func TestPrefixIsolation(t *testing.T) {
	e := newEnv(t)
	one := e.store(t, s3.Options{Prefix: "one/"})
	two := e.store(t, s3.Options{Prefix: "tw"}) // a prefix need not end in "/"
	bare := e.store(t, s3.Options{})
	ctx := t.Context()
	keys := []string{"a", "b/c", "b/d", "e/f/g", "收据/x"}
	for _, k := range keys {
		if _, err := one.Put(ctx, k, strings.NewReader("one:"+k), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := two.Put(ctx, k, strings.NewReader("two:"+k), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		if got, info := get(t, one, k); string(got) != "one:"+k || info.Key != k {
			t.Errorf("one.Get(%q) = %q (key %q)", k, got, info.Key)
		}
		if got, _ := get(t, two, k); string(got) != "two:"+k {
			t.Errorf("two.Get(%q) = %q", k, got)
		}
		// The object is Prefix+key in the bucket.
		if got, _ := get(t, bare, "one/"+k); string(got) != "one:"+k {
			t.Errorf("bucket object one/%s = %q", k, got)
		}
		if got, _ := get(t, bare, "tw"+k); string(got) != "two:"+k {
			t.Errorf("bucket object tw%s = %q", k, got)
		}
	}
	for _, tc := range []struct {
		prefix, delim string
		objs, cps     []string
	}{
		{"", "", keys, nil},
		{"", "/", []string{"a"}, []string{"b/", "e/", "收据/"}},
		{"b/", "/", []string{"b/c", "b/d"}, nil},
		{"e/", "/", nil, []string{"e/f/"}},
		{"收"[:2], "/", nil, []string{"收据/"}}, // a byte prefix inside a rune
		{"z", "/", nil, nil},
	} {
		for _, st := range []*s3.Store{one, two} {
			for _, limit := range []int{0, 1, 2} {
				objs, cps := listAll(t, st, blob.ListOptions{Prefix: tc.prefix, Delimiter: tc.delim, Limit: limit})
				if !slices.Equal(objs, tc.objs) || !slices.Equal(cps, tc.cps) {
					t.Errorf("List(%q, %q, limit %d) = %q %q, want %q %q", tc.prefix, tc.delim, limit, objs, cps, tc.objs, tc.cps)
				}
			}
		}
	}
	if err := one.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := one.Head(ctx, "a"); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("one.Head(a) after delete: %v", err)
	}
	if got, _ := get(t, two, "a"); string(got) != "two:a" {
		t.Errorf("two.Get(a) after one.Delete(a) = %q", got)
	}
	// The prefix counts towards S3's key length limit.
	longest := strings.Repeat("k", blob.MaxKeyBytes-len("one/"))
	if _, err := one.Put(ctx, longest, strings.NewReader("x"), blob.PutOptions{}); err != nil {
		t.Errorf("Put of the longest key: %v", err)
	}
	for name, err := range map[string]error{
		"Put": func() error {
			_, err := one.Put(ctx, longest+"k", strings.NewReader("x"), blob.PutOptions{})
			return err
		}(),
		"Get": func() error { _, _, err := one.Get(ctx, longest+"k"); return err }(),
	} {
		if !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("%s of a key too long with the prefix: %v, want invalid argument", name, err)
		}
	}
}

func listAll(t *testing.T, st blob.Store, opts blob.ListOptions) (objs, cps []string) {
	t.Helper()
	for i := 0; ; i++ {
		page, err := st.List(t.Context(), opts)
		if err != nil {
			t.Fatalf("List(%+v): %v", opts, err)
		}
		if opts.Limit > 0 && len(page.Objects)+len(page.CommonPrefixes) > opts.Limit {
			t.Fatalf("List(%+v): page over the limit", opts)
		}
		for _, o := range page.Objects {
			objs = append(objs, o.Key)
		}
		cps = append(cps, page.CommonPrefixes...)
		if opts.Token = page.NextToken; opts.Token == "" || i > 100 {
			return objs, cps
		}
	}
}

func TestPathStyle(t *testing.T) {
	e := newEnv(t)
	st := e.store(t, s3.Options{Prefix: "p/"})
	if _, err := st.Put(t.Context(), "k 1", strings.NewReader("x"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	endpoint, _ := url.Parse(awstest.Shared(t).Endpoint)
	var seen int
	e.tr.mu.Lock()
	for _, r := range e.tr.requests {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "k 1") {
			continue
		}
		seen++
		if r.URL.Host != endpoint.Host || r.URL.Path != "/"+e.bucket+"/p/k 1" {
			t.Errorf("PutObject went to host %q path %q; want path-style %s/%s/p/k 1", r.URL.Host, r.URL.Path, endpoint.Host, e.bucket)
		}
	}
	e.tr.mu.Unlock()
	if seen != 1 {
		t.Errorf("saw %d PutObject requests, want 1", seen)
	}
	u, err := st.PresignGet(t.Context(), "k 1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	if pu.Host != endpoint.Host || pu.Path != "/"+e.bucket+"/p/k 1" {
		t.Errorf("presigned URL %s is not path-style", u)
	}
}

func TestSlowDownRetried(t *testing.T) {
	// S3 sheds load with 503 SlowDown; Tally's retry policy (awsenv)
	// retries it with backoff, so a Put and a Get still succeed.
	e := newEnv(t)
	st := e.store(t, s3.Options{})
	const throttled = 2
	for _, tc := range []struct {
		name  string
		match func(*http.Request) bool
		call  func() error
	}{
		{"PutObject", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/slow")
		}, func() error {
			_, err := st.Put(t.Context(), "slow", strings.NewReader("after the storm"), blob.PutOptions{})
			return err
		}},
		{"GetObject", func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/slow")
		}, func() error {
			got, err := blob.ReadAll(t.Context(), st, "slow")
			if err == nil && string(got) != "after the storm" {
				err = fmt.Errorf("read %q", got)
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var attempts atomic.Int32
			e.tr.setFault(func(r *http.Request) *http.Response {
				if !tc.match(r) {
					return nil
				}
				if attempts.Add(1) <= throttled {
					return s3Error(http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
				}
				return nil
			})
			defer e.tr.setFault(nil)
			if err := tc.call(); err != nil {
				t.Fatalf("%s with %d SlowDowns: %v", tc.name, throttled, err)
			}
			if n := attempts.Load(); n != throttled+1 {
				t.Errorf("%d attempts, want %d", n, throttled+1)
			}
		})
	}
}

func TestMissingBucket(t *testing.T) {
	srv := awstest.Shared(t)
	st := newStore(t, srv.Config(t), s3.Options{Bucket: "tally-no-such-bucket"})
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"Put":    func() error { _, err := st.Put(ctx, "k", strings.NewReader("x"), blob.PutOptions{}); return err },
		"Get":    func() error { _, _, err := st.Get(ctx, "k"); return err },
		"List":   func() error { _, err := st.List(ctx, blob.ListOptions{}); return err },
		"Delete": func() error { return st.Delete(ctx, "k") },
		"Multipart": func() error {
			st, _ := s3.New(srv.Config(t), s3.Options{Bucket: "tally-no-such-bucket", PartSize: minPart})
			_, err := st.Put(ctx, "k", bytes.NewReader(make([]byte, minPart+1)), blob.PutOptions{})
			return err
		},
	} {
		err := call()
		if !errors.Is(err, tally.ErrNotFound) || !strings.Contains(err.Error(), `bucket "tally-no-such-bucket" does not exist`) {
			t.Errorf("%s in a missing bucket: %v; want not found naming the bucket", name, err)
		}
	}
	// HEAD answers a bare 404: still not found.
	if _, err := st.Head(ctx, "k"); !errors.Is(err, tally.ErrNotFound) {
		t.Errorf("Head in a missing bucket: %v", err)
	}
}

func TestNewAndCreateBucket(t *testing.T) {
	cfg := awstest.Shared(t).Config(t)
	for _, tc := range []struct {
		name string
		opts s3.Options
	}{
		{"no bucket", s3.Options{}},
		{"part too small", s3.Options{Bucket: "b", PartSize: minPart - 1}},
		{"part too large", s3.Options{Bucket: "b", PartSize: s3.MaxPartSize + 1}},
		{"negative concurrency", s3.Options{Bucket: "b", Concurrency: -1}},
		{"absolute prefix", s3.Options{Bucket: "b", Prefix: "/x/"}},
		{"dot-dot prefix", s3.Options{Bucket: "b", Prefix: "../"}},
		{"control in prefix", s3.Options{Bucket: "b", Prefix: "a\n/"}},
		{"prefix too long", s3.Options{Bucket: "b", Prefix: strings.Repeat("p", blob.MaxKeyBytes)}},
	} {
		if _, err := s3.New(cfg, tc.opts); !errors.Is(err, tally.ErrInvalidArgument) {
			t.Errorf("New(%s) = %v, want invalid argument", tc.name, err)
		}
	}
	st := newStore(t, cfg, s3.Options{Bucket: unique(t, "tally-create")})
	for range 2 { // a bucket we own already is fine
		if err := st.CreateBucket(t.Context()); err != nil {
			t.Fatalf("CreateBucket: %v", err)
		}
	}
	if _, err := st.Put(t.Context(), "k", strings.NewReader("x"), blob.PutOptions{}); err != nil {
		t.Errorf("Put in the created bucket: %v", err)
	}
}

func TestInvalidInputsSendNothing(t *testing.T) {
	e := newEnv(t)
	st := e.store(t, s3.Options{})
	ctx := t.Context()
	before := e.tr.count(func(*http.Request) bool { return true })
	st.Put(ctx, "a/../b", strings.NewReader("x"), blob.PutOptions{})
	st.Put(ctx, "ok", strings.NewReader("x"), blob.PutOptions{ContentType: "text/plain\n"})
	st.Get(ctx, "/abs")
	st.Head(ctx, "")
	st.Delete(ctx, "a//b")
	st.List(ctx, blob.ListOptions{Limit: -1})
	st.PresignPut(ctx, "ok", "image/jpeg", 8*24*time.Hour)
	if n := e.tr.count(func(*http.Request) bool { return true }) - before; n != 0 {
		t.Errorf("invalid calls sent %d requests", n)
	}
}

// testMultipartRace races multipart PutIfAbsents to one new key: S3 lets one
// CompleteMultipartUpload win, and the losers' uploads are aborted. It runs
// against AWS only (TestConformanceAWS): moto_server 5.2.1 checks
// If-None-Match and then completes without a lock, so concurrent
// completions there can all "win".
func testMultipartRace(t *testing.T, st *s3.Store, raw *awss3.Client, prefix string) {
	key := prefix + "lease/race"
	const racers = 3
	errs := make([]error, racers)
	bodies := make([][]byte, racers)
	var wg sync.WaitGroup
	for i := range racers {
		bodies[i] = randBytes(uint64(100+i), minPart+1+i)
		wg.Go(func() {
			_, errs[i] = st.PutIfAbsent(t.Context(), key, onlyReader{bytes.NewReader(bodies[i])}, blob.PutOptions{})
		})
	}
	wg.Wait()
	defer st.Delete(context.Background(), key)
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !blob.IsExists(err):
			t.Errorf("racer %d: %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer won")
	}
	if got, _ := get(t, st, key); !bytes.Equal(got, bodies[winner]) {
		t.Errorf("stored object is not the winner's")
	}
	out, err := raw.ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket()), Prefix: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Errorf("%d pending multipart uploads after the race", len(out.Uploads))
	}
}
