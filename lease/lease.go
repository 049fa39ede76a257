// Package lease gives one holder at a time the right to do a job (compact a
// collection, rescue stale runs), on top of the items port so it works the
// same on SQLite and DynamoDB.
//
// A lease is an item PK=LOCK#{name}, SK=LOCK holding the owner, an expiry and
// an epoch. Taking a lease (fresh, or over an expired one) increments the
// epoch, so the epoch is a fencing token: a holder whose lease lapsed and was
// taken over can never again pass Fence, even if it does not yet know it
// lost. Writes that must only happen under the lease put Fence in the same
// transaction (items.Table.TransactWrite).
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/items"
)

// Errors callers branch on. Both match tally.ErrConditionFailed too.
var (
	// ErrHeld means another owner holds an unexpired lease.
	ErrHeld = fmt.Errorf("lease held by another owner: %w", tally.ErrConditionFailed)
	// ErrLost means this holder's lease expired or was taken over.
	ErrLost = fmt.Errorf("lease lost: %w", tally.ErrConditionFailed)
)

// Item attribute names.
const (
	attrOwner   = "owner"
	attrEpoch   = "epoch"
	attrExpires = "expires_at_ms"
	typeLock    = "LOCK"
)

// Key is the item key of the lease called name (DESIGN §3: LOCK#{collection}#{lock}).
func Key(name string) items.Key { return items.Key{PK: "LOCK#" + name, SK: "LOCK"} }

// Lease is a held lease. Its methods are safe for concurrent use.
type Lease struct {
	table items.Table
	name  string
	owner string
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	epoch   int64
	expires time.Time
}

// Options tune Acquire.
type Options struct {
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Acquire takes the lease called name for owner for ttl, if it is free,
// expired, or already owner's. Otherwise it returns ErrHeld.
func Acquire(ctx context.Context, t items.Table, name, owner string, ttl time.Duration, opts Options) (*Lease, error) {
	if name == "" || owner == "" || ttl <= 0 {
		return nil, fmt.Errorf("acquire lease %q for %q (ttl %v): %w", name, owner, ttl, tally.ErrInvalidArgument)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	l := &Lease{table: t, name: name, owner: owner, ttl: ttl, now: now}
	at := now()
	exp := at.Add(ttl)
	it, err := t.Update(ctx, Key(name), items.Update{
		Expr: "SET #owner = :owner, #exp = :exp, #type = :type ADD #epoch :one",
		Cond: "attribute_not_exists(PK) OR #exp < :now OR #owner = :owner",
		Names: map[string]string{
			"#owner": attrOwner, "#exp": attrExpires, "#epoch": attrEpoch, "#type": items.AttrType,
		},
		Values: map[string]any{
			":owner": owner, ":exp": exp.UnixMilli(), ":now": at.UnixMilli(), ":one": 1, ":type": typeLock,
		},
	})
	if err != nil {
		if errors.Is(err, tally.ErrConditionFailed) {
			return nil, fmt.Errorf("acquire lease %q for %q: %w", name, owner, ErrHeld)
		}
		return nil, fmt.Errorf("acquire lease %q: %w", name, err)
	}
	epoch, ok := items.Int64Of(it[attrEpoch])
	if !ok {
		return nil, fmt.Errorf("acquire lease %q: stored epoch %v is not a number", name, it[attrEpoch])
	}
	l.epoch, l.expires = epoch, exp
	return l, nil
}

// Name is the lease's name.
func (l *Lease) Name() string { return l.name }

// Owner is the holder's identity.
func (l *Lease) Owner() string { return l.owner }

// Epoch is the fencing token of this tenure.
func (l *Lease) Epoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Expires is when the lease lapses unless renewed.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Renew extends the lease by its ttl from now. It returns ErrLost if the
// lease expired or another owner took it.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.now()
	exp := at.Add(l.ttl)
	_, err := l.table.Update(ctx, Key(l.name), items.Update{
		Expr:   "SET #exp = :exp",
		Cond:   "#owner = :owner AND #epoch = :epoch AND #exp >= :now",
		Names:  map[string]string{"#owner": attrOwner, "#exp": attrExpires, "#epoch": attrEpoch},
		Values: map[string]any{":owner": l.owner, ":epoch": l.epoch, ":exp": exp.UnixMilli(), ":now": at.UnixMilli()},
	})
	if err != nil {
		if errors.Is(err, tally.ErrConditionFailed) {
			return fmt.Errorf("renew lease %q: %w", l.name, ErrLost)
		}
		return fmt.Errorf("renew lease %q: %w", l.name, err)
	}
	l.expires = exp
	return nil
}

// Release gives the lease up early by expiring it (the item stays so the
// epoch keeps counting up). Releasing a lost lease is not an error.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.table.Update(ctx, Key(l.name), items.Update{
		Expr:   "SET #exp = :zero",
		Cond:   "#owner = :owner AND #epoch = :epoch",
		Names:  map[string]string{"#owner": attrOwner, "#exp": attrExpires, "#epoch": attrEpoch},
		Values: map[string]any{":owner": l.owner, ":epoch": l.epoch, ":zero": 0},
	})
	if err != nil && !errors.Is(err, tally.ErrConditionFailed) {
		return fmt.Errorf("release lease %q: %w", l.name, err)
	}
	l.expires = time.Time{}
	return nil
}

