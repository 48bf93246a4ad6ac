package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

func TestOpenCreatesDatabaseAndMigratesOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewDatabaseURL(t)

	const starters = 4
	pools := make([]*pgxpool.Pool, starters)
	errs := make([]error, starters)
	var wg sync.WaitGroup
	for i := range starters {
		wg.Go(func() { pools[i], errs[i] = store.Open(ctx, url) })
	}
	wg.Wait()
	for i := range starters {
		require.NoError(t, errs[i])
		defer pools[i].Close()
	}

	var applied, distinct int
	require.NoError(t, pools[0].QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&applied, &distinct))
	require.Equal(t, distinct, applied, "each migration must be applied once")
	require.Positive(t, applied)

	// Opening again is a no-op.
	again, err := store.Open(ctx, url)
	require.NoError(t, err)
	again.Close()
}

func TestOpenReportsUnreachableServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Open(ctx, "postgres://postgres@127.0.0.1:1/signalbox?connect_timeout=2")
	require.ErrorContains(t, err, "check DATABASE_URL")
}

func TestAuditInsertIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	first := store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:l1", RunID: "r1", Seq: 1, At: at,
		Actor: "system", Action: "start", FromStatus: "Pending", ToStatus: "Running", Details: map[string]any{}}
	second := first
	second.Seq, second.At, second.Actor, second.Action = 2, at.Add(time.Second), "alice", "approve"
	second.Reason, second.Details = "consent on file", map[string]any{"choice": "create"}

	require.NoError(t, s.InsertAudit(ctx, first, second))
	require.NoError(t, s.InsertAudit(ctx, first, second), "a retried insert must be harmless")
	other := first
	other.RunID, other.At = "r2", at.Add(time.Minute)
	require.NoError(t, s.InsertAudit(ctx, other), "another run may reuse a sequence number")

	trail, err := s.AuditTrail(ctx, "lead-to-crm:l1")
	require.NoError(t, err)
	require.Len(t, trail, 3)
	require.Equal(t, []store.AuditEvent{first, second, other}, []store.AuditEvent{trail[0], trail[1], trail[2]})
}

func TestLinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	_, err := s.GetLink(ctx, "lead-to-crm", "l1", "crm")
	require.ErrorIs(t, err, store.ErrNotFound)

	l := store.Link{Integration: "lead-to-crm", SourceKey: "l1", TargetSystem: "crm", TargetID: "101",
		SyncedHash: "h1", WorkflowID: "lead-to-crm:l1", SyncedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	require.NoError(t, s.SaveLink(ctx, l))
	l.SyncedHash = "h2"
	require.NoError(t, s.SaveLink(ctx, l), "saving again replaces the hash")
	got, err := s.GetLink(ctx, "lead-to-crm", "l1", "crm")
	require.NoError(t, err)
	require.Equal(t, l, got)
}

func TestNotificationsAreClaimedOnceAndRememberDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	sent, err := s.ClaimNotification(ctx, "lead-to-crm:l1/synced", "sales", "lead-to-crm:l1")
	require.NoError(t, err)
	require.False(t, sent)
	sent, err = s.ClaimNotification(ctx, "lead-to-crm:l1/synced", "sales", "lead-to-crm:l1")
	require.NoError(t, err)
	require.False(t, sent, "claimed but not delivered: a retry must send it")

	require.NoError(t, s.MarkNotificationSent(ctx, "lead-to-crm:l1/synced"))
	sent, err = s.ClaimNotification(ctx, "lead-to-crm:l1/synced", "sales", "lead-to-crm:l1")
	require.NoError(t, err)
	require.True(t, sent)
}
