package s3_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/blob/blobtest"
	"github.com/tallyhq/tally/blob/s3"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// suitePartSize keeps the suite's 20 MiB LargeObject one PutObject: the
// suite asserts an MD5 ETag, which S3 gives only to single-part objects.
// Multipart uploads are covered by the adapter tests below.
const suitePartSize = 32 << 20

func unique(t testing.TB, what string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	return what + "-" + hex.EncodeToString(b[:])
}

// newBucket creates a fresh bucket on the shared moto_server.
func newBucket(t testing.TB, cfg aws.Config) string {
	t.Helper()
	name := unique(t, "tally-test")
	st, err := s3.New(cfg, s3.Options{Bucket: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return name
}

func newStore(t testing.TB, cfg aws.Config, opts s3.Options) *s3.Store {
	t.Helper()
	st, err := s3.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	srv := awstest.Shared(t)
	// Through awstest.Serial: moto checks If-None-Match and then writes
	// without a lock, so PutIfAbsentRace would see several winners there.
	// S3 decides the race itself; TestConformanceAWS runs it on S3.
	opts := srv.Options()
	opts.Endpoint = srv.Serial(t)
	cfg, err := awsenv.Load(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	bucket := newBucket(t, cfg)
	// One store (and bucket) for every subtest: the suite keeps its
	// subtests apart by key prefix. The store has no Prefix of its own:
	// with one, the suite's longest valid key (1024 bytes) would be too
	// long for S3; prefixed stores are tested below.
	st := newStore(t, cfg, s3.Options{Bucket: bucket, PartSize: suitePartSize})
	blobtest.Run(t, func(t *testing.T) blob.Store { return st }, blobtest.Capabilities{Presign: true, PresignEnforced: false})
}

// TestConformanceAWS runs the suite against real S3 in the bucket named by
// TALLY_TEST_S3_BUCKET; the suite deletes what it writes.
func TestConformanceAWS(t *testing.T) {
	if os.Getenv("TALLY_TEST_AWS") != "1" {
		t.Skip("set TALLY_TEST_AWS=1 and TALLY_TEST_S3_BUCKET to run against AWS")
	}
	bucket := os.Getenv("TALLY_TEST_S3_BUCKET")
	if bucket == "" {
		t.Fatal("TALLY_TEST_AWS=1 needs TALLY_TEST_S3_BUCKET")
	}
	cfg, err := awsenv.Load(t.Context(), awsenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t, cfg, s3.Options{Bucket: bucket, PartSize: suitePartSize})
	blobtest.Run(t, func(t *testing.T) blob.Store { return st }, blobtest.Capabilities{Presign: true, PresignEnforced: true})
	t.Run("MultipartPutIfAbsentRace", func(t *testing.T) {
		st := newStore(t, cfg, s3.Options{Bucket: bucket, PartSize: minPart})
		testMultipartRace(t, st, awss3.NewFromConfig(cfg), unique(t, "tally-s3-test")+"/")
	})
}
