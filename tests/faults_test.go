package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/stretchr/testify/require"
)

// TestLeadsRideThroughFaultsExactlyOnce is the proof of safe retries: with 30%
// 5xx (half of the CRM's after the write took effect), 5% 429 with
// Retry-After (each one pauses the whole target), and added latency, every lead ends Synced with exactly one CRM
// contact and one chat message, no request is sent again before the
// Retry-After it was given, and no target is sent more requests in any second
// than its configured rate (judged by send times, not arrivals).
func TestLeadsRideThroughFaultsExactlyOnce(t *testing.T) {
	t.Parallel()
	const leads, crmRate, chatRate = 200, 25, 20
	faults := `{
		"crm.*":      {"rate5xx": 0.3, "rate429": 0.05, "retryAfter": "1s", "latency": "20ms"},
		"crm.create": {"rate5xx": 0.3, "rate429": 0.05, "retryAfter": "2s", "latency": "20ms", "afterEffect": 0.5},
		"chat.post":  {"rate5xx": 0.3, "rate429": 0.05, "retryAfter": "1s", "latency": "20ms"}
	}`
	s := startStack(t, faults,
		fmt.Sprintf("SIGNALBOX_CRM_RATE=%d", crmRate), fmt.Sprintf("SIGNALBOX_CHAT_RATE=%d", chatRate),
		"SIGNALBOX_CRM_CONCURRENCY=16", "SIGNALBOX_CHAT_CONCURRENCY=16")

	keys := s.postLeads(t, uniqueKey(t, "fault"), leads)
	// Generous: a loaded 2-core machine runs this in 1-5 minutes; speed is make bench's business.
	s.requireLeadsSynced(t, keys, 10*time.Minute)

	stats := s.sandboxStats(t)
	t.Logf("requests %v, faults %v, sent while the target was backing off %v", stats.Requests, stats.Faults, stats.RequestsDuringBackoff)
	require.Positive(t, stats.Faults["crm.create 5xx"], "faults were injected")
	require.Positive(t, stats.Faults["chat.post 429"])
	if stats.EarlyRetries > 0 {
		s.logEarlyRetries(t)
	}
	require.Zero(t, stats.EarlyRetries, "no request came before the Retry-After it was given")
	// The worker holds every request to a target while a Retry-After it was
	// given runs: only one released in the instant before it read a 429 slips
	// through, not the dozens a second a per-request back-off lets by.
	for _, target := range []string{"crm", "chat"} {
		given := 0
		for kind, n := range stats.Faults {
			if strings.HasPrefix(kind, target+".") && strings.HasSuffix(kind, " 429") {
				given += n
			}
		}
		require.LessOrEqual(t, stats.RequestsDuringBackoff[target], given, "%s requests sent while it was backing off", target)
	}
	require.Zero(t, stats.DuplicateMessages)
	for _, key := range keys {
		require.Len(t, s.contactsWithEmail(t, key+"@example.com"), 1, "one contact for %s", key)
		require.Len(t, s.messagesAbout(t, "Lead "+key+" synced"), 1, "one message for %s", key)
	}

	for target, limit := range map[string]int{"crm.*": crmRate, "chat.*": chatRate} {
		reqs := s.sandboxRequests(t, target)
		busiest := maxInWindow(sendTimes(t, reqs), time.Second)
		t.Logf("%s: %d requests, at most %d sent in any second (limit %d/s)", target, len(reqs), busiest, limit)
		// The one worker sends each request at least 1/limit after the one before.
		require.LessOrEqual(t, busiest, limit, "%s exceeded its rate", target)
	}
}

