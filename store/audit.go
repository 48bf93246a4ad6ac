package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEvent is one row of the audit trail: a status change, a decision, or a
// refused decision, with who did it and why.
type AuditEvent struct {
	Integration string         `json:"integration"`
	WorkflowID  string         `json:"workflowId"`
	RunID       string         `json:"runId"`
	Seq         int            `json:"seq"`
	At          time.Time      `json:"at"`
	Actor       string         `json:"actor"`
	Action      string         `json:"action"`
	FromStatus  string         `json:"fromStatus,omitempty"`
	ToStatus    string         `json:"toStatus,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	Details     map[string]any `json:"details,omitempty"`
}

// InsertAudit writes events in one round trip. An event already stored under the
// same (workflow ID, run ID, seq) is left as it is, so retries are harmless.
//
// The statement that stores an event also keeps waiting_items, the waiting
// items' projection of the trail, and only when the event is new: a retry,
// or a late attempt of an activity already retried, changes nothing. An
// exception raised puts its item there, a reassignment changes its deciding
// team, any other status change takes it out. The batch is one implicit
// transaction: the trail and its projection never disagree.
func (s *Store) InsertAudit(ctx context.Context, events ...AuditEvent) error {
	batch := &pgx.Batch{}
	for _, e := range events {
		details, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("audit details of %s #%d: %w", e.WorkflowID, e.Seq, err)
		}
		if e.Details == nil {
			details = []byte("{}")
		}
		batch.Queue(insertAuditSQL,
			e.Integration, e.WorkflowID, e.RunID, e.Seq, e.At, e.Actor, e.Action, e.FromStatus, e.ToStatus, e.Reason, details)
	}
	if err := s.db.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("insert audit events: %w", err)
	}
	return nil
}

// insertAuditSQL stores one event and applies it to waiting_items. Each
// event touches its item's row at most once, as one statement's data-modifying
// parts must.
const insertAuditSQL = `WITH ev AS (
	INSERT INTO audit_events
		(integration, workflow_id, run_id, seq, at, actor, action, from_status, to_status, reason, details)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (workflow_id, run_id, seq) DO NOTHING
	RETURNING *
), raised AS (
	INSERT INTO waiting_items (workflow_id, run_id, integration, kind, status, deciders, since, sla_seconds, summary)
	SELECT workflow_id, run_id, integration, coalesce(details->>'kind', ''), to_status,
		coalesce(details->>'deciders', ''), at, coalesce((details->>'slaSeconds')::bigint, 0), reason
	FROM ev WHERE action = 'raised' AND to_status IN ('Blocked', 'Failed')
	ON CONFLICT (workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id, integration = EXCLUDED.integration,
		kind = EXCLUDED.kind, status = EXCLUDED.status, deciders = EXCLUDED.deciders, since = EXCLUDED.since,
		sla_seconds = EXCLUDED.sla_seconds, summary = EXCLUDED.summary
), reassigned AS (
	UPDATE waiting_items w SET deciders = ev.details->>'to' FROM ev
	WHERE ev.action = 'reassign' AND ev.details ? 'to' AND w.workflow_id = ev.workflow_id AND w.run_id = ev.run_id
)
DELETE FROM waiting_items w USING ev
WHERE w.workflow_id = ev.workflow_id AND ev.to_status <> '' AND ev.to_status <> ev.from_status
	AND NOT (ev.action = 'raised' AND ev.to_status IN ('Blocked', 'Failed'))`

// AuditTrail returns every event of a workflow ID, across its runs, oldest first.
func (s *Store) AuditTrail(ctx context.Context, workflowID string) ([]AuditEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT `+auditColumns+`
		FROM audit_events WHERE workflow_id = $1 ORDER BY at, id`, workflowID)
	if err != nil {
		return nil, fmt.Errorf("read audit trail of %s: %w", workflowID, err)
	}
	events, err := pgx.CollectRows(rows, scanAuditEvent)
	if err != nil {
		return nil, fmt.Errorf("read audit trail of %s: %w", workflowID, err)
	}
	return events, nil
}

// auditColumns are the columns scanAuditEvent reads, in its order.
const auditColumns = `integration, workflow_id, run_id, seq, at, actor, action, from_status, to_status, reason, details`

func scanAuditEvent(row pgx.CollectableRow) (AuditEvent, error) {
	var e AuditEvent
	err := row.Scan(&e.Integration, &e.WorkflowID, &e.RunID, &e.Seq, &e.At, &e.Actor, &e.Action,
		&e.FromStatus, &e.ToStatus, &e.Reason, &e.Details)
	e.At = e.At.UTC()
	return e, err
}
