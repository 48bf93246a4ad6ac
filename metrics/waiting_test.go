package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/signalbox-dev/signalbox/api"
)

// fakeVisibility answers counts and listings from items held in memory, by
// reading the clauses the waiting counts write, and lists them in the
// order it holds them (visibility's is by start time, not by wait).
type fakeVisibility struct {
	items   []api.VisibleItem
	queries []string
	fail    error
}

func (v *fakeVisibility) matches(q string) []api.VisibleItem {
	var out []api.VisibleItem
	for _, it := range v.items {
		ok := strings.Contains(q, "ExecutionStatus = 'Running'") &&
			strings.Contains(q, "IntegrationName = '"+it.Integration+"'") &&
			(strings.Contains(q, "IntegrationStatus = '"+string(it.Status)+"'") || strings.Contains(q, "IntegrationStatus IN (") && it.Status.Waiting()) &&
			(!strings.Contains(q, "ExceptionKind") || strings.Contains(q, "ExceptionKind = '"+string(it.Exception)+"'"))
		if _, bound, found := strings.Cut(q, "AttentionSince < '"); found && ok {
			at, err := time.Parse(time.RFC3339Nano, bound[:strings.Index(bound, "'")])
			if err != nil {
				panic(err)
			}
			ok = it.AttentionSince.Before(at)
		}
		if ok {
			out = append(out, it)
		}
	}
	return out
}

func (v *fakeVisibility) CountWorkflow(_ context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	v.queries = append(v.queries, "count "+req.GetQuery())
	if v.fail != nil {
		return nil, v.fail
	}
	return &workflowservice.CountWorkflowExecutionsResponse{Count: int64(len(v.matches(req.GetQuery())))}, nil
}

func (v *fakeVisibility) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	v.queries = append(v.queries, "list "+req.GetQuery())
	if v.fail != nil {
		return nil, v.fail
	}
	if len(req.GetNextPageToken()) > 0 {
		return nil, errors.New("the waiting counts never read a second page")
	}
	found := v.matches(req.GetQuery())
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	if len(found) > int(req.GetPageSize()) {
		found, resp.NextPageToken = found[:req.GetPageSize()], []byte("more")
	}
	dc := converter.GetDefaultDataConverter()
	for _, it := range found {
		since, err := dc.ToPayload(it.AttentionSince)
		if err != nil {
			return nil, err
		}
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{
			Execution:        &commonpb.WorkflowExecution{WorkflowId: it.WorkflowID},
			SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{api.AttrAttentionSince.GetName(): since}},
		})
	}
	return resp, nil
}

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func waitingItem(i int, integration string, status api.Status, kind api.ExceptionKind, waited time.Duration) api.VisibleItem {
	return api.VisibleItem{WorkflowID: fmt.Sprintf("%s:k%d", integration, i), Integration: integration, Status: status,
		Exception: kind, AttentionSince: now.Add(-waited)}
}

func newWaiting(t *testing.T, v *fakeVisibility) (*Waiting, *Exporter) {
	t.Helper()
	e := newExporter(t)
	w := &Waiting{Visibility: v, Namespace: "default", Specs: api.Specs(), PageSize: 3, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler)}
	require.NoError(t, w.Register(e.Meter()))
	return w, e
}

func TestWaitingCountsByIntegrationStatusAndException(t *testing.T) {
	v := &fakeVisibility{}
	// Seven leads wait on consent (SLA 24h), listed newest first as
	// visibility would; two have waited past the SLA; the oldest, 50h, is
	// on no first page. One lead failed on its target (SLA 1h) 10 minutes ago.
	for i, waited := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 5 * time.Hour, 20 * time.Hour, 30 * time.Hour, 50 * time.Hour} {
		v.items = append(v.items, waitingItem(i, api.IntegrationLeadToCRM, api.StatusBlocked, api.ConsentMissing, waited))
	}
	v.items = append(v.items, waitingItem(9, api.IntegrationLeadToCRM, api.StatusFailed, api.TargetUnavailable, 10*time.Minute))
	w, e := newWaiting(t, v)
	require.NoError(t, w.Refresh(context.Background()))
	f := scrape(t, e)

	consent := map[string]string{LabelIntegration: api.IntegrationLeadToCRM, LabelStatus: "Blocked", LabelException: "ConsentMissing"}
	require.Equal(t, 7.0, f.Sum("signalbox_items_waiting", consent))
	require.Equal(t, 2.0, f.Sum("signalbox_items_over_sla", consent), "past the 24h SLA of ConsentMissing")
	require.Equal(t, 50*3600.0, f.Sum("signalbox_oldest_wait_seconds", consent), "the oldest, found past the first page")
	unavailable := map[string]string{LabelIntegration: api.IntegrationLeadToCRM, LabelStatus: "Failed", LabelException: "TargetUnavailable"}
	require.Equal(t, 1.0, f.Sum("signalbox_items_waiting", unavailable))
	require.Equal(t, 0.0, f.Sum("signalbox_items_over_sla", unavailable))
	require.Equal(t, 600.0, f.Sum("signalbox_oldest_wait_seconds", unavailable))

	// Every group the specs declare is exported, idle ones as 0.
	groups := 0
	for _, s := range api.Specs() {
		groups += len(s.Exceptions)
	}
	require.Len(t, f.Series("signalbox_items_waiting", nil), groups)
	require.Equal(t, 8.0, f.Sum("signalbox_items_waiting", nil))
	require.Equal(t, 0.0, f.Sum("signalbox_items_waiting", map[string]string{LabelIntegration: api.IntegrationInvoiceToBilling}))

	// An integration with nothing waiting costs one count; one with items
	// waiting costs a count per exception it declares, plus a count past
	// the SLA and the listings of those with items.
	lead, _ := api.SpecByName(api.IntegrationLeadToCRM)
	require.Len(t, v.queries, len(api.Specs())+len(lead.Exceptions)+2*2+2, strings.Join(v.queries, "\n"))
}

func TestWaitingTakesTheDeploymentsSLA(t *testing.T) {
	v := &fakeVisibility{items: []api.VisibleItem{waitingItem(1, api.IntegrationLeadToCRM, api.StatusBlocked, api.ConsentMissing, 2*time.Hour)}}
	w, e := newWaiting(t, v)
	w.SLA = func(_ api.Spec, e api.ExceptionSpec) time.Duration {
		if e.Kind == api.ConsentMissing {
			return time.Hour // SIGNALBOX_SLAS=ConsentMissing=1h
		}
		return e.SLA
	}
	require.NoError(t, w.Refresh(context.Background()))
	require.Equal(t, 1.0, scrape(t, e).Sum("signalbox_items_over_sla", map[string]string{LabelException: "ConsentMissing"}))
}

func TestWaitingKeepsItsLastCountsWhenVisibilityFails(t *testing.T) {
	v := &fakeVisibility{items: []api.VisibleItem{waitingItem(1, api.IntegrationLeadToCRM, api.StatusBlocked, api.ConsentMissing, time.Hour)}}
	w, e := newWaiting(t, v)
	require.NoError(t, w.Refresh(context.Background()))
	v.fail = errors.New("visibility unavailable")
	v.items = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, time.Hour); close(done) }()
	require.Eventually(t, func() bool { return scrape(t, e).Sum("signalbox_waiting_refresh_errors_total", nil) == 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	require.Equal(t, 1.0, scrape(t, e).Sum("signalbox_items_waiting", nil), "the last counts stay")
}
