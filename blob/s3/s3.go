// Package s3 is the blob.Store on Amazon S3 (or an S3 emulator such as
// moto_server), for Tally running on AWS.
//
// Objects live in one bucket under an optional key prefix, so several stores
// can share a bucket. Put reads the body up to one part (Options.PartSize)
// to choose: a body that fits goes up as one PutObject with a Content-MD5;
// a longer one streams as a multipart upload, aborted on any failure. Either
// way S3 makes the object visible whole or not at all, and no parts are
// left behind. Create-if-absent is S3's conditional write (If-None-Match: *
// on PutObject or CompleteMultipartUpload).
//
// ETags are S3's: the quoted hex MD5 for objects written with one PutObject,
// and "MD5-of-the-parts'-MD5s-N" for objects written in N parts (those
// larger than Options.PartSize). SSE-KMS buckets give non-MD5 ETags for both.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/internal/awsenv"
)

// S3's multipart limits.
const (
	// MinPartSize is the smallest part S3 accepts (except the last).
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part (and single PutObject) S3 accepts.
	MaxPartSize = 5 << 30
	// MaxParts is the most parts one multipart upload may have.
	MaxParts = 10000
)

// Defaults for Options.
const (
	// DefaultPartSize keeps a receipt image in one PutObject while bounding
	// the memory of a large upload to Concurrency parts.
	DefaultPartSize = 16 << 20
	// DefaultConcurrency is how many parts of one object upload at once.
	DefaultConcurrency = 4
)

// abortTimeout bounds the clean-up of a failed multipart upload, which runs
// even when the caller's context is already canceled.
const abortTimeout = time.Minute

// Options configure a Store.
type Options struct {
	// Bucket holds the objects (required).
	Bucket string
	// Prefix is prepended to every key, so several stores share a bucket:
	// port key "a/b" is object Prefix+"a/b", and listings strip it. The
	// longest port key is then blob.MaxKeyBytes-len(Prefix) bytes.
	Prefix string
	// PartSize is the multipart part size, MinPartSize–MaxPartSize
	// (default DefaultPartSize). Objects up to PartSize bytes are one
	// PutObject (with an MD5 ETag); larger ones are multipart. Each Put
	// holds at most Concurrency parts in memory.
	PartSize int64
	// Concurrency is how many parts of one object upload in parallel
	// (default DefaultConcurrency).
	Concurrency int
	// Logger receives failures that cannot be returned, such as a failed
	// abort of a multipart upload (default slog.Default()).
	Logger *slog.Logger
}

// Store is a blob.Store on one S3 bucket (and prefix). It is safe for
// concurrent use.
type Store struct {
	client      *awss3.Client
	presign     *awss3.PresignClient
	bucket      string
	prefix      string
	partSize    int64
	concurrency int
	log         *slog.Logger
}

var _ blob.Store = (*Store)(nil)

