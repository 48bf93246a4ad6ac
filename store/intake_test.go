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
	owner, added, err := s.ClaimIntakeItem(ctx, "webform", "lead-to-crm:a")
	require.NoError(t, err)
	require.Equal(t, "webform", owner)
	require.True(t, added)
	owner, added, err = s.ClaimIntakeItem(ctx, "webform", "lead-to-crm:a")
	require.NoError(t, err)
	require.Equal(t, "webform", owner, "claiming its own key again is harmless")
	require.False(t, added)
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

func TestAnIntakeItemKeyBelongsToTheFirstSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	const id = "lead-to-crm:w9"

	owner, err := s.IntakeItemOwner(ctx, id)
	require.NoError(t, err)
	require.Empty(t, owner, "nobody owns a new key")

	// Eight sources claim the same new key at once, on replicas: one owns it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	owners := map[string]bool{}
	added := 0
	for i := range 8 {
		wg.Go(func() {
			source := "source" + string(rune('a'+i))
			got, ok, err := store.New(pool).ClaimIntakeItem(ctx, source, id)
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			owners[got] = true
			if ok {
				added++
				require.Equal(t, source, got)
			}
		})
	}
	wg.Wait()
	require.Len(t, owners, 1, "every claimant is told the same owner")
	require.Equal(t, 1, added, "only the owner is recorded")
	var first string
	for o := range owners {
		first = o
	}
	owner, err = s.IntakeItemOwner(ctx, id)
	require.NoError(t, err)
	require.Equal(t, first, owner)
	for _, source := range []string{"sourcea", "sourceb", "sourcec", "sourced", "sourcee", "sourcef", "sourceg", "sourceh"} {
		ok, err := s.IntakeItemOf(ctx, source, id)
		require.NoError(t, err)
		require.Equal(t, source == first, ok, "a refused claim records nothing for %s", source)
	}

	// A claim whose start was not made is released: the key is free again.
	_, ok, err := s.ClaimIntakeItem(ctx, "webform", "lead-to-crm:free")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.ReleaseIntakeItem(ctx, "webform", "lead-to-crm:free"))
	owner, ok, err = s.ClaimIntakeItem(ctx, "shop", "lead-to-crm:free")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "shop", owner)

	// Rows from before owners were enforced may name two sources: the first
	// recorded owns the key, the other keeps reading it.
	_, err = pool.Exec(ctx, `INSERT INTO intake_items (workflow_id, source, accepted_at) VALUES
		('lead-to-crm:old', 'shop2', now()), ('lead-to-crm:old', 'webform', now() - interval '1 day')`)
	require.NoError(t, err)
	owner, ok, err = s.ClaimIntakeItem(ctx, "shop2", "lead-to-crm:old")
	require.NoError(t, err)
	require.Equal(t, "webform", owner)
	require.False(t, ok)
	read, err := s.IntakeItemOf(ctx, "shop2", "lead-to-crm:old")
	require.NoError(t, err)
	require.True(t, read)
}
