package process

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"sort"
	"strings"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/blob"
	"github.com/tallyhq/tally/compaction"
	"github.com/tallyhq/tally/entities"
	"github.com/tallyhq/tally/imaging"
	"github.com/tallyhq/tally/items"
	"github.com/tallyhq/tally/label"
	"github.com/tallyhq/tally/ocr"
	"github.com/tallyhq/tally/ocrjob"
	"github.com/tallyhq/tally/ocrstage"
	"github.com/tallyhq/tally/pipeline"
	"github.com/tallyhq/tally/renditions"
	"github.com/tallyhq/tally/textindex"
	"github.com/tallyhq/tally/vector"
)

// RunID is the compaction run id of one receipt of one OCR job: the same
// for every delivery of the record, so a redelivery rewrites the same
// deltas and finds the same run.
func RunID(imageID string, receiptID int, jobID string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s", imageID, receiptID, jobID)))
	return "run-" + hex.EncodeToString(sum[:12])
}

// Process handles one OCR result: entities, renditions, embeddings, vector
// deltas and the compaction run for each receipt, then the routing item
// COMPLETED. Errors are *Permanent when the record can never succeed.
func (w *Worker) Process(ctx context.Context, rm ocrjob.ResultMessage) error {
	job, err := ocrjob.GetJob(ctx, w.cfg.Items, rm.ImageID, rm.JobID)
	if errors.Is(err, tally.ErrNotFound) {
		return permanent("OCR job %s of image %s does not exist", rm.JobID, rm.ImageID)
	}
	if err != nil {
		return err
	}
	raw, err := blob.ReadAll(ctx, w.cfg.Blob, rm.S3Key)
	if errors.Is(err, tally.ErrNotFound) {
		return permanent("OCR result %s is missing", rm.S3Key)
	}
	if err != nil {
		return fmt.Errorf("read OCR result: %w", err)
	}
	res, err := ocr.Decode(raw)
	if err == nil {
		err = res.Validate()
	}
	if err != nil {
		return permanent("OCR result %s: %v", rm.S3Key, err)
	}
	img, err := w.cfg.Items.Get(ctx, ocrjob.ImageKey(rm.ImageID))
	if err != nil && !errors.Is(err, tally.ErrNotFound) {
		return err
	}
	width, _ := items.Int64Of(img["width"])
	height, _ := items.Int64Of(img["height"])
	if width <= 0 || height <= 0 {
		if res.Classification == nil {
			return permanent("image %s has no size and the OCR result does not say it", rm.ImageID)
		}
		width, height = int64(res.Classification.ImageWidth), int64(res.Classification.ImageHeight)
	}
	var raster image.Image // the raw image, decoded only when needed
	decodeRaw := func() (image.Image, error) {
		if raster != nil {
			return raster, nil
		}
		data, err := blob.ReadAll(ctx, w.cfg.Blob, job.Key)
		if errors.Is(err, tally.ErrNotFound) {
			return nil, permanent("raw image %s is missing", job.Key)
		}
		if err != nil {
			return nil, err
		}
		if raster, _, err = imaging.Decode(ctx, data, imaging.Limits{}); err != nil {
			return nil, permanent("raw image %s: %v", job.Key, err)
		}
		return raster, nil
	}
	if !res.SinglePass() {
		// A legacy result (no receipts): find them from its lines.
		var g *image.Gray
		if r, err := decodeRaw(); err == nil {
			g = imaging.Gray(r)
		} else if errors.As(err, new(*Permanent)) {
			g = image.NewGray(image.Rect(0, 0, int(width), int(height)))
		} else {
			return err
		}
		a, err := ocrstage.Analyze(ctx, g, res.Lines, nil)
		if err != nil {
			return permanent("analyse legacy OCR result: %v", err)
		}
		res = a.Result
	}
	str := func(name string) string { s, _ := img[name].(string); return s }
	src := entities.Source{
		ImageID: rm.ImageID, Width: int(width), Height: int(height), ImageType: str("image_type"),
		Added: ocrjob.ParseTime(img["timestamp_added"]), RawBucket: rm.S3Bucket, RawKey: job.Key, SHA256: str("sha256"),
		Result: res,
	}
	if src.Added.IsZero() {
		src.Added = job.CreatedAt
	}
	if src.ImageType == "" && res.Classification != nil {
		src.ImageType = res.Classification.ImageType
	}
	for _, rc := range res.Receipts {
		src.Crops = append(src.Crops, entities.CropInfo{Bucket: rm.S3Bucket, Key: rc.S3Key})
	}
	set, err := entities.Build(src)
	if err != nil {
		return permanent("build entities: %v", err)
	}
	for i := range set.Images {
		set.Images[i].Owner = job.Owner // the uploader's, kept on everything made from it
	}
	ix, err := w.embed(ctx, rm, set)
	if err != nil {
		return err
	}
	if w.cfg.Renditions != nil {
		if err := w.render(ctx, &set, res, decodeRaw); err != nil {
			return err
		}
	}
	if err := entities.Write(ctx, w.cfg.Items, set); err != nil {
		return fmt.Errorf("write entities: %w", err)
	}
	w.checkpoint("entities")
	merchants := map[int]string{}
	if w.cfg.Merchant != nil {
		for _, rc := range set.Receipts {
			p, err := w.cfg.Merchant.Resolve(ctx, set, rc.ReceiptID)
			if err != nil {
				return fmt.Errorf("resolve merchant of receipt %d: %w", rc.ReceiptID, err)
			}
			if err := w.cfg.Items.Put(ctx, p.Item(), items.Cond{}); err != nil {
				return fmt.Errorf("write receipt %d place: %w", rc.ReceiptID, err)
			}
			if p.MerchantName != "" {
				merchants[rc.ReceiptID] = p.MerchantName
			}
		}
	}
	var us []entities.Understanding
	if w.cfg.Labels != nil {
		// Labelled from the stored words, idempotently: the run id is the
		// record's, so a redelivery finds its summary and relabels nothing.
		if us, err = w.cfg.Labels.Image(ctx, w.cfg.Items, set, job.CreatedAt, func(rid int) string { return RunID(rm.ImageID, rid, rm.JobID) }); err != nil {
			return fmt.Errorf("label receipts: %w", err)
		}
		w.checkpoint("labels")
		ix.addLabels(us)
	}
	if w.cfg.Text != nil {
		if err := w.cfg.Text.Put(ctx, rm.ImageID, textDocs(set, us)); err != nil {
			return fmt.Errorf("index receipt text: %w", err)
		}
	}
	if err := w.index(ctx, rm, ix, merchants); err != nil {
		return err
	}
	_, err = w.cfg.Items.Update(ctx, ocrjob.RoutingKey(rm.ImageID, rm.JobID), items.Update{
		Expr:   "SET #status = :done, updated_at = :now REMOVE process_failure_reason",
		Cond:   "attribute_exists(PK)",
		Names:  map[string]string{"#status": "status"},
		Values: map[string]any{":done": ocrjob.StatusCompleted, ":now": ocrjob.FormatTime(time.Now())},
	})
	if errors.Is(err, tally.ErrConditionFailed) {
		return permanent("routing item of job %s does not exist", rm.JobID)
	}
	return err
}

