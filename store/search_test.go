package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

func TestAuditByActorListsTheNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	event := func(id string, seq int, minutes int, actor, action string) store.AuditEvent {
		return store.AuditEvent{Integration: "lead-to-crm", WorkflowID: id, RunID: "r1", Seq: seq, At: at.Add(time.Duration(minutes) * time.Minute),
			Actor: actor, Action: action, FromStatus: "Blocked", ToStatus: "Running", Reason: actor + " " + action, Details: map[string]any{}}
	}
	first := event("lead-to-crm:l1", 2, 0, "alice", "approve")
	other := event("lead-to-crm:l1", 3, 1, "bob", "reject")
	second := event("lead-to-crm:l2", 2, 5, "alice", "retry")
	third := event("lead-to-crm:l3", 2, 9, "alice", "cancel")
	system := event("lead-to-crm:l3", 1, 8, "system", "start")
	require.NoError(t, s.InsertAudit(ctx, first, other, second, third, system))

	got, err := s.AuditByActor(ctx, "alice", 100)
	require.NoError(t, err)
	require.Equal(t, []store.AuditEvent{third, second, first}, got, "alice's events only, newest first")

	got, err = s.AuditByActor(ctx, "alice", 2)
	require.NoError(t, err)
	require.Equal(t, []store.AuditEvent{third, second}, got, "at most the limit: the newest")

	got, err = s.AuditByActor(ctx, "Alice", 10)
	require.NoError(t, err)
	require.Empty(t, got, "an actor is matched exactly, as the trail spells it")

	got, err = s.AuditByActor(ctx, "alice' OR '1'='1", 10)
	require.NoError(t, err)
	require.Empty(t, got, "the name is a parameter, never SQL")

	_, err = s.AuditByActor(ctx, "alice", 0)
	require.ErrorContains(t, err, "the limit must be at least 1")

	var index string
	require.NoError(t, pool.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = 'audit_events_actor_at'`).Scan(&index))
	require.Contains(t, index, "(actor, at DESC)", "migration 0012")
}
