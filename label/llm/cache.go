package llm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// CacheItemType is the TYPE of cached answers, so they can be found (and
// counted or purged) through the GSITYPE index.
const CacheItemType = "LLM_CACHE"

// Item key prefixes and attribute names of a cached answer.
const (
	cachePKPrefix = "LLM#"
	cacheSKPrefix = "REQUEST#"
	attrContent   = "content"
	attrModel     = "model"
)

// cacheKey addresses the answer to one request body: the SHA-256 of the
// model and the body, so that any change to the receipt, the rules'
// proposal, the prompt or the schema asks again. Hashing keeps the sort
// key short (DynamoDB caps it at 1 KB).
func (rf *Refiner) cacheKey(body []byte) items.Key {
	h := sha256.New()
	h.Write([]byte(rf.model))
	h.Write([]byte{0})
	h.Write(body)
	return items.Key{PK: cachePKPrefix + rf.model, SK: cacheSKPrefix + hex.EncodeToString(h.Sum(nil))}
}

// cached returns the stored answer for key. A read failure is logged and
// is a miss: the model can still answer.
func (rf *Refiner) cached(ctx context.Context, key items.Key) (string, bool) {
	if rf.table == nil {
		return "", false
	}
	it, err := rf.table.Get(ctx, key)
	switch {
	case errors.Is(err, tally.ErrNotFound):
		return "", false
	case err != nil:
		if ctx.Err() == nil {
			rf.log.Warn("llm cache read failed; asking the model", "model", rf.model, "sk", key.SK, "err", err)
		}
		return "", false
	}
	content, ok := it[attrContent].(string)
	if !ok || content == "" {
		rf.log.Warn("llm cache entry has no content; asking again", "pk", key.PK, "sk", key.SK)
		return "", false
	}
	return content, true
}

// store keeps an answer that made a valid proposal. A write failure is
// only logged: the caller already has its proposal.
func (rf *Refiner) store(ctx context.Context, key items.Key, content string) {
	if rf.table == nil {
		return
	}
	it := items.Item{
		items.AttrPK:   key.PK,
		items.AttrSK:   key.SK,
		items.AttrType: CacheItemType,
		attrModel:      rf.model,
		attrContent:    content,
		items.AttrTTL:  time.Now().Add(rf.ttl).Unix(),
	}
	if err := rf.table.Put(ctx, it, items.Cond{}); err != nil && ctx.Err() == nil {
		rf.log.Warn("llm cache write failed", "model", rf.model, "sk", key.SK, "err", err)
	}
}
