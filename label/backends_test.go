package label_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/tallyhq/tally/internal/awsenv"
	"github.com/tallyhq/tally/internal/awstest"
	"github.com/tallyhq/tally/items"
	itemsdynamodb "github.com/tallyhq/tally/items/dynamodb"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// eachBackend runs one test body against every item store: SQLite, and
// DynamoDB on moto_server, each test with a table of its own (summaries
// list across a whole GSI partition, so tests must not share one).
func eachBackend(t *testing.T, body func(t *testing.T, tbl items.Table)) {
	t.Parallel()
	for _, be := range []struct {
		name string
		open func(testing.TB) items.Table
	}{{"sqlite", openTable}, {"dynamodb", openDynamoDB}} {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			body(t, be.open(t))
		})
	}
}

func openDynamoDB(t testing.TB) items.Table {
	t.Helper()
	srv := awstest.Shared(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "tally-label-" + hex.EncodeToString(b[:])
	cfg, err := awsenv.Load(context.Background(), srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	if err := itemsdynamodb.CreateTable(context.Background(), cfg, name, items.DefaultIndexes); err != nil {
		t.Fatal(err)
	}
	tbl, err := itemsdynamodb.New(srv.Config(t), itemsdynamodb.Options{Table: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}
