package main

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// consoleBackend is everything the console reads and decides through. Its
// real implementation takes the code paths the CLI takes — visibility, the
// status query, the audit trail, the decide update through sendDecision — so
// the console, the CLI and the Temporal UI never disagree. Tests fake it.
type consoleBackend interface {
	// ListItems lists the latest runs matching a visibility query, as
	// signals list does; more reports that more than limit match.
	ListItems(ctx context.Context, query string, limit int) (items []api.VisibleItem, more bool, err error)
	CountItems(ctx context.Context, query string) (int64, error)
	// WaitingItems is a page of the waiting items, oldest first, and how
	// many match: the audit trail's projection (store.WaitingItems).
	WaitingItems(ctx context.Context, f store.WaitingFilter) ([]store.WaitingItem, int, error)
	// WaitingByIntegration sums up each integration's waiting items at now.
	WaitingByIntegration(ctx context.Context, now time.Time) (map[string]store.WaitingSummary, error)
	// LatestReconcile is the integration's last reconcile run with its
	// counts (store.LatestReconcileCounts); store.ErrNotFound if none.
	LatestReconcile(ctx context.Context, integration string) (store.ReconcileReport, error)
	// ReadItem is api.ReadItem: the status query, else what visibility knows.
	ReadItem(ctx context.Context, id string) (state api.ItemState, live bool, err error)
	DescribeRun(ctx context.Context, id string) runInfo
	AuditTrail(ctx context.Context, id string) ([]store.AuditEvent, error)
	// Decide is sendDecision; a refusal is a *refusedError.
	Decide(ctx context.Context, id string, d api.Decision) (api.DecisionOutcome, error)
}

// temporalBackend is the console's backend on Temporal and PostgreSQL.
type temporalBackend struct {
	client client.Client
	app    *app
	// mu guards the app's lazily opened database pool: PostgreSQL may be
	// down when the console starts, and the audit trail waits for it.
	mu sync.Mutex
}

func (b *temporalBackend) ListItems(ctx context.Context, query string, limit int) ([]api.VisibleItem, bool, error) {
	return listItems(ctx, b.client, query, limit, false)
}

func (b *temporalBackend) CountItems(ctx context.Context, query string) (int64, error) {
	resp, err := b.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		return 0, err
	}
	return resp.GetCount(), nil
}

func (b *temporalBackend) ReadItem(ctx context.Context, id string) (api.ItemState, bool, error) {
	return api.ReadItem(ctx, b.client, id)
}

func (b *temporalBackend) DescribeRun(ctx context.Context, id string) runInfo {
	return describeRun(ctx, b.client, id)
}

func (b *temporalBackend) AuditTrail(ctx context.Context, id string) ([]store.AuditEvent, error) {
	s, err := b.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.AuditTrail(ctx, id)
}

// store is the app's database, opened on first use.
func (b *temporalBackend) store(ctx context.Context) (*store.Store, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.app.store(ctx)
}

func (b *temporalBackend) WaitingItems(ctx context.Context, f store.WaitingFilter) ([]store.WaitingItem, int, error) {
	s, err := b.store(ctx)
	if err != nil {
		return nil, 0, err
	}
	return s.WaitingItems(ctx, f)
}

func (b *temporalBackend) WaitingByIntegration(ctx context.Context, now time.Time) (map[string]store.WaitingSummary, error) {
	s, err := b.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.WaitingByIntegration(ctx, now)
}

func (b *temporalBackend) LatestReconcile(ctx context.Context, integration string) (store.ReconcileReport, error) {
	s, err := b.store(ctx)
	if err != nil {
		return store.ReconcileReport{}, err
	}
	return s.LatestReconcileCounts(ctx, integration)
}

func (b *temporalBackend) Decide(ctx context.Context, id string, d api.Decision) (api.DecisionOutcome, error) {
	return sendDecision(ctx, b.client, id, d)
}
