// Package purge deletes one uploaded image and everything made from it: the
// items of its partition (entities, labels, summaries, OCR jobs, routing,
// compaction runs), its sha256 claim, its raw upload, OCR results, receipt
// crops and renditions, and its row and word vectors.
//
// A person asks for an image to be forgotten; the pipeline spread it over
// three stores, and a purge must be safe to interrupt at any point and run
// again. So Image works in an order where what is left always says what
// is still to do: vectors first (a delete delta and the compaction run that
// applies it), then blobs, then items, and the image item itself last. A
// call that fails part-way leaves the image findable, and the next call
// finishes the job.
//
// The purge's own compaction run cannot live in the image's partition (the
// compactor must find it after the partition is gone), so it is filed under
// the pseudo-image "purge-{image_id}" (see RunKey). It stays there as the
// record that the image was purged.
//
// Beyond a purge's reach, and gone only with time: cache entries keyed by
// a hash of the receipt's text (embeddings, LLM answers) or by its
// merchant's phone and address (Places), which expire by TTL; queue
// messages that name the image id, which then find nothing; and the bytes
// of masked vector records, until compaction merges their segments and
// garbage collection drops the old versions.
package purge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/queue"
	"github.com/tallyhq/tally/vector"
)

// Config names the stores an image was spread over.
type Config struct {
	// Items is the table (the image's partition and its sha256 claim).
	Items items.Table
	// Blob holds raw uploads, OCR result JSON and receipt crops.
	Blob blob.Store
	// Assets holds renditions; nil means Blob.
	Assets blob.Store
	// Vectors is the vector store the image's rows and words were written
	// to.
	Vectors *vector.Store
	// Compaction is the compaction queue, which receives the message of the
	// run that applies the vector deletes.
	Compaction queue.Queue
}

// Report says what one call removed, for the person who asked and for logs.
type Report struct {
	ImageID string
	// Items counts the items this call deleted, by TYPE.
	Items map[string]int
	// Blobs are the keys this call deleted, in Blob and Assets, sorted.
	Blobs []string
	// Vectors counts, by collection, the ids the purge's delete run names.
	// It is the same on every call that finds the run, since the run is
	// written once.
	Vectors map[string]int
	// CompactionRun is the id of the run that applies the vector deletes;
	// empty when the image had no receipt rows or words.
	CompactionRun string
}

// Blob key prefixes of an image, one per stage that stores objects
// (upload.RawKey, ocrstage.ResultKey and CropKey, process renditions).
// Listing them catches objects no item names any more.
func prefixes(imageID string) []string {
	return []string{
		"raw-receipts/" + imageID + "/",
		"ocr-results/" + imageID + "/",
		"ocr-receipts/" + imageID + "/",
		"assets/" + imageID + "/",
	}
}

// runReceiptID is the receipt id of a purge run. A run must name one
// receipt (1..99999); a purge run covers every receipt of the image, and a
// fixed id keeps its key a function of the image id alone.
const runReceiptID = 1

// RunID is the compaction run (and vector delta) id of an image's purge:
// the same on every call, so a repeated purge finds the run and the deltas
// it already wrote instead of writing new ones.
func RunID(imageID string) string {
	sum := sha256.Sum256([]byte("purge\x00" + imageID))
	return "purge-" + hex.EncodeToString(sum[:12])
}

// runImageID is the pseudo-image the purge run is filed under, outside the
// partition being purged.
func runImageID(imageID string) string { return "purge-" + imageID }

// RunKey is the item key of an image's purge run:
// PK=IMAGE#purge-{image_id}, SK=RECEIPT#00001#COMPACTION_RUN#{RunID}. It is
// the one item a purge leaves, as the trace that the image was purged.
func RunKey(imageID string) items.Key {
	return compaction.RunKey(runImageID(imageID), runReceiptID, RunID(imageID))
}

func partitionPK(imageID string) string { return "IMAGE#" + imageID }

// maxRounds bounds how often the partition is read again for items written
// while the purge ran.
const maxRounds = 5

