package store_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

var waitT0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// raisedEvent is the audit row of an exception raised on id's run, as the
// workflow writes it.
func raisedEvent(id, run string, seq int, at time.Time, kind, deciders string) store.AuditEvent {
	return store.AuditEvent{Integration: "lead-to-crm", WorkflowID: id, RunID: run, Seq: seq, At: at, Actor: "system",
		Action: "raised", FromStatus: "Running", ToStatus: "Blocked", Reason: "no consent from " + id,
		Details: map[string]any{"kind": kind, "deciders": deciders, "slaSeconds": 3600}}
}

func decidedEvent(id, run string, seq int, at time.Time) store.AuditEvent {
	return store.AuditEvent{Integration: "lead-to-crm", WorkflowID: id, RunID: run, Seq: seq, At: at, Actor: "alice",
		Action: "approve", FromStatus: "Blocked", ToStatus: "Running", Reason: "consent on paper"}
}

func waitingIDs(t *testing.T, s *store.Store, f store.WaitingFilter) ([]string, int) {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = 100
	}
	items, total, err := s.WaitingItems(context.Background(), f)
	require.NoError(t, err)
	var ids []string
	for _, it := range items {
		ids = append(ids, it.WorkflowID)
	}
	return ids, total
}

func TestTheAuditTrailKeepsTheWaitingItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	sales := store.WaitingFilter{Teams: []string{"sales"}}

	require.NoError(t, s.InsertAudit(ctx, raisedEvent("lead-to-crm:b", "r1", 3, waitT0.Add(time.Minute), "ConsentMissing", "sales")))
	require.NoError(t, s.InsertAudit(ctx, raisedEvent("lead-to-crm:a", "r1", 3, waitT0, "ConsentMissing", "sales")))
	it, ok, err := s.WaitingItem(ctx, "lead-to-crm:a")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, store.WaitingItem{WorkflowID: "lead-to-crm:a", RunID: "r1", Integration: "lead-to-crm", Kind: "ConsentMissing",
		Status: "Blocked", Deciders: "sales", Since: waitT0, SLA: time.Hour, Summary: "no consent from lead-to-crm:a"}, it)
	ids, total := waitingIDs(t, s, sales)
	require.Equal(t, []string{"lead-to-crm:a", "lead-to-crm:b"}, ids, "oldest first")
	require.Equal(t, 2, total)

	// Events that change no status keep the item waiting; a reassignment
	// hands it to another team.
	require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:a", RunID: "r1", Seq: 4,
		At: waitT0.Add(2 * time.Minute), Actor: "bob", Action: "refused", FromStatus: "Blocked", ToStatus: "Blocked", Reason: "not an operator"}))
	require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:a", RunID: "r1", Seq: 5,
		At: waitT0.Add(3 * time.Minute), Actor: "alice", Action: "reassign", FromStatus: "Blocked", ToStatus: "Blocked",
		Details: map[string]any{"exception": "ConsentMissing", "from": "sales", "to": "sales-dach"}}))
	ids, _ = waitingIDs(t, s, sales)
	require.Equal(t, []string{"lead-to-crm:b"}, ids)
	ids, _ = waitingIDs(t, s, store.WaitingFilter{Teams: []string{"sales-dach"}})
	require.Equal(t, []string{"lead-to-crm:a"}, ids, "the new team's inbox")

	// A decision takes it out; the same event stored again (a retry, or a
	// late attempt of an activity already retried) puts nothing back.
	require.NoError(t, s.InsertAudit(ctx, decidedEvent("lead-to-crm:a", "r1", 6, waitT0.Add(4*time.Minute))))
	_, ok, err = s.WaitingItem(ctx, "lead-to-crm:a")
	require.NoError(t, err)
	require.False(t, ok, "decided: not waiting")
	require.NoError(t, s.InsertAudit(ctx, raisedEvent("lead-to-crm:a", "r1", 3, waitT0, "ConsentMissing", "sales")))
	_, ok, err = s.WaitingItem(ctx, "lead-to-crm:a")
	require.NoError(t, err)
	require.False(t, ok, "an event stored again changes nothing")

	// A new exception on the item waits again, from when it was raised.
	require.NoError(t, s.InsertAudit(ctx, raisedEvent("lead-to-crm:a", "r1", 7, waitT0.Add(5*time.Minute), "DuplicateSuspected", "sales")))
	ids, _ = waitingIDs(t, s, sales)
	require.Equal(t, []string{"lead-to-crm:b", "lead-to-crm:a"}, ids)

	// A new run of the item (started again from its source) ends the old
	// run's wait.
	require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:b", RunID: "r2", Seq: 1,
		At: waitT0.Add(6 * time.Minute), Actor: "system", Action: "start", FromStatus: "Pending", ToStatus: "Running"}))
	ids, _ = waitingIDs(t, s, sales)
	require.Equal(t, []string{"lead-to-crm:a"}, ids)
}

func TestWaitingItemsFilterAndPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	var events []store.AuditEvent
	for i := range 30 {
		kind, team := "ConsentMissing", "sales"
		if i%3 == 0 {
			kind = "DuplicateSuspected"
		}
		if i%5 == 0 {
			team = "finance"
		}
		events = append(events, raisedEvent(fmt.Sprintf("lead-to-crm:%02d", i), "r", 1, waitT0.Add(time.Duration(i)*time.Minute), kind, team))
	}
	require.NoError(t, s.InsertAudit(ctx, events...))

	ids, total := waitingIDs(t, s, store.WaitingFilter{Teams: []string{"sales"}, Offset: 5, Limit: 3})
	require.Equal(t, 24, total, "30 less finance's 6")
	require.Equal(t, []string{"lead-to-crm:07", "lead-to-crm:08", "lead-to-crm:09"}, ids, "skips 01 02 03 04 06")
	ids, total = waitingIDs(t, s, store.WaitingFilter{Teams: []string{"sales", "finance"}, Kind: "DuplicateSuspected", Before: waitT0.Add(10 * time.Minute)})
	require.Equal(t, []string{"lead-to-crm:00", "lead-to-crm:03", "lead-to-crm:06", "lead-to-crm:09"}, ids)
	require.Equal(t, 4, total)
	ids, total = waitingIDs(t, s, store.WaitingFilter{Teams: []string{"sales"}, Integration: "invoice-to-billing"})
	require.Empty(t, ids)
	require.Zero(t, total)

	sums, err := s.WaitingByIntegration(ctx, waitT0.Add(90*time.Minute))
	require.NoError(t, err)
	require.Equal(t, 30, sums["lead-to-crm"].Waiting)
	require.Equal(t, "lead-to-crm:00", sums["lead-to-crm"].Oldest.WorkflowID)
	require.Equal(t, 30, sums["lead-to-crm"].Overdue, "all waited past their hour at 10:30")
	sums, err = s.WaitingByIntegration(ctx, waitT0.Add(70*time.Minute+30*time.Second))
	require.NoError(t, err)
	require.Equal(t, 11, sums["lead-to-crm"].Overdue, "00 to 10 waited more than an hour at 10:10:30")
}

// The migration that made waiting_items found the items already waiting in
// the audit trail; the workers then name the deciding team where the trail
// did not.
func TestItemsWaitingBeforeTheProjectionAreFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	insert := func(e store.AuditEvent) {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		_, err := pool.Exec(ctx, `INSERT INTO audit_events (integration, workflow_id, run_id, seq, at, actor, action, from_status, to_status, reason, details)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			e.Integration, e.WorkflowID, e.RunID, e.Seq, e.At, e.Actor, e.Action, e.FromStatus, e.ToStatus, e.Reason, e.Details)
		require.NoError(t, err)
	}
	old := func(e store.AuditEvent) store.AuditEvent { // raised before the trail named the team
		e.Details = map[string]any{"kind": e.Details["kind"]}
		return e
	}
	insert(old(raisedEvent("lead-to-crm:waits", "r1", 2, waitT0, "ConsentMissing", "")))
	insert(old(raisedEvent("lead-to-crm:decided", "r1", 2, waitT0, "ConsentMissing", "")))
	insert(decidedEvent("lead-to-crm:decided", "r1", 3, waitT0.Add(time.Minute)))
	insert(old(raisedEvent("lead-to-crm:moved", "r1", 2, waitT0, "ConsentMissing", "")))
	insert(store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:moved", RunID: "r1", Seq: 3, At: waitT0, Actor: "alice",
		Action: "reassign", FromStatus: "Blocked", ToStatus: "Blocked", Details: map[string]any{"to": "sales-dach"}})
	insert(store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:routed", RunID: "r1", Seq: 2, At: waitT0, Actor: "system",
		Action: "assigned", FromStatus: "Running", ToStatus: "Running", Details: map[string]any{"team": "sales-nordics"}})
	insert(old(raisedEvent("lead-to-crm:routed", "r1", 3, waitT0.Add(time.Second), "ConsentMissing", "")))
	insert(raisedEvent("lead-to-crm:new", "r1", 2, waitT0, "ConsentMissing", "sales"))

	migration, err := os.ReadFile("migrations/0011_waiting_items.sql")
	require.NoError(t, err)
	_, backfill, ok := strings.Cut(string(migration), "-- The items already waiting")
	require.True(t, ok)
	_, err = pool.Exec(ctx, "-- "+backfill)
	require.NoError(t, err)

	var teams []string
	filled, err := s.FillWaitingDeciders(ctx, func(integration, kind, assigned string) string {
		teams = append(teams, integration+"/"+kind+"/"+assigned)
		if assigned != "" {
			return assigned
		}
		return "sales"
	})
	require.NoError(t, err)
	require.Equal(t, 2, filled)
	require.ElementsMatch(t, []string{"lead-to-crm/ConsentMissing/", "lead-to-crm/ConsentMissing/sales-nordics"}, teams,
		"only the items without a team, each with its last assignment")
	for id, team := range map[string]string{"lead-to-crm:waits": "sales", "lead-to-crm:moved": "sales-dach",
		"lead-to-crm:routed": "sales-nordics", "lead-to-crm:new": "sales"} {
		it, ok, err := s.WaitingItem(ctx, id)
		require.NoError(t, err)
		require.True(t, ok, id)
		require.Equal(t, team, it.Deciders, id)
		require.Equal(t, "no consent from "+id, it.Summary)
	}
	_, ok, err = s.WaitingItem(ctx, "lead-to-crm:decided")
	require.NoError(t, err)
	require.False(t, ok, "decided before the migration")
}
