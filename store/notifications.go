package store

import (
	"context"
	"fmt"
	"time"
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
