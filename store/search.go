package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AuditByActor returns the audit events whose actor is actor — what they
// decided, were refused, erased — newest first, at most limit. It reads the
// index audit_events_actor_at (migration 0012).
func (s *Store) AuditByActor(ctx context.Context, actor string, limit int) ([]AuditEvent, error) {
	if limit < 1 {
		return nil, fmt.Errorf("audit events of %s: the limit must be at least 1, not %d", actor, limit)
	}
	rows, err := s.db.Query(ctx, `SELECT `+auditColumns+`
		FROM audit_events WHERE actor = $1 ORDER BY at DESC, id DESC LIMIT $2`, actor, limit)
	if err != nil {
		return nil, fmt.Errorf("read the audit events of %s: %w", actor, err)
	}
	events, err := pgx.CollectRows(rows, scanAuditEvent)
	if err != nil {
		return nil, fmt.Errorf("read the audit events of %s: %w", actor, err)
	}
	return events, nil
}