// TestCRMDownPastTheWindowFailsThenRetrySyncs: a CRM that stays down longer
// than the retry window leaves items Failed/TargetUnavailable, waiting; once
// it is back, `signals retry` brings them to Synced.
func TestCRMDownPastTheWindowFailsThenRetrySyncs(t *testing.T) {
	t.Parallel()
	s := startStack(t, `{"crm.*": {"down": true}}`, "SIGNALBOX_CRM_TIMEOUT=2s", "SIGNALBOX_CRM_RETRY_WINDOW=6s")
	prefix := uniqueKey(t, "down")
	var ids []string
	for i := range 3 {
		code, body := s.post(t, "/v1/leads", lead(fmt.Sprintf("%s-%d", prefix, i)), nil)
		require.Equal(t, http.StatusAccepted, code)
		ids = append(ids, body["workflowId"].(string))
	}
	for _, id := range ids {
		st := s.waitStatus(t, id, api.StatusFailed)
		require.Equal(t, api.TargetUnavailable, st.Exception.Kind)
		require.Contains(t, st.Exception.Summary, "find contact failed")
	}
	query := fmt.Sprintf("SourceKey STARTS_WITH '%s-'", prefix)
	s.waitVisible(t, "IntegrationStatus = 'Failed' AND ExceptionKind = 'TargetUnavailable' AND "+query, 3)

	s.setFaults(t, `{}`)
	out, stderr, code := s.signals(t, "", "retry", "--query", query, "--reason", "CRM is back", "--as", "alice", "--yes")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "done: 3")
	for i, id := range ids {
		require.Equal(t, api.StatusSynced, s.waitResult(t, id).Status)
		require.Len(t, s.contactsWithEmail(t, fmt.Sprintf("%s-%d@example.com", prefix, i)), 1)
		require.Equal(t, []string{
			"accepted →Pending system", "started Pending→Running system", "raised Running→Failed system",
			"retry Failed→Running alice", "synced Running→Synced system",
		}, transitions(s.auditTrail(t, id)))
	}

	// Revoked credentials fail at once (no retry window), then retry succeeds.
	s.setFaults(t, `{"crm.*": {"unauthorized": true}}`)
	key := prefix + "-auth"
	code, body := s.post(t, "/v1/leads", lead(key), nil)
	require.Equal(t, http.StatusAccepted, code)
	id := body["workflowId"].(string)
	st := s.waitStatus(t, id, api.StatusFailed)
	require.Equal(t, api.AuthFailed, st.Exception.Kind)
	require.Contains(t, st.Exception.Summary, "check the crm credentials")
	s.setFaults(t, `{}`)
	_, stderr, code = s.signals(t, "", "retry", id, "--reason", "token rotated", "--as", "bob")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, s.waitResult(t, id).Status)
	require.Len(t, s.contactsWithEmail(t, key+"@example.com"), 1)

	// With no worker to answer the status query, show falls back to visibility.
	require.NoError(t, s.Worker.Stop(15*time.Second))
	out, stderr, code = s.signals(t, "", "show", id)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, id+"  Synced")
	require.Contains(t, out, "did not answer its status query")
	require.Contains(t, out, "retry", "the audit trail comes from PostgreSQL all the same")
}

// TestHungCallsHeartbeat: an activity waiting on a hung request heartbeats, so
// cancelling the item reaches the request long before the client's timeout, and
// a worker killed mid-call is replaced within the heartbeat timeout rather than
// the start-to-close timeout.
func TestHungCallsHeartbeat(t *testing.T) {
	t.Parallel()
	const clientTimeout = 60 * time.Second
	s := startStack(t, `{"crm.search": {"rateHang": 1}}`, "SIGNALBOX_CRM_TIMEOUT="+clientTimeout.String())
	ctx := context.Background()

	t.Run("cancellation reaches the call", func(t *testing.T) {
		key := uniqueKey(t, "hang-cancel")
		id := api.ItemID(api.IntegrationLeadToCRM, key)
		code, _ := s.post(t, "/v1/leads", lead(key), nil)
		require.Equal(t, http.StatusAccepted, code)
		s.waitInFlight(t, "crm.search")
		require.NoError(t, s.Client.CancelWorkflow(ctx, id, ""))
		err := s.Client.GetWorkflow(ctx, id, "").Get(ctx, nil)
		require.Error(t, err, "the item ends cancelled")
		require.Eventually(t, func() bool { return s.sandboxStats(t).InFlight["crm.search"] == 0 }, 30*time.Second, 100*time.Millisecond)
		reqs := s.sandboxRequests(t, "crm.search")
		require.NotEmpty(t, reqs)
		last := reqs[len(reqs)-1]
		require.Equal(t, "hang", last.Fault)
		require.Less(t, time.Duration(last.DurationMS)*time.Millisecond, clientTimeout/2, "the call was abandoned on cancellation, not at the client timeout")
		trail := s.auditTrail(t, id)
		require.Equal(t, "cancelled Running→Cancelled system", transitions(trail)[len(trail)-1])
	})

	t.Run("a killed worker is replaced within the heartbeat timeout", func(t *testing.T) {
		key := uniqueKey(t, "hang-kill")
		id := api.ItemID(api.IntegrationLeadToCRM, key)
		code, _ := s.post(t, "/v1/leads", lead(key), nil)
		require.Equal(t, http.StatusAccepted, code)
		s.waitInFlight(t, "crm.search")
		require.NoError(t, s.Worker.Kill())
		killed := time.Now()
		s.setFaults(t, `{}`)
		require.NoError(t, s.Worker.Start(ctx))
		require.Equal(t, api.StatusSynced, s.waitResult(t, id).Status)
		require.Less(t, time.Since(killed), clientTimeout/2, "retried after the 10s heartbeat timeout, not the 65s start-to-close")
		require.Len(t, s.contactsWithEmail(t, key+"@example.com"), 1)
	})
}
