package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

func TestLatestReconcileCountsLeavesTheDifferencesOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	_, err := s.LatestReconcileCounts(ctx, "lead-to-crm")
	require.ErrorIs(t, err, store.ErrNotFound, "no run yet")

	str := func(v string) *string { return &v }
	for _, differences := range [][]store.Difference{
		{{SourceKey: "l1", TargetID: "1", Class: "drifted", Field: "firstName", Source: str("Ada"), Target: str("Adah"), Action: store.DiffRepair}},
		{
			{SourceKey: "l1", TargetID: "1", Class: "drifted", Field: "firstName", Source: str("Ada"), Target: str("Adah"), Action: store.DiffRepair},
			{SourceKey: "l1", TargetID: "1", Class: "drifted", Field: "lastName", Source: str("L"), Target: str("M"), Action: store.DiffRepair},
			{SourceKey: "l2", TargetID: "2", Class: "drifted", Field: "firstName", Source: str("Bob"), Target: str("Rob"), Action: store.DiffRepair},
			{SourceKey: "l3", Class: "missing-in-target", Action: store.DiffAsk},
		},
	} {
		run, _, err := s.BeginReconcile(ctx, "lead-to-crm", "reconcile:lead-to-crm", "cli:alice")
		require.NoError(t, err)
		_, err = s.RecordReconcilePage(ctx, store.ReconcilePage{RunID: run.ID, Phase: store.PhaseLinked, NextPhase: store.PhaseDone,
			Compared: 10, InSync: 7, Differences: differences})
		require.NoError(t, err)
		_, err = s.FinishReconcile(ctx, run.ID)
		require.NoError(t, err)
	}

	rep, err := s.LatestReconcileCounts(ctx, "lead-to-crm")
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"in-sync": 7, "drifted": 2, "missing-in-target": 1}, rep.Counts, "the latest run's, a record counted once per class")
	require.Equal(t, int64(10), rep.Run.Compared)
	require.NotNil(t, rep.Run.FinishedAt)
	require.Empty(t, rep.Differences)
	full, err := s.GetReconcileReport(ctx, rep.Run.ID)
	require.NoError(t, err)
	require.Equal(t, rep.Counts, full.Counts, "the report counts alike")
	require.Len(t, full.Differences, 4)
}
