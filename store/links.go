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
	// Baseline holds, by field, the values last synced or settled by a
	// person's decision; nil for links written before baselines existed.
	Baseline Baseline `json:"baseline,omitempty"`
	// ManualRef is where a person resolved the record by hand, if they did.
	ManualRef string `json:"manualRef,omitempty"`
}

// Baseline is what both sides held, field by field, when a record was last
// synced or a person settled a conflict: an edit is judged three-way against it.
type Baseline map[string]Settled

// Settled is one field's baseline: the target's value and the source's value
// it was settled against (equal after a sync; a decision to keep the target's
// value leaves them different).
type Settled struct {
	Target string `json:"target"`
	Source string `json:"source"`
}

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// SaveLink inserts or replaces the link of (integration, source key, target
// system). A manual reference recorded earlier stays.
func (s *Store) SaveLink(ctx context.Context, l Link) error {
	return s.SaveLinks(ctx, l)
}

const saveLink = `INSERT INTO external_links
		(integration, source_key, target_system, target_id, synced_hash, workflow_id, synced_at, baseline)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	ON CONFLICT (integration, source_key, target_system) DO UPDATE SET
		target_id = excluded.target_id, synced_hash = excluded.synced_hash,
		workflow_id = excluded.workflow_id, synced_at = excluded.synced_at, baseline = excluded.baseline`

// SaveLinks saves links as SaveLink does, in one round trip.
func (s *Store) SaveLinks(ctx context.Context, links ...Link) error {
	batch := &pgx.Batch{}
	for _, l := range links {
		batch.Queue(saveLink, l.Integration, l.SourceKey, l.TargetSystem, l.TargetID, l.SyncedHash, l.WorkflowID, l.SyncedAt, l.Baseline)
	}
	if err := s.db.SendBatch(ctx, batch).Close(); err != nil {
		if len(links) == 1 {
			l := links[0]
			return fmt.Errorf("save link %s/%s → %s: %w", l.Integration, l.SourceKey, l.TargetSystem, err)
		}
		return fmt.Errorf("save %d links: %w", len(links), err)
	}
	return nil
}

// SaveManualRef records where a person resolved a source record by hand,
// creating the link (without a target record) if there is none.
func (s *Store) SaveManualRef(ctx context.Context, integration, sourceKey, targetSystem, workflowID, ref string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO external_links
			(integration, source_key, target_system, target_id, workflow_id, synced_at, manual_ref)
		VALUES ($1, $2, $3, '', $4, now(), $5)
		ON CONFLICT (integration, source_key, target_system) DO UPDATE SET manual_ref = excluded.manual_ref`,
		integration, sourceKey, targetSystem, workflowID, ref)
	if err != nil {
		return fmt.Errorf("record the manual resolution of %s/%s: %w", integration, sourceKey, err)
	}
	return nil
}

// GetLink returns the link of (integration, source key, target system), or ErrNotFound.
func (s *Store) GetLink(ctx context.Context, integration, sourceKey, targetSystem string) (Link, error) {
	l, err := scanLink(s.db.QueryRow(ctx, `SELECT `+linkColumns+`
		FROM external_links WHERE integration = $1 AND source_key = $2 AND target_system = $3`,
		integration, sourceKey, targetSystem))
	if errors.Is(err, pgx.ErrNoRows) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, fmt.Errorf("get link %s/%s: %w", integration, sourceKey, err)
	}
	return l, nil
}

const linkColumns = `integration, source_key, target_system, target_id, synced_hash, workflow_id, synced_at, baseline, manual_ref`

func scanLink(row pgx.Row) (Link, error) {
	var l Link
	err := row.Scan(&l.Integration, &l.SourceKey, &l.TargetSystem, &l.TargetID, &l.SyncedHash, &l.WorkflowID, &l.SyncedAt, &l.Baseline, &l.ManualRef)
	l.SyncedAt = l.SyncedAt.UTC()
	return l, err
}

// LinksOf returns the links of the source keys given (those that have one),
// by source key.
func (s *Store) LinksOf(ctx context.Context, integration, targetSystem string, sourceKeys []string) (map[string]Link, error) {
	rows, err := s.db.Query(ctx, `SELECT `+linkColumns+`
		FROM external_links WHERE integration = $1 AND target_system = $2 AND source_key = ANY($3)`,
		integration, targetSystem, sourceKeys)
	if err != nil {
		return nil, fmt.Errorf("get links of %s: %w", integration, err)
	}
	defer rows.Close()
	out := map[string]Link{}
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("get links of %s: %w", integration, err)
		}
		out[l.SourceKey] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get links of %s: %w", integration, err)
	}
	return out, nil
}

// LinksToTargets returns the links of an integration that name the target
// records given (those that are linked), by target ID.
func (s *Store) LinksToTargets(ctx context.Context, integration, targetSystem string, targetIDs []string) (map[string]Link, error) {
	rows, err := s.db.Query(ctx, `SELECT `+linkColumns+`
		FROM external_links WHERE integration = $1 AND target_system = $2 AND target_id = ANY($3)`,
		integration, targetSystem, targetIDs)
	if err != nil {
		return nil, fmt.Errorf("get links to %s records: %w", integration, err)
	}
	defer rows.Close()
	out := map[string]Link{}
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("get links to %s records: %w", integration, err)
		}
		out[l.TargetID] = l
	}
	return out, rows.Err()
}

// DeleteLink forgets which target record a source record became: a person
// decided the target record is gone for good.
func (s *Store) DeleteLink(ctx context.Context, integration, sourceKey, targetSystem string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM external_links WHERE integration = $1 AND source_key = $2 AND target_system = $3`,
		integration, sourceKey, targetSystem)
	if err != nil {
		return fmt.Errorf("forget the link of %s/%s: %w", integration, sourceKey, err)
	}
	return nil
}