// render stores the renditions of the image and of each receipt crop and
// records their keys on the entities. A rendition that cannot be made is
// skipped (logged), never a failed record; only store errors fail it.
func (w *Worker) render(ctx context.Context, set *entities.Set, res *ocr.Result, decodeRaw func() (image.Image, error)) error {
	img, err := decodeRaw()
	if err != nil {
		var p *Permanent
		if errors.As(err, &p) {
			w.log.Warn("no image renditions", "reason", p.Err)
			return nil
		}
		return err
	}
	if len(set.Images) == 1 {
		done, skipped, err := renditions.Render(ctx, w.cfg.Assets, img, "assets/"+set.Images[0].ImageID+"/image", *w.cfg.Renditions)
		if err != nil {
			return fmt.Errorf("image renditions: %w", err)
		}
		w.logSkipped(skipped)
		im := &set.Images[0]
		im.CDNBucket = im.RawS3Bucket
		im.CDNKey, im.CDNWebPKey, im.CDNAVIFKey, im.CDNSizes = cdnKeys(done)
	}
	for i := range set.Receipts {
		rc := &set.Receipts[i]
		if i >= len(res.Receipts) || res.Receipts[i].S3Key == "" {
			continue
		}
		data, err := blob.ReadAll(ctx, w.cfg.Blob, res.Receipts[i].S3Key)
		if errors.Is(err, tally.ErrNotFound) {
			w.log.Warn("receipt crop missing; no renditions", "key", res.Receipts[i].S3Key)
			continue
		}
		if err != nil {
			return err
		}
		crop, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			w.log.Warn("receipt crop unreadable; no renditions", "key", res.Receipts[i].S3Key, "err", err)
			continue
		}
		done, skipped, err := renditions.Render(ctx, w.cfg.Assets, crop, fmt.Sprintf("assets/%s/%d", rc.ImageID, rc.ReceiptID), *w.cfg.Renditions)
		if err != nil {
			return fmt.Errorf("receipt %d renditions: %w", rc.ReceiptID, err)
		}
		w.logSkipped(skipped)
		rc.CDNBucket = rc.RawS3Bucket
		rc.CDNKey, rc.CDNWebPKey, rc.CDNAVIFKey, rc.CDNSizes = cdnKeys(done)
	}
	return nil
}

