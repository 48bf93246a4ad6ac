package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// fakePayments stands for PostgreSQL's invoices and payment_events: it
// applies events once and by created time (the real rule, with PostgreSQL,
// is tested in package store).
type fakePayments struct {
	mu sync.Mutex
	// invoices maps a Stripe invoice to ours; status is each invoice's.
	invoices map[string]string
	status   map[string]store.PaymentStatus
	handled  map[string]string
	calls    []string
}

func newFakePayments(install *fixture, invoices map[string]string) *fakePayments {
	p := &fakePayments{invoices: invoices, status: map[string]store.PaymentStatus{}, handled: map[string]string{}}
	install.env.OnActivity(paymentActivities.ApplyPaymentEvent, mock.Anything, mock.Anything).Return(p.apply)
	return p
}

var lifecycle = map[string]int{"open": 1, "uncollectible": 2, "paid": 3, "void": 3}

func (p *fakePayments) apply(_ context.Context, in activities.ApplyPaymentEventInput) (store.PaymentOutcome, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := in.Event
	p.calls = append(p.calls, e.ID)
	ours, ok := p.invoices[e.StripeInvoiceID]
	if outcome, done := p.handled[e.ID]; done {
		return store.PaymentOutcome{Outcome: outcome, Duplicate: true, InvoiceID: ours, Before: p.status[ours], Now: p.status[ours]}, nil
	}
	if !ok {
		return store.PaymentOutcome{Outcome: store.PaymentUnknown}, nil
	}
	out := store.PaymentOutcome{Outcome: store.PaymentOlder, InvoiceID: ours, Before: p.status[ours], Now: p.status[ours]}
	cur := p.status[ours]
	if cur.Status == "" || e.Created.After(cur.At) || (e.Created.Equal(cur.At) && lifecycle[e.Status] > lifecycle[cur.Status]) {
		out.Outcome, out.Now = store.PaymentApplied, store.PaymentStatus{Status: e.Status, At: e.Created}
		p.status[ours] = out.Now
	}
	p.handled[e.ID] = out.Outcome
	return out, nil
}

func (p *fakePayments) statusOf(invoice string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status[invoice].Status
}

const stripeInvoice = "in_1"

var created = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func paymentEvent(id, typ string, at time.Duration) api.PaymentEvent {
	status, _ := api.PaymentEventStatus(typ)
	return api.PaymentEvent{ID: id, Type: typ, Created: created.Add(at), StripeInvoiceID: stripeInvoice, InvoiceID: "INV-1",
		Status: status, AmountDue: 15000, Currency: "eur"}
}

// send signals events to the item at d, as Stripe's webhooks do (at 0: with
// its start, as SignalWithStart).
func (f *fixture) send(d time.Duration, events ...any) {
	f.at(d, func() {
		for _, ev := range events {
			f.env.SignalWorkflow(api.SignalPaymentEvent, ev)
		}
	})
}

func newPaymentsFixture(t *testing.T) *fixture {
	return newFixture(t, api.ItemID(api.IntegrationInvoicePayments, stripeInvoice))
}

func (f *fixture) runPayments(pending ...api.PaymentEvent) {
	f.env.ExecuteWorkflow(InvoicePayments, api.InvoicePaymentsInput{ItemInput: api.ItemInput{StartedBy: "stripe-webhook"}, Pending: pending})
}

