package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/stack"
)

// TestTwoWorkersShareTheTargetRate: two worker processes serve the CRM's task
// queue, and together keep to its rate, judged by what they sent: every
// request reserved its send time from the target's row in PostgreSQL, at
// least 1/rate after the one before it, whichever process sent it.
func TestTwoWorkersShareTheTargetRate(t *testing.T) {
	t.Parallel()
	const leads, rate, concurrency = 100, 10, 8
	s := startStack(t, `{"crm.*": {"latency": "20ms"}}`,
		fmt.Sprintf("SIGNALBOX_CRM_RATE=%d", rate), fmt.Sprintf("SIGNALBOX_CRM_CONCURRENCY=%d", concurrency))
	startWorker(t, s, "worker 2")

	keys := s.postLeads(t, uniqueKey(t, "rate"), leads)
	s.requireLeadsSynced(t, keys, 3*time.Minute)

	reqs := s.sandboxRequests(t, "crm.*")
	require.GreaterOrEqual(t, len(reqs), 2*leads, "a search and a create per lead")
	require.GreaterOrEqual(t, len(s.crmWorkers(t, keys)), 2, "both workers ran the leads' activities")
	sent := sendTimes(t, reqs)
	closest := time.Hour
	for i := 1; i < len(sent); i++ {
		closest = min(closest, sent[i].Sub(sent[i-1]))
	}
	perSecond := maxInWindow(sent, time.Second)
	t.Logf("crm: %d requests from 2 workers in %s; at most %d in any second, the closest two %s apart (rate %d/s)",
		len(reqs), sent[len(sent)-1].Sub(sent[0]).Round(time.Millisecond), perSecond, closest, rate)
	// A send leaves a little after its reserved time (a timer's lateness):
	// two from different processes may come closer than 1/rate by that much.
	require.GreaterOrEqual(t, closest, 8*time.Second/(10*rate), "no two requests much closer than 1/rate, whichever worker sent them")
	require.LessOrEqual(t, perSecond, rate+1, "the two workers together keep to the rate")
}

// crmWorkers are the identities of the workers that ran the activities
// of these leads.
func (s *env) crmWorkers(t *testing.T, keys []string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, key := range keys {
		iter := s.Client.GetWorkflowHistory(context.Background(), "lead-to-crm:"+key, "", false, 0)
		for iter.HasNext() {
			e, err := iter.Next()
			require.NoError(t, err)
			if started := e.GetActivityTaskStartedEventAttributes(); started != nil {
				ids[started.GetIdentity()] = true
			}
		}
	}
	return ids
}

func startWorker(t *testing.T, s *env, name string) *stack.Process {
	t.Helper()
	addr, err := stack.FreeAddr()
	require.NoError(t, err)
	p := &stack.Process{
		Name: name, Path: filepath.Join(binDir, "workers"),
		Env:     append(append([]string(nil), s.Env...), "SIGNALBOX_WORKER_HEALTH_ADDR="+addr),
		LogPath: filepath.Join(t.TempDir(), "worker.log"), ReadyURL: "http://" + addr + "/healthz",
	}
	require.NoError(t, p.Start(context.Background()))
	t.Cleanup(func() { _ = p.Stop(15 * time.Second) })
	return p
}