// Image deletes the image and everything made from it, and reports what
// this call removed.
//
// An image with no item in its partition is tally.ErrNotFound and nothing
// is done; that includes an image already purged, so a second purge is
// ErrNotFound (the first one's report is the record). A purge interrupted
// part-way leaves at least the image item, and a second call finishes it.
// On error the report holds what was removed before the failure.
//
// The vector records leave readers as soon as the delete delta is
// registered, and the stored segments once the compactor has applied the
// run (their bytes are masked, then dropped when segments are merged and
// old versions collected). Purging an image while the pipeline is still
// processing it races with that processing; purge images at rest.
func Image(ctx context.Context, cfg Config, imageID string) (Report, error) {
	rep := Report{ImageID: imageID, Items: map[string]int{}, Vectors: map[string]int{}}
	if cfg.Items == nil || cfg.Blob == nil || cfg.Vectors == nil || cfg.Compaction == nil {
		return rep, fmt.Errorf("purge: Items, Blob, Vectors and Compaction are required: %w", tally.ErrInvalidArgument)
	}
	if cfg.Assets == nil {
		cfg.Assets = cfg.Blob
	}
	if err := ocrjob.ValidateID("image_id", imageID); err != nil {
		return rep, fmt.Errorf("purge: %w", err)
	}
	all, err := items.QueryAll(ctx, cfg.Items, items.Query{PK: partitionPK(imageID)})
	if err != nil {
		return rep, fmt.Errorf("purge image %s: read its items: %w", imageID, err)
	}
	if len(all) == 0 {
		return rep, fmt.Errorf("purge image %s: %w", imageID, tally.ErrNotFound)
	}
	p := plan(imageID, all)
	if err := purgeVectors(ctx, cfg, p, &rep); err != nil {
		return rep, fmt.Errorf("purge image %s: %w", imageID, err)
	}
	if err := purgeBlobs(ctx, cfg, p, &rep); err != nil {
		return rep, fmt.Errorf("purge image %s: %w", imageID, err)
	}
	if err := purgeItems(ctx, cfg, p, &rep); err != nil {
		return rep, fmt.Errorf("purge image %s: %w", imageID, err)
	}
	return rep, nil
}

// work is what the image's items say is to be removed.
type work struct {
	imageID string
	items   []items.Item
	// vectorIDs are the record ids by collection, sorted.
	vectorIDs map[string][]string
	// blobKeys and assetKeys are keys items name, in Blob and in Assets.
	blobKeys, assetKeys []string
	// sums are the owner and sha256 values the image's items carry,
	// joined by NUL (the claims' keys).
	sums []string
}

// plan reads the image's items for the vector ids, blob keys and sha256
// claims to remove. It is lenient: an item it cannot read adds nothing, so
// that one malformed item never keeps an image from being purged.
func plan(imageID string, all []items.Item) work {
	w := work{imageID: imageID, items: all, vectorIDs: map[string][]string{}}
	lines, words := map[string]bool{}, map[string]bool{}
	blobKeys, assetKeys, sums := map[string]bool{}, map[string]bool{}, map[string]bool{}
	str := func(it items.Item, name string) string { s, _ := it[name].(string); return s }
	for _, it := range all {
		sk := it.Key().SK
		switch str(it, items.AttrType) {
		case "RECEIPT_LINE":
			if ids, ok := skIDs(sk, "RECEIPT", "LINE"); ok {
				lines[lineVectorID(imageID, ids[0], ids[1])] = true
			}
		case "RECEIPT_ROW":
			// A row's vector is named by its first line, as the process
			// stage names it.
			if ids, ok := skIDs(sk, "RECEIPT", "ROW"); ok {
				if list, _ := it["line_ids"].([]any); len(list) > 0 {
					if l, ok := items.Int64Of(list[0]); ok {
						lines[lineVectorID(imageID, ids[0], int(l))] = true
					}
				}
			}
		case "RECEIPT_WORD":
			if ids, ok := skIDs(sk, "RECEIPT", "LINE", "WORD"); ok {
				words[wordVectorID(imageID, ids[0], ids[1], ids[2])] = true
			}
		case ocrjob.TypeJob:
			blobKeys[str(it, "s3_key")] = true
			blobKeys[str(it, "result_s3_key")] = true
			sums[str(it, "owner")+"\x00"+str(it, "sha256")] = true
		case ocrjob.TypeRouting:
			blobKeys[str(it, "s3_key")] = true
			list, _ := it["receipts"].([]any)
			for _, v := range list {
				if m, ok := v.(map[string]any); ok {
					k, _ := m["s3_key"].(string)
					blobKeys[k] = true
				}
			}
		case ocrjob.TypeImage, "RECEIPT":
			blobKeys[str(it, "raw_s3_key")] = true
			if sk == "IMAGE" {
				sums[str(it, "owner")+"\x00"+str(it, "sha256")] = true
			}
			for name, v := range it {
				if s, ok := v.(string); ok && strings.HasPrefix(name, "cdn_") && strings.HasSuffix(name, "_s3_key") {
					assetKeys[s] = true
				}
			}
		}
	}
	w.vectorIDs[vector.CollectionLines] = sortedKeys(lines)
	w.vectorIDs[vector.CollectionWords] = sortedKeys(words)
	w.blobKeys, w.assetKeys, w.sums = sortedKeys(blobKeys), sortedKeys(assetKeys), sortedKeys(sums)
	return w
}

