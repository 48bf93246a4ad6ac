package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Link records which target record a source record became.
type Link struct {
	Integration  string    `json:"integration"`
	SourceKey    string    `json:"sourceKey"`
	TargetSystem string    `json:"targetSystem"`
	TargetID     string    `json:"targetId"`
	SyncedHash   string    `json:"syncedHash"`
	WorkflowID   string    `json:"workflowId"`
	SyncedAt     time.Time `json:"syncedAt"`
}

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// SaveLink inserts or replaces the link of (integration, source key, target system).
func (s *Store) SaveLink(ctx context.Context, l Link) error {
	_, err := s.db.Exec(ctx, `INSERT INTO external_links
			(integration, source_key, target_system, target_id, synced_hash, workflow_id, synced_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (integration, source_key, target_system) DO UPDATE SET
			target_id = excluded.target_id, synced_hash = excluded.synced_hash,
			workflow_id = excluded.workflow_id, synced_at = excluded.synced_at`,
		l.Integration, l.SourceKey, l.TargetSystem, l.TargetID, l.SyncedHash, l.WorkflowID, l.SyncedAt)
	if err != nil {
		return fmt.Errorf("save link %s/%s → %s: %w", l.Integration, l.SourceKey, l.TargetSystem, err)
	}
	return nil
}

// GetLink returns the link of (integration, source key, target system), or ErrNotFound.
func (s *Store) GetLink(ctx context.Context, integration, sourceKey, targetSystem string) (Link, error) {
	rows, err := s.db.Query(ctx, `SELECT integration, source_key, target_system, target_id, synced_hash, workflow_id, synced_at
		FROM external_links WHERE integration = $1 AND source_key = $2 AND target_system = $3`,
		integration, sourceKey, targetSystem)
	if err != nil {
		return Link{}, fmt.Errorf("get link %s/%s: %w", integration, sourceKey, err)
	}
	l, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Link])
	if errors.Is(err, pgx.ErrNoRows) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, fmt.Errorf("get link %s/%s: %w", integration, sourceKey, err)
	}
	l.SyncedAt = l.SyncedAt.UTC()
	return l, nil
}
