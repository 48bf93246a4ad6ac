package metrics

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/rest"
	"github.com/signalbox-dev/signalbox/metrics/metricstest"
)

func newExporter(t *testing.T) *Exporter {
	t.Helper()
	e, err := New(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

// scrape serves e's /metrics once and parses it.
func scrape(t *testing.T, e *Exporter) metricstest.Families {
	t.Helper()
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	f, err := metricstest.Parse(rec.Body)
	require.NoError(t, err, "the exposition parses with classic Prometheus names")
	return f
}

func TestSDKMetricsKeepTheirNamesWithPrometheusSuffixes(t *testing.T) {
	e := newExporter(t)
	h := e.SDK().WithTags(map[string]string{"namespace": "default", "task_queue": "integrations"})
	h.Counter("temporal_request").Inc(1)
	h.Counter("temporal_request").Inc(2)
	h.Timer("temporal_workflow_task_execution_latency").Record(20 * time.Millisecond)
	h.Gauge("temporal_num_pollers").Update(2)
	f := scrape(t, e)

	require.Equal(t, dto.MetricType_COUNTER, f["temporal_request_total"].GetType(), "a monotonic counter, with _total")
	require.Equal(t, 3.0, f.Sum("temporal_request_total", map[string]string{"namespace": "default", "task_queue": "integrations"}))
	require.Equal(t, dto.MetricType_GAUGE, f["temporal_num_pollers"].GetType())
	require.Equal(t, 2.0, f.Sum("temporal_num_pollers", nil))

	lat := f.Series("temporal_workflow_task_execution_latency_seconds", nil)
	require.Len(t, lat, 1, "a timer is a histogram in seconds")
	require.Equal(t, LatencyBuckets, metricstest.Bounds(lat[0]))
	require.InDelta(t, 0.02, lat[0].GetHistogram().GetSampleSum(), 1e-9, "recorded in seconds")
	for _, b := range lat[0].GetHistogram().GetBucket() {
		want := uint64(0)
		if b.GetUpperBound() >= 0.025 {
			want = 1
		}
		require.Equal(t, want, b.GetCumulativeCount(), "bucket le=%v", b.GetUpperBound())
	}
	require.Contains(t, f, "go_goroutines", "the Go runtime's metrics are served too")
}

// recordWorkflowMetrics records each of the workflows' metrics once.
func recordWorkflowMetrics(h client.MetricsHandler) {
	ItemStarted(h, api.IntegrationLeadToCRM)
	ItemEnded(h, api.IntegrationLeadToCRM, api.StatusSynced)
	ExceptionRaised(h, api.IntegrationLeadToCRM, api.ConsentMissing, api.StatusBlocked)
	Decision(h, api.IntegrationLeadToCRM, api.ActionApprove, Applied, "update")
	Decision(h, api.IntegrationLeadToCRM, api.Action("approve\"}; drop"), Refused, "signal")
	DecisionWaited(h, api.IntegrationLeadToCRM, api.ConsentMissing, 2*time.Hour)
}

func TestWorkflowMetrics(t *testing.T) {
	e := newExporter(t)
	recordWorkflowMetrics(e.SDK())
	f := scrape(t, e)

	lead := map[string]string{LabelIntegration: api.IntegrationLeadToCRM}
	require.Equal(t, 1.0, f.Sum("signalbox_items_started_total", lead))
	require.Equal(t, 1.0, f.Sum("signalbox_items_ended_total", map[string]string{LabelStatus: "Synced"}))
	require.Equal(t, 1.0, f.Sum("signalbox_exceptions_raised_total", map[string]string{LabelException: "ConsentMissing", LabelStatus: "Blocked"}))
	require.Equal(t, 1.0, f.Sum("signalbox_decisions_total", map[string]string{LabelAction: "approve", LabelOutcome: "applied", LabelVia: "update"}))
	require.Equal(t, 1.0, f.Sum("signalbox_decisions_total", map[string]string{LabelAction: "invalid", LabelOutcome: "refused", LabelVia: "signal"}),
		"an action no one declared becomes one label value, whatever was sent")

	wait := f.Series("signalbox_decision_wait_seconds", lead)
	require.Len(t, wait, 1)
	require.Equal(t, DecisionBuckets, metricstest.Bounds(wait[0]), "decisions wait minutes to days")
	require.Equal(t, 7200.0, wait[0].GetHistogram().GetSampleSum())
}

func TestClass(t *testing.T) {
	for status, want := range map[int]string{0: "network", 200: "2xx", 201: "2xx", 304: "3xx", 400: "4xx", 401: "401", 403: "403",
		404: "4xx", 409: "4xx", 429: "429", 500: "5xx", 503: "5xx"} {
		require.Equal(t, want, Class(status), "status %d", status)
		require.Contains(t, Classes, want)
	}
}

// TestVendorMetricsFromTheGate sends requests through the workers' HTTP
// client (rest's gate) and reads what it told the exporter.
func TestVendorMetricsFromTheGate(t *testing.T) {
	statuses := []int{200, 401, 429, 503}
	calls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(statuses[calls%len(statuses)])
		calls++
	}))
	defer ts.Close()
	e := newExporter(t)
	hc := rest.Observed(rest.HTTPClient(2*time.Second, 20), e.Vendor("crm")) // 50 ms apart
	for range statuses {
		resp, err := hc.Get(ts.URL)
		require.NoError(t, err)
		resp.Body.Close()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = hc.Get(dead)
	require.Error(t, err)

	f := scrape(t, e)
	for _, class := range []string{"2xx", "401", "429", "5xx", "network"} {
		require.Equal(t, 1.0, f.Sum("signalbox_vendor_requests_total", map[string]string{LabelTarget: "crm", LabelClass: class}), class)
	}
	require.Equal(t, 5.0, f.Sum("signalbox_vendor_request_duration_seconds", map[string]string{LabelTarget: "crm"}))
	waits := f.Series("signalbox_vendor_rate_limit_wait_seconds", map[string]string{LabelTarget: "crm"})
	require.Len(t, waits, 1)
	require.Equal(t, uint64(5), waits[0].GetHistogram().GetSampleCount())
	// Four requests after the first waited their turn at 20/s: about 50 ms each.
	require.Greater(t, waits[0].GetHistogram().GetSampleSum(), 0.15)
}

