package tests

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/metrics"
	"github.com/signalbox-dev/signalbox/metrics/metricstest"
	"github.com/signalbox-dev/signalbox/stack"
)

// TestMetricsOfTheWorkerAndTheIntake runs leads through a worker and an
// intake that serve /metrics, and reads what they serve as Prometheus
// would: the SDK's series and signalbox's, each event counted once, even
// by a worker that replays the item's history after a restart.
func TestMetricsOfTheWorkerAndTheIntake(t *testing.T) {
	// ConsentMissing's SLA is short enough for an item to pass it here.
	s := startStack(t, "", "SIGNALBOX_METRICS_REFRESH=1s", "SIGNALBOX_SLAS=ConsentMissing=2s")
	ctx := context.Background()
	// SIGNALBOX_METRICS_ADDR differs by program, and the stack gives its
	// settings to all: the worker and the intake start again with theirs.
	workerAddr, err := stack.FreeAddr()
	require.NoError(t, err)
	intakeAddr, err := stack.FreeAddr()
	require.NoError(t, err)
	restart := func(p *stack.Process, env ...string) {
		t.Helper()
		require.NoError(t, p.Stop(15*time.Second))
		p.Env = append(slices.Clone(p.Env), env...)
		require.NoError(t, p.Start(ctx))
	}
	restart(s.Worker, "SIGNALBOX_METRICS_ADDR="+workerAddr)
	restart(s.Intake, "SIGNALBOX_METRICS_ADDR="+intakeAddr)
	scrape := func(addr string) metricstest.Families {
		t.Helper()
		f, err := metricstest.Scrape("http://" + addr + "/metrics")
		require.NoError(t, err)
		return f
	}

	// One lead synced, one waiting for consent.
	synced, waiting := uniqueKey(t, "metrics-synced"), uniqueKey(t, "metrics-consent")
	code, body := s.post(t, "/v1/leads", lead(synced), nil)
	require.Equal(t, http.StatusAccepted, code, body)
	noConsent := lead(waiting)
	noConsent.Consent = false
	code, body = s.post(t, "/v1/leads", noConsent, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, api.StatusSynced, s.waitResult(t, api.ItemID(api.IntegrationLeadToCRM, synced)).Status)
	waitingID := api.ItemID(api.IntegrationLeadToCRM, waiting)
	s.waitStatus(t, waitingID, api.StatusBlocked)

	lead := map[string]string{metrics.LabelIntegration: api.IntegrationLeadToCRM}
	with := func(kv ...string) map[string]string {
		m := map[string]string{metrics.LabelIntegration: api.IntegrationLeadToCRM}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	f := scrape(workerAddr)
	require.Equal(t, 2.0, f.Sum("signalbox_items_started_total", lead), "each item counted once")
	require.Equal(t, 1.0, f.Sum("signalbox_items_ended_total", with("status", "Synced")))
	require.Equal(t, 1.0, f.Sum("signalbox_items_ended_total", nil), "the waiting item has not ended")
	require.Equal(t, 1.0, f.Sum("signalbox_exceptions_raised_total", with("exception", "ConsentMissing", "status", "Blocked")))
	for _, m := range f.Series("signalbox_items_started_total", nil) {
		for _, l := range m.GetLabel() {
			require.Contains(t, []string{"integration", "namespace", "task_queue", "workflow_type", "worker_type", "activity_type", "client_name"}, l.GetName(),
				"workflow metrics carry the SDK's labels and signalbox's")
			require.NotContains(t, l.GetValue(), "metrics-", "no item's key becomes a label")
		}
	}
	require.GreaterOrEqual(t, f.Sum("signalbox_vendor_requests_total", map[string]string{"target": "crm", "class": "2xx"}), 2.0,
		"the CRM was searched and the contact created")
	require.GreaterOrEqual(t, f.Sum("signalbox_vendor_requests_total", map[string]string{"target": "chat", "class": "2xx"}), 1.0)
	require.Zero(t, f.Sum("signalbox_vendor_requests_total", map[string]string{"class": "5xx"}))
	require.GreaterOrEqual(t, f.Sum("signalbox_vendor_rate_limit_wait_seconds", map[string]string{"target": "crm"}), 2.0)

	// The SDK's own series, under their names with Prometheus's suffixes,
	// durations in second-scale buckets.
	require.Positive(t, f.Sum("temporal_request_total", map[string]string{"namespace": s.Namespace()}))
	require.Positive(t, f.Sum("temporal_workflow_task_queue_poll_succeed_total", nil))
	require.Positive(t, f.Sum("temporal_long_request_total", map[string]string{"operation": "PollWorkflowTaskQueue"}),
		"polls are counted: the connection reports to the exporter")
	require.Positive(t, f.Sum("temporal_long_request_total", map[string]string{"operation": "PollActivityTaskQueue"}))
	require.Positive(t, f.Sum("temporal_num_pollers", map[string]string{"task_queue": api.TaskQueueIntegrations}))
	for _, name := range []string{"temporal_workflow_task_execution_latency_seconds", "temporal_activity_execution_latency_seconds", "temporal_request_latency_seconds"} {
		series := f.Series(name, nil)
		require.NotEmpty(t, series, name)
		require.Equal(t, metrics.LatencyBuckets, metricstest.Bounds(series[0]), name)
		require.Positive(t, f.Sum(name, nil), name)
	}
	require.Positive(t, f.Sum("temporal_activity_execution_latency_seconds", map[string]string{"activity_type": "CreateContact"}), "activities on the crm queue")

	// The waiting item, from visibility (refreshed every second here), and
	// past its SLA two seconds later.
	consent := with("status", "Blocked", "exception", "ConsentMissing")
	require.Eventually(t, func() bool { return scrape(workerAddr).Sum("signalbox_items_waiting", consent) == 1 }, waitFor, 200*time.Millisecond)
	require.Eventually(t, func() bool { return scrape(workerAddr).Sum("signalbox_items_over_sla", consent) == 1 }, waitFor, 200*time.Millisecond)
	f = scrape(workerAddr)
	require.Equal(t, 1.0, f.Sum("signalbox_items_waiting", nil), "one item waits, counted in one series")
	require.GreaterOrEqual(t, f.Sum("signalbox_oldest_wait_seconds", consent), 2.0)
	require.Less(t, f.Sum("signalbox_oldest_wait_seconds", consent), waitFor.Seconds())
	require.Zero(t, f.Sum("signalbox_items_over_sla", with("status", "Failed")))
	before := f

	// The intake: its Temporal client's series and its answers by route.
	in := scrape(intakeAddr)
	require.Equal(t, 2.0, in.Sum("signalbox_intake_requests_total", map[string]string{"route": "POST /v1/leads", "code": "202"}))
	require.Positive(t, in.Sum("temporal_request_total", nil))
	require.Positive(t, in.Sum("temporal_request_latency_seconds", nil))

	// A new worker process replays the waiting item's history when the
	// decision arrives: it counts the decision and the end, not the start
	// or the exception again.
	restart(s.Worker)
	_, stderr, exit := s.signals(t, "", "approve", waitingID, "--as", "mallory", "--reason", "not an operator")
	require.Equal(t, 1, exit, stderr)
	_, stderr, exit = s.signals(t, "", "reject", waitingID, "--as", "alice", "--reason", "no consent given")
	require.Equal(t, 0, exit, stderr)
	require.Equal(t, api.StatusRejected, s.waitResult(t, waitingID).Status)
	f = scrape(workerAddr)
	require.Zero(t, f.Sum("signalbox_items_started_total", nil), "replay counts no start")
	require.Zero(t, f.Sum("signalbox_exceptions_raised_total", nil), "replay counts no exception")
	require.Equal(t, 1.0, f.Sum("signalbox_items_ended_total", with("status", "Rejected")))
	require.Equal(t, 1.0, f.Sum("signalbox_decisions_total", with("action", "reject", "outcome", "applied", "via", "update")))
	require.Equal(t, 1.0, f.Sum("signalbox_decisions_total", with("action", "approve", "outcome", "refused", "via", "update")))
	wait := f.Series("signalbox_decision_wait_seconds", with("exception", "ConsentMissing"))
	require.Len(t, wait, 1)
	require.Equal(t, metrics.DecisionBuckets, metricstest.Bounds(wait[0]))
	require.Equal(t, uint64(1), wait[0].GetHistogram().GetSampleCount())
	require.Eventually(t, func() bool { return scrape(workerAddr).Sum("signalbox_items_waiting", nil) == 0 }, waitFor, 200*time.Millisecond)

	// Every metric the alert rules use is served by a worker that has just
	// started and decided one item, or the intake (or is Prometheus's own
	// up); every metric the dashboard shows, by one of the scrapes.
	_, names, err := metricstest.Rules("../deploy/prometheus/alerts.yml")
	require.NoError(t, err)
	f, in = scrape(workerAddr), scrape(intakeAddr)
	for _, name := range names {
		require.True(t, name == "up" || f.Has(name) || in.Has(name), "the alert rules use %s, which no scrape serves", name)
	}
	names, err = metricstest.Dashboard("../deploy/grafana/signalbox.json")
	require.NoError(t, err)
	for _, name := range names {
		require.True(t, f.Has(name) || in.Has(name) || before.Has(name), "the dashboard shows %s, which no scrape serves", name)
	}
}
