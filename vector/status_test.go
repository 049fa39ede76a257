package vector_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/vector"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st, err := b.store.Status(b.ctx, "lines")
	if err != nil || st.Version != 0 || st.Pending != 0 || len(st.Missing) != 0 {
		t.Fatalf("empty collection status = %+v, %v", st, err)
	}
	if _, err := b.store.WriteDelta(b.ctx, "lines", "r1", []vector.Record{rec("a", 1), rec("b", 2)}, nil); err != nil {
		t.Fatal(err)
	}
	if st, err = b.store.Status(b.ctx, "lines"); err != nil || st.Pending != 1 || st.OldestPending.IsZero() {
		t.Fatalf("status with one delta = %+v, %v; want 1 pending", st, err)
	}
	b.compact(t, "lines")
	bad, err := b.store.WriteDelta(b.ctx, "lines", "r2", []vector.Record{rec("c", 3)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.blob.Put(b.ctx, bad.Key, bytes.NewReader([]byte("not a segment")), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.WriteDelta(b.ctx, "lines", "r3", []vector.Record{rec("d", 4)}, nil); err != nil {
		t.Fatal(err)
	}
	res := b.compact(t, "lines")
	st, err = b.store.Status(b.ctx, "lines")
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != res.Version || st.Records != 3 || st.Segments == 0 || st.Pending != 0 || len(st.Quarantined) != 1 || st.Quarantined[0].RunID != "r2" || len(st.Missing) != 0 {
		t.Fatalf("status after a quarantine = %+v; want v%d, 3 records, nothing pending, r2 quarantined, nothing missing", st, res.Version)
	}
	page, err := b.blob.List(b.ctx, blob.ListOptions{Prefix: "vectors/lines/versions/"})
	if err != nil || len(page.Objects) == 0 {
		t.Fatalf("list versions: %+v, %v", page, err)
	}
	raw, err := blob.ReadAll(b.ctx, b.blob, page.Objects[len(page.Objects)-1].Key)
	if err != nil {
		t.Fatal(err)
	}
	var m vector.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || m.Version != st.Version {
		t.Fatalf("head manifest: %+v, %v", m, err)
	}
	if err := b.blob.Delete(b.ctx, m.Segments[0].Key); err != nil {
		t.Fatal(err)
	}
	if st, err = b.store.Status(b.ctx, "lines"); err != nil || len(st.Missing) != 1 || st.Missing[0] != m.Segments[0].Key {
		t.Fatalf("status with a segment deleted = %+v, %v; want it named missing", st, err)
	}
	bytes, files, err := b.cache.Size()
	if err != nil || bytes <= 0 || files == 0 {
		t.Errorf("cache Size = %d bytes in %d files, %v; want the segments the compactor fetched", bytes, files, err)
	}
}