// New makes a Store from the shared AWS configuration (see awsenv.Load).
// It sends no request: a missing bucket shows on first use, or use
// CreateBucket.
func New(cfg aws.Config, opts Options) (*Store, error) {
	if opts.Bucket == "" {
		return nil, fmt.Errorf("s3 blob store: no bucket: %w", tally.ErrInvalidArgument)
	}
	if opts.Prefix != "" {
		if err := validatePrefix(opts.Prefix); err != nil {
			return nil, fmt.Errorf("s3 blob store %s: %w", opts.Bucket, err)
		}
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize || opts.PartSize > MaxPartSize {
		return nil, fmt.Errorf("s3 blob store %s: part size %d is outside [%d, %d]: %w", opts.Bucket, opts.PartSize, MinPartSize, MaxPartSize, tally.ErrInvalidArgument)
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Concurrency < 0 {
		return nil, fmt.Errorf("s3 blob store %s: concurrency %d is negative: %w", opts.Bucket, opts.Concurrency, tally.ErrInvalidArgument)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	emulator := awsenv.UsesEmulator(cfg)
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		// Emulators answer on one host: the bucket goes in the path.
		o.UsePathStyle = emulator
		// Ranged reads and objects written without a checksum carry none
		// to validate: that is expected, not worth a log line per read.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Store{
		client:      client,
		presign:     awss3.NewPresignClient(client),
		bucket:      opts.Bucket,
		prefix:      opts.Prefix,
		partSize:    opts.PartSize,
		concurrency: opts.Concurrency,
		log:         opts.Logger,
	}, nil
}

// validatePrefix accepts what could start a valid key: the same characters
// as blob.ValidateKey, and a trailing "/" (the usual form).
func validatePrefix(p string) error {
	if err := blob.ValidateKey(strings.TrimSuffix(p, "/")); err != nil || len(p) >= blob.MaxKeyBytes {
		return fmt.Errorf("prefix %q is not the start of a valid key: %w", p, tally.ErrInvalidArgument)
	}
	return nil
}

// Bucket returns the bucket name, for messages and tests.
func (s *Store) Bucket() string { return s.bucket }

// CreateBucket creates the bucket if it does not exist yet; a bucket this
// account already owns is fine. It is for tests and `tally` dev setups
// against an emulator: production buckets come from infra/.
func (s *Store) CreateBucket(ctx context.Context) error {
	in := &awss3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	if region := s.client.Options().Region; region != "" && region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	_, err := s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err == nil || errors.As(err, &owned) {
		return nil
	}
	return fmt.Errorf("create bucket %s: %w", s.bucket, s.mapErr(err))
}

// objectKey validates a port key and returns the S3 key.
func (s *Store) objectKey(key string) (string, error) {
	if err := blob.ValidateKey(key); err != nil {
		return "", err
	}
	if n := len(s.prefix) + len(key); n > blob.MaxKeyBytes {
		return "", fmt.Errorf("blob key of %d bytes is %d bytes with the store's prefix %q, over S3's %d byte limit: %w", len(key), n, s.prefix, blob.MaxKeyBytes, tally.ErrInvalidArgument)
	}
	return s.prefix + key, nil
}

// where names an object in messages.
func (s *Store) where(key string) string {
	return "s3://" + s.bucket + "/" + s.prefix + key
}

// ---- writes ----

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (blob.Info, error) {
	return s.put(ctx, key, r, opts, false)
}

// PutIfAbsent implements blob.Store with S3's conditional write
// (If-None-Match: *): S3 decides which of racing writers wins, and the
// losers get blob.ErrExists having written nothing.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (blob.Info, error) {
	return s.put(ctx, key, r, opts, true)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions, ifAbsent bool) (blob.Info, error) {
	op := "put"
	if ifAbsent {
		op = "put if absent"
	}
	okey, err := s.objectKey(key)
	if err != nil {
		return blob.Info{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := blob.ValidateContentType(opts.ContentType); err != nil {
		return blob.Info{}, fmt.Errorf("%s %s: %w", op, s.where(key), err)
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("%s %s: %w", op, s.where(key), err)
	}
	ct := blob.ContentTypeOrDefault(opts.ContentType)
	// One byte more than a part tells a one-part object from a larger one.
	first, err := readUpTo(r, s.partSize+1)
	if err != nil {
		return blob.Info{}, fmt.Errorf("%s %s: read body: %w", op, s.where(key), err)
	}
	var info blob.Info
	if int64(len(first)) <= s.partSize {
		info, err = s.putSingle(ctx, okey, first, ct, ifAbsent)
	} else {
		rest := io.MultiReader(bytes.NewReader(first[s.partSize:]), r)
		info, err = s.putMultipart(ctx, okey, first[:s.partSize], rest, ct, ifAbsent)
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("%s %s: %w", op, s.where(key), err)
	}
	info.Key = key
	return info, nil
}

// readUpTo reads r until EOF or limit bytes, growing its buffer as it goes
// so that a small object does not cost a whole part of memory.
func readUpTo(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(limit, 64<<10))
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(int64(cap(buf)), limit-int64(cap(buf)))))
		}
		n, err := r.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// conditional makes a conditional write retry S3's 409
// ConditionalRequestConflict (another conditional write to the key was in
// progress), as S3 asks; the retry then gets 412 if the other one won.
func conditional(o *awss3.Options) {
	o.Retryer = retry.AddWithErrorCodes(o.Retryer, "ConditionalRequestConflict")
}

func (s *Store) putSingle(ctx context.Context, okey string, data []byte, ct string, ifAbsent bool) (blob.Info, error) {
	sum := md5.Sum(data)
	in := &awss3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(okey),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String(ct),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
	var optFns []func(*awss3.Options)
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
		optFns = append(optFns, conditional)
	}
	out, err := s.client.PutObject(ctx, in, optFns...)
	if err != nil {
		return blob.Info{}, s.mapPutErr(err, ifAbsent)
	}
	return blob.Info{
		Size:        int64(len(data)),
		ETag:        aws.ToString(out.ETag),
		ContentType: ct,
		Modified:    serverTime(out.ResultMetadata),
	}, nil
}

// serverTime is the Date of S3's response to a write: PutObject does not
// return the object's Last-Modified, and S3 sets that from the same clock
// (within the request's duration).
func serverTime(md middleware.Metadata) time.Time {
	if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && resp != nil {
		if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			return t
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}

// ---- reads ----

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return nil, blob.Info{}, fmt.Errorf("get: %w", err)
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey)})
	if err != nil {
		return nil, blob.Info{}, fmt.Errorf("get %s: %w", s.where(key), s.mapErr(err))
	}
	return out.Body, blob.Info{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ETag:        aws.ToString(out.ETag),
		ContentType: aws.ToString(out.ContentType),
		Modified:    aws.ToTime(out.LastModified),
	}, nil
}