// cdnKeys sorts renditions into the entity fields: full size into the
// cdn_*_s3_key attributes, smaller ones by size name.
func cdnKeys(done []renditions.Rendition) (jpeg, webp, avif string, sizes map[string]entities.Rendition) {
	sizes = map[string]entities.Rendition{}
	for _, r := range done {
		if r.SizeName == "full" {
			switch r.Format {
			case renditions.JPEG:
				jpeg = r.Key
			case renditions.WebP:
				webp = r.Key
			case renditions.AVIF:
				avif = r.Key
			}
			continue
		}
		e := sizes[r.SizeName]
		switch r.Format {
		case renditions.JPEG:
			e.Key = r.Key
		case renditions.WebP:
			e.WebPKey = r.Key
		case renditions.AVIF:
			e.AVIFKey = r.Key
		}
		sizes[r.SizeName] = e
	}
	if len(sizes) == 0 {
		sizes = nil
	}
	return jpeg, webp, avif, sizes
}

func (w *Worker) logSkipped(skipped []renditions.Skip) {
	for _, s := range skipped {
		w.log.Debug("rendition skipped", "format", s.Format, "size", s.SizeName, "reason", s.Reason)
	}
}

// index embeds each receipt's rows and words, writes them as vector deltas
// (one run per receipt, both collections), then creates the compaction run
// — only once both deltas exist — and sends its message.
// doc is one text to embed and the vector record it becomes.
type doc struct {
	coll string
	rec  vector.Record
	text string
}

// embedded is a record's documents by receipt, with their vectors.
type embedded struct {
	rids      []int
	byReceipt map[int][]doc
}

// embed builds the row and word documents of every receipt and embeds them
// in one call — before anything is written, so that the records of a batch
// reach the (coalescing) embedder together and share requests.
func (w *Worker) embed(ctx context.Context, rm ocrjob.ResultMessage, set entities.Set) (*embedded, error) {
	byReceipt := map[int][]doc{}
	for _, rc := range set.Receipts {
		byReceipt[rc.ReceiptID] = nil
	}
	rows := map[int][]entities.ReceiptRow{}
	for _, r := range set.ReceiptRows {
		rows[r.ReceiptID] = append(rows[r.ReceiptID], r)
	}
	words := map[[2]int][]entities.ReceiptWord{} // (receipt, line) → words
	for _, wd := range set.ReceiptWords {
		k := [2]int{wd.ReceiptID, wd.LineID}
		words[k] = append(words[k], wd)
	}
	for rid, rs := range rows {
		sort.Slice(rs, func(i, j int) bool { return rs[i].RowID < rs[j].RowID })
		texts := make([]string, len(rs))
		for i, r := range rs {
			texts[i] = r.Text
		}
		for i, t := range pipeline.RowTexts(texts) {
			r := rs[i]
			byReceipt[rid] = append(byReceipt[rid], doc{coll: vector.CollectionLines, text: t, rec: vector.Record{
				ID:   fmt.Sprintf("IMAGE#%s#RECEIPT#%05d#LINE#%05d", rm.ImageID, rid, r.LineIDs[0]),
				Meta: map[string]any{"image_id": rm.ImageID, "receipt_id": rid, "line_id": r.LineIDs[0], "row_id": r.RowID, "text": r.Text},
			}})
			// Words in reading order across the row's lines.
			var ws []entities.ReceiptWord
			for _, lid := range r.LineIDs {
				ws = append(ws, words[[2]int{rid, lid}]...)
			}
			sort.SliceStable(ws, func(i, j int) bool { return ws[i].BoundingBox.X < ws[j].BoundingBox.X })
			wt := make([]string, len(ws))
			for i, wd := range ws {
				wt[i] = wd.Text
			}
			for i, t := range pipeline.WordTexts(wt) {
				wd := ws[i]
				byReceipt[rid] = append(byReceipt[rid], doc{coll: vector.CollectionWords, text: t, rec: vector.Record{
					ID:   fmt.Sprintf("IMAGE#%s#RECEIPT#%05d#LINE#%05d#WORD#%05d", rm.ImageID, rid, wd.LineID, wd.WordID),
					Meta: map[string]any{"image_id": rm.ImageID, "receipt_id": rid, "line_id": wd.LineID, "word_id": wd.WordID, "text": wd.Text},
				}})
			}
		}
	}
	// One embedding request for the whole record.
	var all []doc
	rids := make([]int, 0, len(byReceipt))
	for rid := range byReceipt {
		rids = append(rids, rid)
	}
	sort.Ints(rids)
	for _, rid := range rids {
		all = append(all, byReceipt[rid]...)
	}
	texts := make([]string, len(all))
	for i, d := range all {
		texts[i] = d.text
	}
	var vecs [][]float32
	if len(texts) > 0 {
		var err error
		if vecs, err = w.cfg.Embedder.Embed(ctx, texts); err != nil {
			return nil, fmt.Errorf("embed %d texts: %w", len(texts), err)
		}
		if len(vecs) != len(texts) {
			return nil, fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(texts))
		}
	}
	k := 0
	for _, rid := range rids {
		for i := range byReceipt[rid] {
			byReceipt[rid][i].rec.Vector = vecs[k]
			k++
		}
	}
	return &embedded{rids: rids, byReceipt: byReceipt}, nil
}