func lineVectorID(imageID string, r, l int) string {
	return fmt.Sprintf("IMAGE#%s#RECEIPT#%05d#LINE#%05d", imageID, r, l)
}

func wordVectorID(imageID string, r, l, w int) string {
	return fmt.Sprintf("IMAGE#%s#RECEIPT#%05d#LINE#%05d#WORD#%05d", imageID, r, l, w)
}

// skIDs parses a sort key NAME#{id}#NAME#{id}… with exactly these names.
func skIDs(sk string, names ...string) ([]int, bool) {
	parts := strings.Split(sk, "#")
	if len(parts) != 2*len(names) {
		return nil, false
	}
	ids := make([]int, len(names))
	for i, name := range names {
		id, err := strconv.Atoi(parts[2*i+1])
		if parts[2*i] != name || err != nil || id < 0 {
			return nil, false
		}
		ids[i] = id
	}
	return ids, true
}

// sortedKeys returns the set's non-empty members, sorted.
func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// purgeVectors writes the delete delta of each collection, then the
// compaction run, then its message, as the process stage does for its
// upserts. When the run exists already (a repeated purge) its deltas were
// written before it, so only its message is sent again, unless the run is
// complete.
func purgeVectors(ctx context.Context, cfg Config, p work, rep *Report) error {
	runID := RunID(p.imageID)
	k := RunKey(p.imageID)
	existing, err := compaction.GetRun(ctx, cfg.Items, runImageID(p.imageID), runReceiptID, runID)
	switch {
	case err == nil:
		rep.CompactionRun = runID
		for _, c := range existing.Collections {
			d, err := cfg.Vectors.RunDelta(ctx, c, runID)
			switch {
			case err == nil:
				rep.Vectors[c] = d.Deletes
			case !errors.Is(err, tally.ErrNotFound):
				return fmt.Errorf("read %s delete delta: %w", c, err)
			}
		}
		if existing.Status == compaction.StatusCompleted {
			return nil
		}
		if err := compaction.Enqueue(ctx, cfg.Compaction, existing.Message()); err != nil {
			return fmt.Errorf("vector deletes: %w", err)
		}
		return nil
	case !errors.Is(err, tally.ErrNotFound):
		return fmt.Errorf("read purge run %s/%s: %w", k.PK, k.SK, err)
	}
	var colls []string
	for _, c := range []string{vector.CollectionLines, vector.CollectionWords} {
		ids := p.vectorIDs[c]
		if len(ids) == 0 {
			continue
		}
		d, err := cfg.Vectors.WriteDelta(ctx, c, runID, nil, ids)
		if err != nil {
			return fmt.Errorf("write %s delete delta: %w", c, err)
		}
		rep.Vectors[c] = d.Deletes
		colls = append(colls, c)
	}
	if len(colls) == 0 {
		return nil
	}
	rep.CompactionRun = runID
	r := compaction.Run{RunID: runID, ImageID: runImageID(p.imageID), ReceiptID: runReceiptID, Collections: colls}
	if err := compaction.CreateRun(ctx, cfg.Items, r); err != nil {
		return fmt.Errorf("vector deletes: %w", err)
	}
	if err := compaction.Enqueue(ctx, cfg.Compaction, r.Message()); err != nil {
		return fmt.Errorf("vector deletes: %w", err)
	}
	return nil
}