// GetRange implements blob.Store with one ranged GetObject. S3 itself
// applies blob.CheckRange's rules given the size it knows: a range running
// past the end is cut, and one starting at or past the end is 416
// InvalidRange (mapped to tally.ErrInvalidArgument). That saves the Head a
// client-side check would need; the checks that need no size run first.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return nil, fmt.Errorf("get range: %w", err)
	}
	// Any size above offset passes; S3 checks against the real one.
	if _, err := blob.CheckRange(offset, length, offset+1); err != nil {
		return nil, fmt.Errorf("get range %s: %w", s.where(key), err)
	}
	rng := fmt.Sprintf("bytes=%d-", offset)
	if length > 0 && length <= (1<<63-1)-offset {
		rng += strconv.FormatInt(offset+length-1, 10)
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey), Range: aws.String(rng)})
	if err != nil {
		return nil, fmt.Errorf("get range %s %s: %w", s.where(key), rng, s.mapErr(err))
	}
	if out.ContentRange == nil {
		// A server that ignored the range (S3 does for an empty object)
		// sent the whole object: check and cut it here.
		n, err := blob.CheckRange(offset, length, aws.ToInt64(out.ContentLength))
		if err != nil {
			out.Body.Close()
			return nil, fmt.Errorf("get range %s: %w", s.where(key), err)
		}
		if _, err := io.CopyN(io.Discard, out.Body, offset); err != nil {
			out.Body.Close()
			return nil, fmt.Errorf("get range %s: skip to %d: %w", s.where(key), offset, err)
		}
		return readCloser{io.LimitReader(out.Body, n), out.Body}, nil
	}
	return out.Body, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Head implements blob.Store. A missing bucket looks like a missing key
// here: S3 answers HEAD with a bare 404 either way.
func (s *Store) Head(ctx context.Context, key string) (blob.Info, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return blob.Info{}, fmt.Errorf("head: %w", err)
	}
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey)})
	if err != nil {
		return blob.Info{}, fmt.Errorf("head %s: %w", s.where(key), s.mapErr(err))
	}
	return blob.Info{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ETag:        aws.ToString(out.ETag),
		ContentType: aws.ToString(out.ContentType),
		Modified:    aws.ToTime(out.LastModified),
	}, nil
}

// List implements blob.Store with one ListObjectsV2. Its continuation token
// is S3's (which resumes after the last key listed, so it stays valid while
// keys change); Info.ContentType is empty, as S3 does not list it.
//
// A prefix may end inside a UTF-8 sequence (it is a byte prefix), which an
// S3 query cannot carry faithfully: S3 is sent the prefix up to the last
// whole rune and the page is filtered here, so such a page may hold fewer
// than Limit items. With such a prefix, a delimiter must start with an
// ASCII byte (so it cannot begin inside the cut-off bytes).
func (s *Store) List(ctx context.Context, opts blob.ListOptions) (blob.Page, error) {
	full := s.prefix + opts.Prefix
	where := "s3://" + s.bucket + "/" + full
	limit, err := blob.PageLimit(opts.Limit)
	if err != nil {
		return blob.Page{}, fmt.Errorf("list %s: %w", where, err)
	}
	sent := wholeRunes(full)
	if !utf8.ValidString(sent) {
		// S3 keys are UTF-8: no key starts with these bytes.
		return blob.Page{}, nil
	}
	if sent != full && opts.Delimiter != "" && opts.Delimiter[0] >= utf8.RuneSelf {
		return blob.Page{}, fmt.Errorf("list %s: a prefix ending inside a UTF-8 sequence with the non-ASCII delimiter %q: %w", where, opts.Delimiter, tally.ErrInvalidArgument)
	}
	in := &awss3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		MaxKeys: aws.Int32(int32(limit)),
	}
	if sent != "" {
		in.Prefix = aws.String(sent)
	}
	if opts.Delimiter != "" {
		in.Delimiter = aws.String(opts.Delimiter)
	}
	if opts.Token != "" {
		in.ContinuationToken = aws.String(opts.Token)
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return blob.Page{}, fmt.Errorf("list %s: %w", where, s.mapErr(err))
	}
	var page blob.Page
	// past is set once S3 lists beyond the keys starting with full: as S3
	// lists in byte order, nothing after can match.
	past := false
	for _, o := range out.Contents {
		okey := aws.ToString(o.Key)
		if !strings.HasPrefix(okey, full) {
			past = past || okey > full
			continue
		}
		page.Objects = append(page.Objects, blob.Info{
			Key:      okey[len(s.prefix):],
			Size:     aws.ToInt64(o.Size),
			ETag:     aws.ToString(o.ETag),
			Modified: aws.ToTime(o.LastModified),
		})
	}
	for _, cp := range out.CommonPrefixes {
		p := aws.ToString(cp.Prefix)
		if !strings.HasPrefix(p, full) {
			past = past || p > full
			continue
		}
		page.CommonPrefixes = append(page.CommonPrefixes, p[len(s.prefix):])
	}
	if aws.ToBool(out.IsTruncated) && !past {
		page.NextToken = aws.ToString(out.NextContinuationToken)
	}
	return page, nil
}

