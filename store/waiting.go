package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// WaitingItem is an item waiting for a decision, as the audit trail's
// projection waiting_items holds it.
type WaitingItem struct {
	WorkflowID, RunID string
	Integration, Kind string
	Status, Deciders  string
	Since             time.Time
	SLA               time.Duration
	Summary           string
}

// WaitingFilter picks waiting items: those one of Teams decides, narrowed to
// an integration, an exception kind, and those waiting since before Before
// (each if set); Offset and Limit page them, oldest first.
type WaitingFilter struct {
	Teams             []string
	Integration, Kind string
	Before            time.Time
	Offset, Limit     int
}

// WaitingItems returns a page of the waiting items f picks, oldest first,
// and how many it picks in all.
func (s *Store) WaitingItems(ctx context.Context, f WaitingFilter) ([]WaitingItem, int, error) {
	var before *time.Time
	if !f.Before.IsZero() {
		before = &f.Before
	}
	const where = `deciders = ANY($1) AND ($2 = '' OR integration = $2) AND ($3 = '' OR kind = $3)
		AND ($4::timestamptz IS NULL OR since < $4)`
	var total int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM waiting_items WHERE `+where,
		f.Teams, f.Integration, f.Kind, before).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count the waiting items: %w", err)
	}
	rows, err := s.db.Query(ctx, `SELECT workflow_id, run_id, integration, kind, status, deciders, since, sla_seconds, summary
		FROM waiting_items WHERE `+where+` ORDER BY since, workflow_id LIMIT $5 OFFSET $6`,
		f.Teams, f.Integration, f.Kind, before, f.Limit, f.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("read the waiting items: %w", err)
	}
	items, err := pgx.CollectRows(rows, scanWaiting)
	if err != nil {
		return nil, 0, fmt.Errorf("read the waiting items: %w", err)
	}
	return items, total, nil
}

// WaitingItem returns one item's row, if it waits.
func (s *Store) WaitingItem(ctx context.Context, workflowID string) (WaitingItem, bool, error) {
	rows, err := s.db.Query(ctx, `SELECT workflow_id, run_id, integration, kind, status, deciders, since, sla_seconds, summary
		FROM waiting_items WHERE workflow_id = $1`, workflowID)
	if err != nil {
		return WaitingItem{}, false, fmt.Errorf("read waiting item %s: %w", workflowID, err)
	}
	it, err := pgx.CollectExactlyOneRow(rows, scanWaiting)
	if err == pgx.ErrNoRows {
		return WaitingItem{}, false, nil
	}
	if err != nil {
		return WaitingItem{}, false, fmt.Errorf("read waiting item %s: %w", workflowID, err)
	}
	return it, true, nil
}

func scanWaiting(row pgx.CollectableRow) (WaitingItem, error) {
	var it WaitingItem
	var sla int64
	err := row.Scan(&it.WorkflowID, &it.RunID, &it.Integration, &it.Kind, &it.Status, &it.Deciders, &it.Since, &sla, &it.Summary)
	it.Since, it.SLA = it.Since.UTC(), time.Duration(sla)*time.Second
	return it, err
}

// WaitingSummary is what waits for a decision in one integration.
type WaitingSummary struct {
	Integration string
	Waiting     int
	// Oldest is the item that has waited longest; Overdue counts the items
	// waiting longer than their SLA at now.
	Oldest  WaitingItem
	Overdue int
}

// WaitingByIntegration sums up the waiting items of each integration.
func (s *Store) WaitingByIntegration(ctx context.Context, now time.Time) (map[string]WaitingSummary, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT ON (integration)
			workflow_id, run_id, integration, kind, status, deciders, since, sla_seconds, summary,
			count(*) OVER (PARTITION BY integration),
			count(*) FILTER (WHERE sla_seconds > 0 AND since + sla_seconds * interval '1 second' < $1) OVER (PARTITION BY integration)
		FROM waiting_items ORDER BY integration, since, workflow_id`, now)
	if err != nil {
		return nil, fmt.Errorf("sum up the waiting items: %w", err)
	}
	out := map[string]WaitingSummary{}
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var w WaitingSummary
		var sla int64
		err := row.Scan(&w.Oldest.WorkflowID, &w.Oldest.RunID, &w.Oldest.Integration, &w.Oldest.Kind, &w.Oldest.Status,
			&w.Oldest.Deciders, &w.Oldest.Since, &sla, &w.Oldest.Summary, &w.Waiting, &w.Overdue)
		w.Oldest.Since, w.Oldest.SLA, w.Integration = w.Oldest.Since.UTC(), time.Duration(sla)*time.Second, w.Oldest.Integration
		out[w.Integration] = w
		return struct{}{}, err
	})
	if err != nil {
		return nil, fmt.Errorf("sum up the waiting items: %w", err)
	}
	return out, nil
}

// FillWaitingDeciders names the deciding team of the items that waited
// before waiting_items recorded it (deciders ”): decide gets the item's
// integration, exception kind and the team it was last assigned to in its
// run (” if none), and answers as the workflow picks. It returns how many
// it filled.
func (s *Store) FillWaitingDeciders(ctx context.Context, decide func(integration, kind, assigned string) string) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT w.workflow_id, w.integration, w.kind,
			coalesce((SELECT a.details->>'team' FROM audit_events a
				WHERE a.workflow_id = w.workflow_id AND a.run_id = w.run_id AND a.action = 'assigned'
				ORDER BY a.id DESC LIMIT 1), '')
		FROM waiting_items w WHERE w.deciders = ''`)
	if err != nil {
		return 0, fmt.Errorf("read the waiting items without a deciding team: %w", err)
	}
	type missing struct{ id, integration, kind, assigned string }
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (missing, error) {
		var m missing
		err := row.Scan(&m.id, &m.integration, &m.kind, &m.assigned)
		return m, err
	})
	if err != nil {
		return 0, fmt.Errorf("read the waiting items without a deciding team: %w", err)
	}
	filled := 0
	for _, m := range list {
		team := decide(m.integration, m.kind, m.assigned)
		if team == "" {
			continue
		}
		tag, err := s.db.Exec(ctx, `UPDATE waiting_items SET deciders = $2 WHERE workflow_id = $1 AND deciders = ''`, m.id, team)
		if err != nil {
			return filled, fmt.Errorf("name the deciding team of %s: %w", m.id, err)
		}
		filled += int(tag.RowsAffected())
	}
	return filled, nil
}
