package tests

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/stack"
)

// TestTwoWorkersShareTheTargetRate: two worker processes serve the CRM's task
// queue. What holds across them, judged by what they sent:
//   - each process spaces its own requests at the rate (rest.HTTPClient), so
//     no second holds more than twice the rate, whatever the server does;
//   - the server dispatches the queue's activities at the rate
//     (TaskQueueActivitiesPerSecond) with a burst: matching splits the rate
//     over the queue's 4 read partitions, each a token bucket of
//     max(ceil(rate/4), 1) tokens. One activity makes one request here, so any
//     window of T seconds holds at most rate*T + 4*ceil(rate/4) requests, plus
//     those of activities dispatched before it that were still waiting to be
//     sent (at most the two processes' concurrency).
func TestTwoWorkersShareTheTargetRate(t *testing.T) {
	t.Parallel()
	const leads, rate, concurrency, partitions = 100, 10, 8, 4
	s := startStack(t, `{"crm.*": {"latency": "20ms"}}`,
		fmt.Sprintf("SIGNALBOX_CRM_RATE=%d", rate), fmt.Sprintf("SIGNALBOX_CRM_CONCURRENCY=%d", concurrency))
	startWorker(t, s, "worker 2")

	keys := s.postLeads(t, uniqueKey(t, "rate"), leads)
	s.requireLeadsSynced(t, keys, 3*time.Minute)

	reqs := s.sandboxRequests(t, "crm.*")
	require.GreaterOrEqual(t, len(reqs), 2*leads, "a search and a create per lead")
	sent := sendTimes(t, reqs)
	// One process never sends two requests closer than 1/rate: closer pairs
	// prove that both workers sent.
	closer := 0
	for i := 1; i < len(sent); i++ {
		if sent[i].Sub(sent[i-1]) < time.Second/rate {
			closer++
		}
	}
	require.Positive(t, closer, "both workers sent requests")

	perSecond := maxInWindow(sent, time.Second)
	const window = 10 * time.Second
	burst := partitions * max(int(math.Ceil(float64(rate)/partitions)), 1)
	serverBound := int(window/time.Second)*rate + burst + 2*concurrency
	perWindow := maxInWindow(sent, window)
	t.Logf("crm: %d requests from 2 workers in %s; at most %d in any second (each worker's bound %d/s), %d in any %s (server's bound %d)",
		len(reqs), sent[len(sent)-1].Sub(sent[0]).Round(time.Millisecond), perSecond, rate, perWindow, window, serverBound)
	require.LessOrEqual(t, perSecond, 2*rate, "each worker keeps to the rate")
	require.LessOrEqual(t, perWindow, serverBound, "the server keeps the workers together to the queue's rate, with its burst")
}

// startWorker starts another worker process on the stack, stopped when the test ends.
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