// wholeRunes cuts an incomplete UTF-8 sequence off the end of s.
func wholeRunes(s string) string {
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if !utf8.FullRuneInString(s[i:]) {
				return s[:i]
			}
			break
		}
	}
	return s
}

// Delete implements blob.Store; S3 deletes a missing key without error.
func (s *Store) Delete(ctx context.Context, key string) error {
	okey, err := s.objectKey(key)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if _, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey)}); err != nil {
		if errors.Is(s.mapErr(err), errNoSuchKey) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", s.where(key), s.mapErr(err))
	}
	return nil
}

// ---- presigned URLs ----

// PresignPut implements blob.Store. The Content-Type is signed, so S3
// refuses an upload that sends another one; an empty contentType signs
// none, and S3 then accepts any. Moto does not check signatures at all.
func (s *Store) PresignPut(ctx context.Context, key, contentType string, expiry time.Duration) (string, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return "", fmt.Errorf("presign put: %w", err)
	}
	if err := blob.ValidateContentType(contentType); err != nil {
		return "", fmt.Errorf("presign put %s: %w", s.where(key), err)
	}
	if err := blob.CheckExpiry(expiry); err != nil {
		return "", fmt.Errorf("presign put %s: %w", s.where(key), err)
	}
	in := &awss3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	req, err := s.presign.PresignPutObject(ctx, in, awss3.WithPresignExpires(expiry))
	if err != nil {
		return "", fmt.Errorf("presign put %s: %w", s.where(key), err)
	}
	return req.URL, nil
}

// PresignGet implements blob.Store.
func (s *Store) PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error) {
	okey, err := s.objectKey(key)
	if err != nil {
		return "", fmt.Errorf("presign get: %w", err)
	}
	if err := blob.CheckExpiry(expiry); err != nil {
		return "", fmt.Errorf("presign get %s: %w", s.where(key), err)
	}
	req, err := s.presign.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(okey)}, awss3.WithPresignExpires(expiry))
	if err != nil {
		return "", fmt.Errorf("presign get %s: %w", s.where(key), err)
	}
	return req.URL, nil
}

// ---- errors ----

// errNoSuchKey marks a missing object (as opposed to a missing bucket).
var errNoSuchKey = fmt.Errorf("no such key: %w", tally.ErrNotFound)

// mapErr puts S3's errors onto the port's sentinels, keeping S3's message.
func (s *Store) mapErr(err error) error {
	var code string
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	status := 0
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchBucket":
		return fmt.Errorf("bucket %q does not exist: %w: %w", s.bucket, tally.ErrNotFound, err)
	case code == "NoSuchUpload":
		return fmt.Errorf("the multipart upload is gone (aborted by another process or a lifecycle rule): %w", err)
	case code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound:
		return fmt.Errorf("%w: %w", errNoSuchKey, err)
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("range starts at or past the end of the object: %w: %w", tally.ErrInvalidArgument, err)
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", tally.ErrConditionFailed, err)
	case code == "InvalidArgument" || code == "KeyTooLongError" || code == "InvalidToken" ||
		code == "InvalidContinuationToken" || code == "EntityTooLarge" || code == "InvalidBucketName":
		return fmt.Errorf("%w: %w", tally.ErrInvalidArgument, err)
	}
	return err
}

// mapPutErr is mapErr for writes: for a conditional write, 412 (and a 409
// conflict that outlived the retries) mean another writer holds the key.
func (s *Store) mapPutErr(err error, ifAbsent bool) error {
	if ifAbsent {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			switch apiErr.ErrorCode() {
			case "PreconditionFailed", "ConditionalRequestConflict":
				return fmt.Errorf("%w (%w)", blob.ErrExists, err)
			}
		}
		var respErr *smithyhttp.ResponseError
		if errors.As(err, &respErr) && (respErr.HTTPStatusCode() == http.StatusPreconditionFailed || respErr.HTTPStatusCode() == http.StatusConflict) {
			return fmt.Errorf("%w (%w)", blob.ErrExists, err)
		}
	}
	return s.mapErr(err)
}