// audited lists the audit rows of an action, as "reason".
func (f *fixture) audited(action string) []store.AuditEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.AuditEvent
	for _, e := range f.audit {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func TestPaymentEventsApplyOnceAndInTheOrderStripeCreatedThem(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	f.quiet()
	p := newFakePayments(f, map[string]string{stripeInvoice: "INV-1"})
	paid := paymentEvent("evt_paid", "invoice.paid", time.Hour)
	f.send(0, paid, paymentEvent("evt_finalized", "invoice.finalized", 0), paid)
	f.runPayments()

	r := f.result()
	require.Equal(t, api.StatusSynced, r.Status)
	require.Equal(t, map[string]string{"stripe invoice": stripeInvoice, "invoice": "INV-1"}, r.ExternalIDs)
	require.Equal(t, "paid", p.statusOf("INV-1"), "the older invoice.finalized did not reopen it")
	applied := f.audited("payment_status_applied")
	require.Len(t, applied, 1)
	require.Equal(t, "evt_paid", applied[0].Details["event"])
	require.Equal(t, "invoice.paid (evt_paid): invoice INV-1 is paid (was none)", applied[0].Reason)
	ignored := f.audited("payment_event_ignored")
	require.Len(t, ignored, 2)
	require.Equal(t, "evt_finalized", ignored[0].Details["event"])
	require.Contains(t, ignored[0].Reason, "older than the invoice's status: evt_finalized reports open as of 2026-11-27T09:00:00Z, and invoice INV-1 is paid as of 2026-11-27T10:00:00Z")
	require.Equal(t, "evt_paid", ignored[1].Details["event"])
	require.Contains(t, ignored[1].Reason, "evt_paid was handled before (applied): a re-delivery, applied once")
	require.Empty(t, f.notified, "only a failed payment tells finance")
	require.Equal(t, "synced Running→Synced system", f.actions()[len(f.actions())-1])
	f.requireAuditSequence()
}

func TestAFailedPaymentTellsFinanceOnceUnlessSettledSince(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	p := newFakePayments(f, map[string]string{stripeInvoice: "INV-1"})
	failed := paymentEvent("evt_failed", "invoice.payment_failed", time.Minute)
	late := paymentEvent("evt_failed_late", "invoice.payment_failed", 0) // delivered after the payment
	f.send(0, failed, failed, paymentEvent("evt_paid", "invoice.paid", time.Hour), late)
	f.runPayments()

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, "paid", p.statusOf("INV-1"))
	require.Len(t, f.notified, 2, "the re-delivery asks again, under the same key: the chat activity posts once per key")
	for _, n := range f.notified {
		require.Equal(t, "finance", n.Team)
		require.Equal(t, "invoice-payments:in_1/payment-failed/evt_failed", n.Key)
		require.Equal(t, "A payment of invoice INV-1 (Stripe invoice in_1) failed at 2026-11-27T09:01:00Z. EUR 150.00 remains due. "+
			"Stripe retries as its settings say; if it keeps failing, contact the customer. Event evt_failed.", n.Text)
	}
}

func TestAnUnknownInvoiceWaitsForFinanceAndAppliesOnRetry(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	f.quiet()
	p := newFakePayments(f, map[string]string{})
	f.send(0, paymentEvent("evt_paid", "invoice.paid", time.Hour))
	f.send(time.Minute, paymentEvent("evt_sent", "invoice.sent", 0)) // arrives while it waits
	f.at(2*time.Minute, func() {
		s := f.state()
		require.Equal(t, api.StatusBlocked, s.Status)
		require.Equal(t, api.UnknownInvoice, s.Exception.Kind)
		require.Equal(t, "finance", s.Exception.Deciders)
		require.Equal(t, []api.Action{api.ActionRetry, api.ActionResolve, api.ActionCancel}, s.Exception.Decisions)
		require.Contains(t, s.Exception.Summary, "Stripe reported invoice.paid (evt_paid) about an invoice signalbox does not know: "+
			"no invoice in PostgreSQL has ID INV-1 (from the Stripe invoice's metadata) or Stripe invoice ID in_1. Create or link the invoice, then retry")
		require.Equal(t, "evt_paid", s.Exception.Details["event"])
		require.Equal(t, "INV-1", s.Exception.Details["invoice (Stripe metadata)"])
		p.mu.Lock()
		p.invoices[stripeInvoice] = "INV-1" // finance linked it
		p.mu.Unlock()
		f.decide("retry", api.Decision{Action: api.ActionRetry, Actor: "carol", Reason: "INV-1 was imported late"})
	})
	f.runPayments()

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.NoError(t, f.updates["retry"].err)
	require.Equal(t, "paid", p.statusOf("INV-1"))
	require.Equal(t, []string{"evt_paid", "evt_paid", "evt_sent"}, p.calls, "the event waited for, then the one queued behind it")
	require.Len(t, f.audited("payment_status_applied"), 1)
	require.Len(t, f.audited("payment_event_ignored"), 1, "invoice.sent is older than the payment")
	require.Contains(t, f.actions(), "retry Blocked→Running carol")
}

func TestEndingAnItemThatWaitsRecordsTheEventsItDidNotApply(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	f.quiet()
	newFakePayments(f, map[string]string{})
	f.send(0, paymentEvent("evt_paid", "invoice.paid", time.Hour))
	f.send(time.Minute, paymentEvent("evt_sent", "invoice.sent", 0))
	f.at(2*time.Minute, func() {
		f.decide("resolve", api.Decision{Action: api.ActionResolve, Actor: "carol", Reason: "a test-mode invoice, not ours", ExternalRef: "stripe test mode"})
	})
	f.runPayments()

	require.Equal(t, api.StatusManuallyResolved, f.result().Status)
	left := f.audited("payment_event_not_applied")
	require.Len(t, left, 2, "nothing is dropped silently")
	require.Equal(t, "evt_paid", left[0].Details["event"])
	require.Equal(t, "evt_sent", left[1].Details["event"])
	require.Contains(t, left[0].Reason, "the item ended ManuallyResolved by carol before it applied this event")
}

