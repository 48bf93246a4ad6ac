package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/signalbox-dev/signalbox/api"
)

// Visibility is the part of the Temporal client the waiting counts use.
type Visibility interface {
	CountWorkflow(ctx context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error)
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
}

// Waiting counts the items that wait for a person (Blocked or Failed), by
// integration, status and exception, from Temporal's visibility, and
// exports the counts (ItemsWaiting, ItemsOverSLA, OldestWait).
//
// Visibility groups by ExecutionStatus only (server 1.29: "'group by'
// clause is only supported for ExecutionStatus") and cannot order by a
// search attribute, so each refresh counts per integration first (one
// query each) and looks into the exceptions of an integration only when
// some of its items wait: one count per exception it declares, and for an
// exception with waiting items one count of those past its SLA and a few
// pages of a listing for the oldest (see oldest). An idle system costs one
// count per integration per refresh.
type Waiting struct {
	Visibility Visibility
	Namespace  string
	Specs      []api.Spec
	// SLA is the SLA in force for an exception of an integration: the
	// spec's, or the deployment's (SIGNALBOX_SLAS).
	SLA func(api.Spec, api.ExceptionSpec) time.Duration
	// PageSize is how many executions a listing asks for at once.
	// Default: 1000, visibility's usual maximum.
	PageSize int
	Now      func() time.Time
	Logger   *slog.Logger

	mu     sync.Mutex
	counts map[group]waitingCount
	errors metric.Int64Counter
}

// group is one series of the waiting gauges.
type group struct {
	integration string
	status      api.Status
	exception   api.ExceptionKind
}

type waitingCount struct {
	waiting, overSLA int64
	// since is when the longest-waiting item began waiting: the oldest
	// wait is measured from it when scraped, not when counted.
	since time.Time
}

// refreshTimeout bounds one refresh; the next starts an interval after it ends.
const refreshTimeout = time.Minute

// maxOldestRounds bounds the listings one oldest wait takes; past it the
// oldest found so far is exported (a lower bound).
const maxOldestRounds = 5

// Register makes the gauges read w's last counts; every group the specs
// declare is exported, 0 until counted.
func (w *Waiting) Register(m metric.Meter) error {
	w.mu.Lock()
	w.counts = map[group]waitingCount{}
	for _, s := range w.Specs {
		for _, e := range s.Exceptions {
			w.counts[group{s.Name, e.Status, e.Kind}] = waitingCount{}
		}
	}
	w.mu.Unlock()
	waiting, err := m.Int64ObservableGauge(ItemsWaiting, metric.WithDescription("Items waiting for a person, as visibility counted them last"))
	if err != nil {
		return err
	}
	over, err := m.Int64ObservableGauge(ItemsOverSLA, metric.WithDescription("Items that have waited longer than their exception's SLA"))
	if err != nil {
		return err
	}
	oldest, err := m.Float64ObservableGauge(OldestWait, metric.WithUnit("s"), metric.WithDescription("How long the longest-waiting item has waited"))
	if err != nil {
		return err
	}
	if w.errors, err = m.Int64Counter(WaitingRefreshErrors, metric.WithDescription("Visibility refreshes of the waiting counts that failed")); err != nil {
		return err
	}
	w.errors.Add(context.Background(), 0) // served from the start, so an alert on it can tell 0 from unknown
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := w.now()
		w.mu.Lock()
		defer w.mu.Unlock()
		for g, c := range w.counts {
			var waited time.Duration
			if !c.since.IsZero() {
				waited = max(now.Sub(c.since), 0)
			}
			attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelIntegration, g.integration),
				attribute.String(LabelStatus, string(g.status)), attribute.String(LabelException, string(g.exception))))
			o.ObserveInt64(waiting, c.waiting, attrs)
			o.ObserveInt64(over, c.overSLA, attrs)
			o.ObserveFloat64(oldest, waited.Seconds(), attrs)
		}
		return nil
	}, waiting, over, oldest)
	return err
}

