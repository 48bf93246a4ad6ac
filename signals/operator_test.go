package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

func TestLatestOnlyDropsSupersededRuns(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	old := api.VisibleItem{WorkflowID: "lead-to-crm:a", RunID: "1", StartTime: t0, Execution: "Terminated", Status: api.StatusBlocked}
	other := api.VisibleItem{WorkflowID: "lead-to-crm:b", RunID: "3", StartTime: t0, Execution: "Terminated", Status: api.StatusBlocked}
	runs := []api.VisibleItem{old, other}
	// a was re-synced later; b has no other run.
	got := latestOnly(runs, map[string]time.Time{"lead-to-crm:a": t0.Add(time.Minute), "lead-to-crm:b": t0})
	require.Equal(t, []api.VisibleItem{other}, got)
	require.Len(t, runs, 2, "the page is not changed in place")
}

func TestStrandedItemsAreMarked(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status    api.Status
		execution string
		label     string
	}{
		{api.StatusBlocked, "Running", "Blocked"},
		{api.StatusSynced, "Completed", "Synced"},
		{api.StatusCancelled, "Canceled", "Cancelled"},
		{api.StatusRunning, "ContinuedAsNew", "Running"},
		{api.StatusBlocked, "Terminated", "Blocked (terminated)"},
		{api.StatusFailed, "TimedOut", "Failed (timed out)"},
		{api.StatusRunning, "Failed", "Running (failed)"},
		{"", "Terminated", "(no status) (terminated)"},
	}
	for _, tc := range cases {
		it := api.VisibleItem{WorkflowID: "lead-to-crm:a", Status: tc.status, Execution: tc.execution, Exception: api.ConsentMissing}
		require.Equal(t, tc.label, statusLabel(it), "%s/%s", tc.status, tc.execution)
		r := describeRow(it, time.Now())
		require.Equal(t, tc.label != string(tc.status), r.Stranded, "%s/%s", tc.status, tc.execution)
		if r.Stranded {
			require.Empty(t, r.WaitingFor, "nobody can decide a stranded item")
		}
	}
}

func TestRunNoteExplainsWhatToDo(t *testing.T) {
	t.Parallel()
	s := api.ItemState{Integration: "lead-to-crm", SourceKey: "lead-1", Status: api.StatusBlocked}
	note := runNote(s, runInfo{execution: "Terminated"})
	require.Contains(t, note, "was terminated")
	require.Contains(t, note, "while the item was Blocked")
	require.Contains(t, note, "start it again from its source (web-form, key lead-1)")

	require.Contains(t, runNote(s, runInfo{execution: "TimedOut"}), "timed out")
	require.Contains(t, runNote(s, runInfo{execution: "Running", taskAttempt: 5}), "workflow task has failed 4 times")
	require.Empty(t, runNote(s, runInfo{execution: "Running", taskAttempt: 1}))
	require.Empty(t, runNote(s, runInfo{}), "unknown execution: nothing to say")
	s.Status = api.StatusSynced
	require.Empty(t, runNote(s, runInfo{execution: "Completed"}))
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	require.Equal(t, "decided 3200/10000, refused 2, failed 0, 400/s",
		progressLine(tally{decided: 3200, refused: 2}, 10000, 8*time.Second))
	require.Equal(t, "decided 0/5, refused 0, failed 0, 0/s", progressLine(tally{}, 5, 0))
}

func TestBulkReportListsEveryRefusal(t *testing.T) {
	t.Parallel()
	a, out, _ := newTestApp()
	var results []bulkResult
	for i := range 15 {
		results = append(results, bulkResult{id: "lead-to-crm:r" + string(rune('a'+i)), reason: "not waiting", attempted: true})
	}
	results = append(results,
		bulkResult{id: "lead-to-crm:ok", attempted: true},
		bulkResult{id: "lead-to-crm:boom", err: errors.New("deadline exceeded"), attempted: true},
		bulkResult{id: "lead-to-crm:later"})
	require.ErrorIs(t, a.reportBulk(results), errRefused)
	text := out.String()
	require.Contains(t, text, "done: 1\nrefused: 15 — not waiting\n")
	for _, r := range results[:15] {
		require.Contains(t, text, "  "+r.id+"\n")
	}
	require.Contains(t, text, "failed: lead-to-crm:boom: deadline exceeded")
	require.Contains(t, text, "not attempted (interrupted): 1")

	a, _, _ = newTestApp()
	require.NoError(t, a.reportBulk([]bulkResult{{id: "lead-to-crm:ok", attempted: true}}))
}

// TestOperatorsNeverCreateOrMigrate: the operator CLI connects to an existing,
// migrated database only, and says what is missing otherwise.
func TestOperatorsNeverCreateOrMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewDatabaseURL(t)
	a, _, _ := newTestApp()
	a.cfg.Database.URL = url
	_, err := a.store(ctx)
	require.ErrorContains(t, err, "does not exist: the workers create it")

	// An empty database stays empty.
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, err)
	_, err = a.store(ctx)
	require.ErrorIs(t, err, store.ErrNoSchema)
	var tables int
	require.NoError(t, pgxQueryRow(ctx, url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &tables))
	require.Zero(t, tables, "connecting created nothing")

	// Once the workers have migrated it, operators read it.
	migrated, err := store.Open(ctx, url)
	require.NoError(t, err)
	migrated.Close()
	s, err := a.store(ctx)
	require.NoError(t, err)
	trail, err := s.AuditTrail(ctx, "lead-to-crm:none")
	require.NoError(t, err)
	require.Empty(t, trail)
	a.close()
}

func pgxQueryRow(ctx context.Context, url, sql string, dest any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest)
}
