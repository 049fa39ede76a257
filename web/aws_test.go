package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tallyhq/tally/blob"
	blobs3 "github.com/tallyhq/tally/blob/s3"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/internal/fixtures"
	"github.com/tallyhq/tally/items"
	itemsdynamodb "github.com/tallyhq/tally/items/dynamodb"
	"github.com/tallyhq/tally/web"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// TestPagesOnAWS: the same pages over DynamoDB and S3 (moto_server), the
// receipt image reaching the browser through a presigned S3 GET.
func TestPagesOnAWS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := awstest.Shared(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "tally-web-" + hex.EncodeToString(rnd[:])
	cfg, err := awsenv.Load(ctx, srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	if err := itemsdynamodb.CreateTable(ctx, cfg, name, items.DefaultIndexes); err != nil {
		t.Fatal(err)
	}
	tbl, err := itemsdynamodb.New(srv.Config(t), itemsdynamodb.Options{Table: name})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := blobs3.New(srv.Config(t), blobs3.Options{Bucket: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.CreateBucket(ctx); err != nil {
		t.Fatal(err)
	}
	app, err := web.New(web.Config{Items: tbl, Blob: bs})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	app.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	b := &bundle{items: tbl, server: hs, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	b.store(t, "img-aws", corner...)
	crop := fixtures.BlankPNG(t, 60, 200)
	if _, err := bs.Put(ctx, "receipts/img-aws/1.png", bytes.NewReader(crop), blob.PutOptions{ContentType: "image/png"}); err != nil {
		t.Fatal(err)
	}
	rc, err := entities.GetReceipt(ctx, tbl, "img-aws", 1)
	if err != nil {
		t.Fatal(err)
	}
	rc.RawS3Key = "receipts/img-aws/1.png"
	if err := entities.Write(ctx, tbl, entities.Set{Receipts: []entities.Receipt{rc}}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := b.get(t, "/"); code != 200 || !strings.Contains(body, "CORNER GROCERY INC.") {
		t.Fatalf("list on DynamoDB: %d", code)
	}
	if code, body, _ := b.get(t, "/r/img-aws/1"); code != 200 || !strings.Contains(body, "<polygon") {
		t.Fatalf("detail on DynamoDB: %d", code)
	}
	code, _, h := b.get(t, "/r/img-aws/1/image")
	loc := h.Get("Location")
	if code != http.StatusFound || !strings.Contains(loc, "X-Amz-Signature") {
		t.Fatalf("image: %d %q", code, loc)
	}
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(crop)) {
		t.Errorf("presigned GET: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
}
