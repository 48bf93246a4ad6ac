package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/metrics/metricstest"
)

const alertsFile = "../deploy/prometheus/alerts.yml"

// everySignalboxMetric is a scrape of an exporter that recorded every one
// of signalbox's own metrics.
func everySignalboxMetric(t *testing.T) metricstest.Families {
	t.Helper()
	e := newExporter(t)
	recordWorkflowMetrics(e.SDK())
	v := e.Vendor("crm")
	v.Waited(time.Millisecond)
	v.Answered(200, nil, time.Millisecond)
	e.Intake(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	w := &Waiting{Visibility: &fakeVisibility{}, Specs: api.Specs()}
	require.NoError(t, w.Register(e.Meter()))
	require.NoError(t, w.Refresh(context.Background()))
	return scrape(t, e)
}

func TestAlertRulesParseAndNameTheirCommand(t *testing.T) {
	rules, names, err := metricstest.Rules(alertsFile)
	require.NoError(t, err, "Prometheus's rule parser accepts the file, every expression and template")
	require.GreaterOrEqual(t, len(rules), 8)
	f := everySignalboxMetric(t)
	for _, r := range rules {
		require.True(t, strings.HasPrefix(r.Alert, "Signalbox"), "%q: alerts are named Signalbox…", r.Alert)
		require.Contains(t, []string{"info", "warning", "critical"}, r.Labels["severity"], r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		require.Contains(t, r.Annotations["description"], "`signals ", "%s: the description names the signals command to run", r.Alert)
	}
	for _, want := range []string{"signalbox_items_over_sla", "signalbox_items_waiting", "signalbox_vendor_requests_total", "temporal_long_request_total"} {
		require.Contains(t, names, want)
	}
	requireExported(t, f, alertsFile, names)
}

// requireExported checks that every signalbox metric in names is in f; the
// SDK's are checked against a real worker by TestMetricsOfTheWorkerAndTheIntake.
func requireExported(t *testing.T, f metricstest.Families, file string, names []string) {
	t.Helper()
	for _, name := range names {
		switch {
		case strings.HasPrefix(name, "signalbox_"):
			require.True(t, f.Has(name), "%s uses %s, which signalbox does not export", file, name)
		case strings.HasPrefix(name, "temporal_"):
		default:
			require.Equal(t, "up", name, "%s: Prometheus's own up is the only other metric it may use", file)
		}
	}
}

func TestGrafanaDashboardQueriesParseAndUseExportedMetrics(t *testing.T) {
	const file = "../deploy/grafana/signalbox.json"
	names, err := metricstest.Dashboard(file)
	require.NoError(t, err)
	require.Contains(t, names, "signalbox_items_waiting")
	requireExported(t, everySignalboxMetric(t), file, names)
}

func TestTheRuleCheckCatchesTypos(t *testing.T) {
	good, err := os.ReadFile(alertsFile)
	require.NoError(t, err)
	for _, typo := range []struct{ from, to string }{
		{"max by (integration, status, exception) (signalbox_items_over_sla) > 0", "max by (integration, status, exception) (signalbox_items_over_sla > 0"},
		{"rate(signalbox_vendor_requests_total[5m])", "rate(signalbox_vendor_requests_total[5x])"},
		{"{{ $labels.integration }}", "{{ $labels.integration }"},
		{"for: 5m", "fro: 5m"},
	} {
		bad := strings.Replace(string(good), typo.from, typo.to, 1)
		require.NotEqual(t, string(good), bad, "the typo %q must be made", typo.to)
		path := filepath.Join(t.TempDir(), "alerts.yml")
		require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
		_, _, err := metricstest.Rules(path)
		require.Error(t, err, "%q is not caught", typo.to)
	}
}

// TestDocsListEveryMetricAndAlert keeps docs/metrics.md true.
func TestDocsListEveryMetricAndAlert(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	for name := range everySignalboxMetric(t) {
		if strings.HasPrefix(name, "signalbox_") {
			require.Contains(t, string(doc), "`"+name+"`", "docs/metrics.md does not list %s", name)
		}
	}
	rules, _, err := metricstest.Rules(alertsFile)
	require.NoError(t, err)
	for _, r := range rules {
		require.Contains(t, string(doc), "`"+r.Alert+"`", "docs/metrics.md does not list alert %s", r.Alert)
	}
	for _, v := range []string{"SIGNALBOX_METRICS_ADDR", "SIGNALBOX_METRICS_REFRESH"} {
		require.Contains(t, string(doc), v)
	}
	require.True(t, slices.ContainsFunc(strings.Split(string(doc), "\n"), func(l string) bool { return strings.Contains(l, "scrape_configs") }),
		"docs/metrics.md shows a scrape config")
}