func TestAReconcileEventIsAuditedAsARepairOfItsRun(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	f.quiet()
	p := newFakePayments(f, map[string]string{stripeInvoice: "INV-1"})
	repair := api.PaymentEvent{ID: api.ReconcilePaymentEventID("42", "INV-1"), Type: api.PaymentEventReconcile, Created: created,
		StripeInvoiceID: stripeInvoice, InvoiceID: "INV-1", Status: "paid"}
	f.send(0, repair)
	f.runPayments()

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, "paid", p.statusOf("INV-1"))
	repaired := f.audited("repaired")
	require.Len(t, repaired, 1)
	require.Equal(t, "42", repaired[0].Details["reconcileRun"])
	require.Equal(t, "reconcile-42-INV-1", repaired[0].Details["event"])
	require.Equal(t, "reconcile run 42 found Stripe's status paid, which no webhook had brought: invoice INV-1 is paid (was none)", repaired[0].Reason)
}

func TestAnInvalidPaymentEventIsAuditedNotApplied(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	f.quiet()
	p := newFakePayments(f, map[string]string{stripeInvoice: "INV-1", "in_2": "INV-2"})
	other := paymentEvent("evt_other", "invoice.paid", 0)
	other.StripeInvoiceID = "in_2"
	f.send(0, map[string]any{"id": "", "type": "charge.refunded"}, "not an event", other, paymentEvent("evt_ok", "invoice.finalized", 0))
	f.runPayments()

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, []string{"evt_ok"}, p.calls)
	refused := f.audited("payment_event_refused")
	require.Len(t, refused, 3)
	require.Contains(t, refused[0].Reason, `type: "charge.refunded" is not an invoice event invoice-payments applies`)
	require.Contains(t, refused[0].Reason, "id: is required")
	require.Contains(t, refused[1].Reason, "it is not an api.PaymentEvent")
	require.Contains(t, refused[2].Reason, "it is about Stripe invoice in_2, and this item applies in_1's events only")
}

func TestEventsSignalledWhileItAppliesAreNotLost(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	f.quiet()
	p := &fakePayments{invoices: map[string]string{stripeInvoice: "INV-1"}, status: map[string]store.PaymentStatus{}, handled: map[string]string{}}
	f.env.OnActivity(paymentActivities.ApplyPaymentEvent, mock.Anything, mock.Anything).After(10 * time.Millisecond).Return(p.apply)
	var want []string
	for i := range 12 {
		id := fmt.Sprintf("evt_%02d", i)
		want = append(want, id)
		f.send(time.Duration(i*7)*time.Millisecond, paymentEvent(id, "invoice.sent", time.Duration(i)*time.Second))
	}
	f.runPayments()

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, want, p.calls, "every event, in the order it arrived")
}

func TestALongStreamOfEventsGoesOnInANewRun(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	f.quiet()
	p := newFakePayments(f, map[string]string{stripeInvoice: "INV-1"})
	var events []any
	for i := range maxEventsPerRun + 3 {
		events = append(events, paymentEvent(fmt.Sprintf("evt_%03d", i), "invoice.sent", time.Duration(i)*time.Second))
	}
	f.send(0, events...)
	f.runPayments(paymentEvent("evt_handed_on", "invoice.finalized", -time.Hour))

	err := f.env.GetWorkflowError()
	require.True(t, workflow.IsContinueAsNewError(err), "%v", err)
	require.Len(t, p.calls, maxEventsPerRun)
	require.Equal(t, "evt_handed_on", p.calls[0], "what a previous run handed on comes first")
	var next *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &next))
	var in api.InvoicePaymentsInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(next.Input, &in))
	require.Len(t, in.Pending, 4, "the events this run did not apply go on")
	require.Equal(t, fmt.Sprintf("evt_%03d", maxEventsPerRun-1), in.Pending[0].ID)
	require.Contains(t, f.actions(), "continued Running→Running system")
}

// An event signalled while the item records that it ended is not lost with
// the run: the item goes on in a new run that applies it.
func TestAnEventSignalledAsTheItemEndsGoesOnInANewRun(t *testing.T) {
	t.Parallel()
	f := newPaymentsFixture(t)
	f.quiet()
	p := newFakePayments(f, map[string]string{stripeInvoice: "INV-1"})
	late := paymentEvent("evt_late", "invoice.paid", time.Hour)
	f.onAudit = func(events []store.AuditEvent) {
		for _, e := range events {
			if e.Action == "synced" {
				f.onAudit = nil
				f.env.SignalWorkflow(api.SignalPaymentEvent, late)
			}
		}
	}
	f.send(0, paymentEvent("evt_first", "invoice.finalized", 0))
	f.runPayments()

	err := f.env.GetWorkflowError()
	require.True(t, workflow.IsContinueAsNewError(err), "%v", err)
	require.Equal(t, []string{"evt_first"}, p.calls)
	var next *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &next))
	var in api.InvoicePaymentsInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(next.Input, &in))
	require.Equal(t, []api.PaymentEvent{late}, in.Pending, "the late event goes on")
}