// textDocs are the image's receipt rows for the full-text index, each with
// its receipt's merchant and date when labelled.
func textDocs(set entities.Set, us []entities.Understanding) []textindex.Doc {
	sums := map[int]entities.ReceiptSummary{}
	for _, u := range us {
		sums[u.Summary.ReceiptID] = u.Summary
	}
	docs := make([]textindex.Doc, 0, len(set.ReceiptRows))
	for _, row := range set.ReceiptRows {
		s := sums[row.ReceiptID]
		docs = append(docs, textindex.Doc{ImageID: row.ImageID, ReceiptID: row.ReceiptID, RowID: row.RowID,
			LineIDs: row.LineIDs, Text: row.Text, Merchant: s.MerchantName, Date: s.Date})
	}
	return docs
}

// addLabels puts each word's VALID labels into its vector metadata
// ("label", the labels joined by ","), so that similar words of later
// receipts can be labelled by their neighbours.
func (ix *embedded) addLabels(us []entities.Understanding) {
	valid := map[string][]string{}
	for _, u := range us {
		for _, l := range u.Labels {
			// kNN's own labels never feed kNN (they would snowball).
			if l.ValidationStatus == entities.LabelValid && l.LabelProposedBy != label.SourceKNN {
				id := fmt.Sprintf("IMAGE#%s#RECEIPT#%05d#LINE#%05d#WORD#%05d", l.ImageID, l.ReceiptID, l.LineID, l.WordID)
				valid[id] = append(valid[id], l.Label)
			}
		}
	}
	for _, docs := range ix.byReceipt {
		for _, d := range docs {
			if ls, ok := valid[d.rec.ID]; ok && d.coll == vector.CollectionWords {
				d.rec.Meta["label"] = strings.Join(ls, ",")
			}
		}
	}
}

// index writes each receipt's vector deltas (lines and words, one run),
// then — only once both exist — creates the compaction run and sends its
// message. The merchant's name, when known, goes into every record's
// metadata.
func (w *Worker) index(ctx context.Context, rm ocrjob.ResultMessage, ix *embedded, merchants map[int]string) error {
	rids, byReceipt := ix.rids, ix.byReceipt
	for _, rid := range rids {
		if name := merchants[rid]; name != "" {
			for _, d := range byReceipt[rid] {
				d.rec.Meta["merchant_name"] = name
			}
		}
		var lines, wordsRecs []vector.Record
		for _, d := range byReceipt[rid] {
			if d.coll == vector.CollectionLines {
				lines = append(lines, d.rec)
			} else {
				wordsRecs = append(wordsRecs, d.rec)
			}
		}
		if len(lines) == 0 && len(wordsRecs) == 0 {
			continue
		}
		run := RunID(rm.ImageID, rid, rm.JobID)
		var colls []string
		for _, c := range []struct {
			name string
			recs []vector.Record
		}{{vector.CollectionLines, lines}, {vector.CollectionWords, wordsRecs}} {
			if len(c.recs) == 0 {
				continue
			}
			if _, err := w.cfg.Vectors.WriteDelta(ctx, c.name, run, c.recs, nil); err != nil {
				return fmt.Errorf("write %s delta of receipt %d: %w", c.name, rid, err)
			}
			colls = append(colls, c.name)
		}
		w.checkpoint("deltas")
		r := compaction.Run{RunID: run, ImageID: rm.ImageID, ReceiptID: rid, Collections: colls}
		if err := compaction.CreateRun(ctx, w.cfg.Items, r); err != nil {
			return err
		}
		w.checkpoint("run")
		if err := compaction.Enqueue(ctx, w.cfg.Compaction, r.Message()); err != nil {
			return err
		}
	}
	return nil
}
