package workflows

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
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
		// A history recorded with its workflow ID beside it (name.id) replays
		// under that ID: a workflow may check what it is handed against its
		// key (invoice-payments does). Older ones replay as "ReplayId".
		id, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".id")
		if errors.Is(err, fs.ErrNotExist) {
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(logger, f), "replaying %s", filepath.Base(f))
			continue
		}
		require.NoError(t, err)
		r, err := os.Open(f)
		require.NoError(t, err)
		h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
		r.Close()
		require.NoError(t, err)
		opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: strings.TrimSpace(string(id))}}
		require.NoError(t, replayer.ReplayWorkflowHistoryWithOptions(logger, h, opts), "replaying %s", filepath.Base(f))
	}
}