func TestIntakeRequestsByRoutePattern(t *testing.T) {
	e := newExporter(t)
	inner := http.NewServeMux()
	inner.HandleFunc("POST /v1/leads", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	inner.HandleFunc("GET /v1/items/{workflowID}", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })
	outer := http.NewServeMux() // as the starter nests its routes under the Stripe webhook's
	outer.Handle("/", inner)
	h := e.Intake(outer)
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/v1/leads", nil),
		httptest.NewRequest(http.MethodGet, "/v1/items/lead-to-crm:secret-key-1", nil),
		httptest.NewRequest(http.MethodGet, "/v1/items/lead-to-crm:secret-key-2", nil),
		httptest.NewRequest(http.MethodGet, "/nowhere", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	f := scrape(t, e)
	require.Equal(t, 1.0, f.Sum("signalbox_intake_requests_total", map[string]string{LabelRoute: "POST /v1/leads", LabelCode: "202"}))
	require.Equal(t, 2.0, f.Sum("signalbox_intake_requests_total", map[string]string{LabelRoute: "GET /v1/items/{workflowID}", LabelCode: "200"}),
		"the route's pattern, never the key")
	require.Equal(t, 1.0, f.Sum("signalbox_intake_requests_total", map[string]string{LabelRoute: "unmatched", LabelCode: "404"}))
}

func TestServeNamesTheVariableWhenItCannotListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = Serve(ln.Addr().String(), "SIGNALBOX_METRICS_ADDR", http.NewServeMux())
	require.ErrorContains(t, err, "SIGNALBOX_METRICS_ADDR="+ln.Addr().String())
}

func TestABrokenInstrumentIsLoggedOnceAndNeverPanics(t *testing.T) {
	var logs bytes.Buffer
	e, err := New(slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	for range 3 {
		e.SDK().Counter("not a valid name!").Inc(1)
	}
	require.Equal(t, 1, strings.Count(logs.String(), "cannot be recorded"), logs.String())
	require.NotPanics(t, func() { scrape(t, e) })
}
