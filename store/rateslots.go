package store

import (
	"context"
	"fmt"
	"time"
)

// SendSlots spaces the requests to one target across every process that
// shares the database: a vendor's request limit is per account, not per
// worker. It implements rest.Slots.
type SendSlots struct {
	Store  *Store
	Target string
}

// Reserve returns when the next request may be sent: now, or interval after
// the send time reserved before it, whichever is later. Reservations of one
// target are serialized by its row, so no two get the same time.
func (s SendSlots) Reserve(ctx context.Context, interval time.Duration) (time.Time, error) {
	var at time.Time
	err := s.Store.db.QueryRow(ctx, `INSERT INTO rate_slots (target, next_at) VALUES ($1, clock_timestamp())
		ON CONFLICT (target) DO UPDATE SET next_at = greatest(rate_slots.next_at + $2::bigint * interval '1 microsecond', clock_timestamp())
		RETURNING next_at`, s.Target, interval.Microseconds()).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("reserve a send slot for %s: %w", s.Target, err)
	}
	return at, nil
}
