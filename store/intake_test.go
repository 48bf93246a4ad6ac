package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

func TestASignedRequestIsClaimedOnceAcrossConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	sig := store.IntakeSignature{Digest: "d1", Source: "shop", SignedAt: at}

	// Eight replicas receive the same request at once: one takes it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	for range 8 {
		wg.Go(func() {
			ok, err := store.New(pool).ClaimIntakeSignature(ctx, sig)
			require.NoError(t, err)
			if ok {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, fresh, "exactly one claim of a signature succeeds")

	ok, err := s.ClaimIntakeSignature(ctx, sig)
	require.NoError(t, err)
	require.False(t, ok, "received before")

	require.NoError(t, s.ReleaseIntakeSignature(ctx, "d1"))
	ok, err = s.ClaimIntakeSignature(ctx, sig)
	require.NoError(t, err)
	require.True(t, ok, "a released request may come again")
}

func TestOldSignaturesAreForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for digest, signed := range map[string]time.Time{"old": at.Add(-10 * time.Minute), "edge": at, "new": at.Add(time.Minute)} {
		ok, err := s.ClaimIntakeSignature(ctx, store.IntakeSignature{Digest: digest, Source: "shop", SignedAt: signed})
		require.NoError(t, err)
		require.True(t, ok)
	}
	n, err := s.ForgetIntakeSignatures(ctx, at)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "only the one signed before the cut")
	for digest, seen := range map[string]bool{"old": false, "edge": true, "new": true} {
		ok, err := s.ClaimIntakeSignature(ctx, store.IntakeSignature{Digest: digest, Source: "shop", SignedAt: at})
		require.NoError(t, err)
		require.Equal(t, !seen, ok, digest)
	}
}

func TestIntakeItemsAreRecordedPerSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	require.NoError(t, s.RecordIntakeItem(ctx, "webform", "lead-to-crm:a"))
	require.NoError(t, s.RecordIntakeItem(ctx, "webform", "lead-to-crm:a"), "recording twice is harmless")
	for _, tc := range []struct {
		source, id string
		want       bool
	}{
		{"webform", "lead-to-crm:a", true},
		{"billing", "lead-to-crm:a", false},
		{"webform", "lead-to-crm:b", false},
	} {
		ok, err := s.IntakeItemOf(ctx, tc.source, tc.id)
		require.NoError(t, err)
		require.Equal(t, tc.want, ok, "%s %s", tc.source, tc.id)
	}
}
