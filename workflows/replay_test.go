package workflows

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// TestReplayRecordedHistories replays the histories that `make
// record-histories` recorded from real runs of every integration's paths. A
// change that would make running items fail on replay (non-determinism)
// fails here; guard it with workflow.GetVersion instead.
func TestReplayRecordedHistories(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories: run make record-histories")
	replayer := worker.NewWorkflowReplayer()
	integrations, err := Integrations()
	require.NoError(t, err)
	for _, wf := range spine.Workflows(integrations) {
		replayer.RegisterWorkflowWithOptions(wf.Fn, workflow.RegisterOptions{Name: wf.Name})
	}
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	for _, f := range files {
		require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(logger, f), "replaying %s", filepath.Base(f))
	}
}