// Fence is a transaction check that holds only while this tenure is valid:
// same owner, same epoch, not expired by the clock now. Put it in the same
// TransactWrite as the write it guards.
func (l *Lease) Fence() items.Write {
	l.mu.Lock()
	defer l.mu.Unlock()
	return items.CheckWrite(Key(l.name), items.Cond{
		Expr:   "#owner = :owner AND #epoch = :epoch AND #exp > :now",
		Names:  map[string]string{"#owner": attrOwner, "#exp": attrExpires, "#epoch": attrEpoch},
		Values: map[string]any{":owner": l.owner, ":epoch": l.epoch, ":now": l.now().UnixMilli()},
	})
}

// Keep renews the lease every ttl/3 until ctx ends or the lease is lost. The
// returned context is canceled as soon as the lease is lost (or cannot be
// renewed before it would lapse), so work done under it stops; stop ends the
// heartbeat and returns why it ended (nil when stopped by the caller).
func (l *Lease) Keep(ctx context.Context, log *slog.Logger) (held context.Context, stop func() error) {
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var result error
	go func() {
		defer close(done)
		every := l.ttl / 3
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-held.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithDeadline(held, l.Expires())
			err := l.Renew(rctx)
			rcancel()
			if err == nil {
				continue
			}
			if held.Err() != nil {
				return
			}
			if errors.Is(err, ErrLost) || !l.now().Before(l.Expires()) {
				if log != nil {
					log.Warn("lease lost", "lease", l.name, "owner", l.owner, "epoch", l.Epoch(), "err", err)
				}
				result = err
				cancel(err)
				return
			}
			if log != nil {
				log.Warn("lease renewal failed; retrying", "lease", l.name, "err", err)
			}
		}
	}()
	return held, func() error {
		cancel(nil)
		<-done
		return result
	}
}

// Holder is a lease as an operator sees it: who took it last and until when.
type Holder struct {
	Name    string
	Owner   string
	Epoch   int64
	Expires time.Time
}

// Inspect reads the lease called name without taking it; tally.ErrNotFound
// when it was never taken.
func Inspect(ctx context.Context, t items.Table, name string) (Holder, error) {
	it, err := t.Get(ctx, Key(name))
	if err != nil {
		return Holder{}, fmt.Errorf("inspect lease %q: %w", name, err)
	}
	h := Holder{Name: name}
	h.Owner, _ = it[attrOwner].(string)
	h.Epoch, _ = items.Int64Of(it[attrEpoch])
	ms, ok := items.Int64Of(it[attrExpires])
	if !ok {
		return Holder{}, fmt.Errorf("inspect lease %q: stored expiry %v is not a number", name, it[attrExpires])
	}
	h.Expires = time.UnixMilli(ms)
	return h, nil
}
