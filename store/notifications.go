package store

import (
	"context"
	"fmt"
	"time"
)

// ClaimNotification records the intent to send the notification key and reports
// whether it was already sent. Claiming twice is harmless.
func (s *Store) ClaimNotification(ctx context.Context, key, team, workflowID string) (alreadySent bool, err error) {
	var sentAt *time.Time
	err = s.db.QueryRow(ctx, `WITH ins AS (
			INSERT INTO notifications (key, team, workflow_id) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO NOTHING RETURNING sent_at)
		SELECT sent_at FROM ins UNION ALL SELECT sent_at FROM notifications WHERE key = $1 LIMIT 1`,
		key, team, workflowID).Scan(&sentAt)
	if err != nil {
		return false, fmt.Errorf("claim notification %s: %w", key, err)
	}
	return sentAt != nil, nil
}

// MarkNotificationSent records that the notification key was delivered.
func (s *Store) MarkNotificationSent(ctx context.Context, key string) error {
	if _, err := s.db.Exec(ctx, `UPDATE notifications SET sent_at = now() WHERE key = $1 AND sent_at IS NULL`, key); err != nil {
		return fmt.Errorf("mark notification %s sent: %w", key, err)
	}
	return nil
}