// purgeBlobs deletes every object under the image's prefixes and every key
// its items name, in Blob and in Assets. A named key that is not there (or
// could never be a key) is skipped, so Blobs lists only what existed.
func purgeBlobs(ctx context.Context, cfg Config, p work, rep *Report) error {
	type store struct {
		s     blob.Store
		named []string
	}
	stores := []store{{s: cfg.Blob, named: p.blobKeys}}
	if sameStore(cfg.Assets, cfg.Blob) {
		stores[0].named = append(stores[0].named, p.assetKeys...)
	} else {
		stores = append(stores, store{s: cfg.Assets, named: p.assetKeys})
	}
	removed := map[string]bool{}
	for _, st := range stores {
		// Collect first, delete after: a listing is not disturbed by its own
		// deletes.
		keys := map[string]bool{}
		for _, prefix := range prefixes(p.imageID) {
			if err := list(ctx, st.s, prefix, func(k string) { keys[k] = true }); err != nil {
				return err
			}
		}
		for _, k := range st.named {
			if keys[k] || blob.ValidateKey(k) != nil {
				continue
			}
			_, err := st.s.Head(ctx, k)
			if errors.Is(err, tally.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("look up blob %s: %w", k, err)
			}
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			if err := st.s.Delete(ctx, k); err != nil {
				rep.Blobs = sortedKeys(removed)
				return fmt.Errorf("delete blob %s: %w", k, err)
			}
			removed[k] = true
		}
	}
	rep.Blobs = sortedKeys(removed)
	return nil
}

// list calls fn for every key under prefix.
func list(ctx context.Context, s blob.Store, prefix string, fn func(string)) error {
	opts := blob.ListOptions{Prefix: prefix}
	for {
		page, err := s.List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list blobs under %s: %w", prefix, err)
		}
		for _, o := range page.Objects {
			fn(o.Key)
		}
		if page.NextToken == "" {
			return nil
		}
		opts.Token = page.NextToken
	}
}

// sameStore reports whether a and b are the same store value, without
// panicking on a store type that cannot be compared.
func sameStore(a, b blob.Store) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta != nil && ta.Comparable() && a == b
}

// purgeItems deletes the sha256 claims that name this image, then the
// partition's items in batches, reading the partition again for items
// written meanwhile, and the image item last, so that until the very end
// a new call still finds the image.
func purgeItems(ctx context.Context, cfg Config, p work, rep *Report) error {
	for _, claim := range p.sums {
		owner, sum, _ := strings.Cut(claim, "\x00")
		if sum == "" {
			continue
		}
		err := cfg.Items.Delete(ctx, ocrjob.SHA256Key(owner, sum), items.Cond{
			Expr: "image_id = :id", Values: map[string]any{":id": p.imageID},
		})
		switch {
		case err == nil:
			rep.Items[ocrjob.TypeSHA256]++
		case errors.Is(err, tally.ErrConditionFailed):
			// Gone already, or the claim of another image with the same
			// bytes (this one was a forced upload): not ours to delete.
		default:
			return fmt.Errorf("delete sha256 claim %s: %w", sum, err)
		}
	}
	imageKey := ocrjob.ImageKey(p.imageID)
	all := p.items
	hasImage := false
	for round := 0; ; round++ {
		var rest []items.Item
		hasImage = false
		for _, it := range all {
			if it.Key() == imageKey {
				hasImage = true
			} else {
				rest = append(rest, it)
			}
		}
		if len(rest) == 0 {
			break
		}
		if round == maxRounds {
			return fmt.Errorf("items keep appearing in partition %s while it is purged (%d after %d rounds): %w",
				partitionPK(p.imageID), len(rest), maxRounds, tally.ErrConditionFailed)
		}
		if err := deleteItems(ctx, cfg.Items, rest, rep); err != nil {
			return err
		}
		var err error
		if all, err = items.QueryAll(ctx, cfg.Items, items.Query{PK: partitionPK(p.imageID)}); err != nil {
			return fmt.Errorf("read its items again: %w", err)
		}
	}
	if hasImage {
		if err := cfg.Items.Delete(ctx, imageKey, items.Cond{}); err != nil {
			return fmt.Errorf("delete image item: %w", err)
		}
		rep.Items[ocrjob.TypeImage]++
	}
	return nil
}

// deleteItems deletes items in batches of items.MaxBatchWrite, counting
// each batch once it is applied.
func deleteItems(ctx context.Context, t items.Table, all []items.Item, rep *Report) error {
	for chunk := range slices.Chunk(all, items.MaxBatchWrite) {
		keys := make([]items.Key, len(chunk))
		for i, it := range chunk {
			keys[i] = it.Key()
		}
		if err := t.BatchWrite(ctx, nil, keys); err != nil {
			return fmt.Errorf("delete %d items (%s/%s…): %w", len(keys), keys[0].PK, keys[0].SK, err)
		}
		for _, it := range chunk {
			typ, _ := it[items.AttrType].(string)
			rep.Items[typ]++
		}
	}
	return nil
}