// Run refreshes the counts now and every interval until ctx ends.
func (w *Waiting) Run(ctx context.Context, every time.Duration) {
	for {
		refresh, cancel := context.WithTimeout(ctx, refreshTimeout)
		err := w.Refresh(refresh)
		cancel()
		if err != nil && ctx.Err() == nil {
			if w.errors != nil {
				w.errors.Add(ctx, 1)
			}
			w.logger().Warn("metrics: counting waiting items failed; the last counts stay", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// Refresh counts again; on an error the last counts stay.
func (w *Waiting) Refresh(ctx context.Context) error {
	now := w.now()
	counts := map[group]waitingCount{}
	for _, s := range w.Specs {
		total, err := w.count(ctx, fmt.Sprintf("%s = '%s' AND %s IN ('%s', '%s')", api.AttrIntegrationName.GetName(), s.Name,
			api.AttrIntegrationStatus.GetName(), api.StatusBlocked, api.StatusFailed))
		if err != nil {
			return err
		}
		for _, e := range s.Exceptions {
			g := group{s.Name, e.Status, e.Kind}
			if total == 0 {
				counts[g] = waitingCount{}
				continue
			}
			if counts[g], err = w.countGroup(ctx, s, e, now); err != nil {
				return err
			}
		}
	}
	w.mu.Lock()
	w.counts = counts
	w.mu.Unlock()
	return nil
}

// countGroup counts the items of one integration waiting on one exception.
func (w *Waiting) countGroup(ctx context.Context, s api.Spec, e api.ExceptionSpec, now time.Time) (waitingCount, error) {
	where := fmt.Sprintf("%s = '%s' AND %s = '%s' AND %s = '%s'", api.AttrIntegrationName.GetName(), s.Name,
		api.AttrIntegrationStatus.GetName(), e.Status, api.AttrExceptionKind.GetName(), e.Kind)
	var c waitingCount
	var err error
	if c.waiting, err = w.count(ctx, where); err != nil || c.waiting == 0 {
		return c, err
	}
	sla := e.SLA
	if w.SLA != nil {
		sla = w.SLA(s, e)
	}
	if c.overSLA, err = w.count(ctx, where+" AND "+before(now.Add(-sla))); err != nil {
		return c, err
	}
	c.since, err = w.oldest(ctx, where)
	return c, err
}

// count counts the running executions that match where.
func (w *Waiting) count(ctx context.Context, where string) (int64, error) {
	q := where + " AND ExecutionStatus = 'Running'"
	resp, err := w.Visibility.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: w.Namespace, Query: q})
	if err != nil {
		return 0, fmt.Errorf("count %q: %w", q, err)
	}
	return resp.GetCount(), nil
}

// oldest is the earliest AttentionSince of the running executions that
// match where. It lists one page; while more remain, it lists those that
// began waiting before the earliest seen so far, which shrinks at every
// round, for at most maxOldestRounds rounds.
func (w *Waiting) oldest(ctx context.Context, where string) (time.Time, error) {
	pageSize := w.PageSize
	if pageSize <= 0 {
		pageSize = 1000
	}
	var earliest time.Time
	for range maxOldestRounds {
		last := earliest
		q := where
		if !earliest.IsZero() {
			q += " AND " + before(earliest)
		}
		q += " AND ExecutionStatus = 'Running'"
		resp, err := w.Visibility.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: w.Namespace, PageSize: int32(pageSize), Query: q})
		if err != nil {
			return earliest, fmt.Errorf("list %q: %w", q, err)
		}
		for _, info := range resp.GetExecutions() {
			since := api.VisibleItemFrom(info).AttentionSince
			if !since.IsZero() && (earliest.IsZero() || since.Before(earliest)) {
				earliest = since
			}
		}
		if len(resp.GetNextPageToken()) == 0 || earliest.Equal(last) {
			break // every match was on this page, or none began earlier
		}
	}
	return earliest, nil
}

// before is the clause "began waiting before t".
func before(t time.Time) string {
	return fmt.Sprintf("%s < '%s'", api.AttrAttentionSince.GetName(), t.UTC().Format(time.RFC3339Nano))
}

func (w *Waiting) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Waiting) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}
