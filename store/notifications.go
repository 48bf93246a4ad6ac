package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Claim is the outcome of claiming a notification.
type Claim int

// The outcomes of ClaimNotification.
const (
	// Claimed: this attempt may send it.
	Claimed Claim = iota
	// AlreadySent: an earlier attempt delivered it.
	AlreadySent
	// Busy: another attempt claimed it less than a lease ago and may be sending it.
	Busy
)

// ClaimNotification claims the notification key for lease, so that no other
// attempt sends it meanwhile. A claim older than lease (its holder died, or
// failed) may be taken over.
func (s *Store) ClaimNotification(ctx context.Context, key, team, workflowID string, lease time.Duration) (Claim, error) {
	rows, err := s.db.Query(ctx, `INSERT INTO notifications (key, team, workflow_id, claimed_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (key) DO UPDATE SET claimed_at = now()
			WHERE notifications.sent_at IS NULL AND notifications.claimed_at < now() - $4::interval
		RETURNING key`, key, team, workflowID, lease.String())
	if err != nil {
		return Busy, fmt.Errorf("claim notification %s: %w", key, err)
	}
	claimed := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return Busy, fmt.Errorf("claim notification %s: %w", key, err)
	}
	if claimed {
		return Claimed, nil
	}
	var sentAt *time.Time
	if err := s.db.QueryRow(ctx, `SELECT sent_at FROM notifications WHERE key = $1`, key).Scan(&sentAt); err != nil {
		return Busy, fmt.Errorf("claim notification %s: %w", key, err)
	}
	if sentAt != nil {
		return AlreadySent, nil
	}
	return Busy, nil
}

// ReleaseNotification gives up a claim after a failed send, so that a retry
// need not wait out the lease.
func (s *Store) ReleaseNotification(ctx context.Context, key string) error {
	if _, err := s.db.Exec(ctx, `UPDATE notifications SET claimed_at = '-infinity' WHERE key = $1 AND sent_at IS NULL`, key); err != nil {
		return fmt.Errorf("release notification %s: %w", key, err)
	}
	return nil
}

// MarkNotificationSent records that the notification key was delivered.
func (s *Store) MarkNotificationSent(ctx context.Context, key string) error {
	if _, err := s.db.Exec(ctx, `UPDATE notifications SET sent_at = now() WHERE key = $1 AND sent_at IS NULL`, key); err != nil {
		return fmt.Errorf("mark notification %s sent: %w", key, err)
	}
	return nil
}

// DigestSlot is the outcome of asking to post an alert of a team and kind.
type DigestSlot struct {
	// Taken: post now. Covered lists the other alerts deferred since the last
	// message, which this one reports; Oldest is when the longest of them began
	// to wait.
	Taken   bool
	Covered []string
	Oldest  time.Time
	// Until, when not taken, is when the next message of the team and kind may go.
	Until time.Time
	// previous is the slot's time before it was taken, for ReleaseDigestSlot.
	previous time.Time
}

// TakeDigestSlot decides whether the alert key (already claimed) of team and
// kind may be posted now: yes when no alert of the team and kind went out in
// the last interval. Otherwise the alert is deferred into the next message,
// its claim released, and Until says when to ask again.
func (s *Store) TakeDigestSlot(ctx context.Context, key, team, kind string, waitingSince time.Time, interval time.Duration) (DigestSlot, error) {
	var slot DigestSlot
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO notification_digests (team, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING`, team, kind); err != nil {
			return err
		}
		var last, now time.Time
		if err := tx.QueryRow(ctx, `SELECT last_posted_at, now() FROM notification_digests WHERE team = $1 AND kind = $2 FOR UPDATE`,
			team, kind).Scan(&last, &now); err != nil {
			return err
		}
		if now.Before(last.Add(interval)) {
			slot.Until = last.Add(interval).UTC()
			_, err := tx.Exec(ctx, `UPDATE notifications SET digest_kind = $2, waiting_since = $3, claimed_at = '-infinity'
				WHERE key = $1 AND sent_at IS NULL`, key, kind, waitingSince)
			return err
		}
		slot.Taken, slot.previous = true, last
		if _, err := tx.Exec(ctx, `UPDATE notification_digests SET last_posted_at = $3 WHERE team = $1 AND kind = $2`, team, kind, now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT key, waiting_since FROM notifications
			WHERE team = $1 AND digest_kind = $2 AND sent_at IS NULL AND key <> $3 ORDER BY waiting_since`, team, kind, key)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var since time.Time
			if err := rows.Scan(&k, &since); err != nil {
				return err
			}
			if len(slot.Covered) == 0 || since.Before(slot.Oldest) {
				slot.Oldest = since.UTC()
			}
			slot.Covered = append(slot.Covered, k)
		}
		return rows.Err()
	})
	if err != nil {
		return DigestSlot{}, fmt.Errorf("aggregate alert %s of %s/%s: %w", key, team, kind, err)
	}
	return slot, nil
}

// ReleaseDigestSlot gives a taken slot back after a failed post, so that the
// next alert of the team and kind is not held back by a message never sent.
func (s *Store) ReleaseDigestSlot(ctx context.Context, team, kind string, slot DigestSlot) error {
	if _, err := s.db.Exec(ctx, `UPDATE notification_digests SET last_posted_at = $3 WHERE team = $1 AND kind = $2`,
		team, kind, slot.previous); err != nil {
		return fmt.Errorf("release the alert slot of %s/%s: %w", team, kind, err)
	}
	return nil
}

// MarkCovered records that the deferred alerts keys were reported by a message.
func (s *Store) MarkCovered(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := s.db.Exec(ctx, `UPDATE notifications SET sent_at = now() WHERE key = ANY($1) AND sent_at IS NULL`, keys); err != nil {
		return fmt.Errorf("mark %d deferred alerts covered: %w", len(keys), err)
	}
	return nil
}
