package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

// billedInvoice stores invoice id billed as Stripe invoice stripeID (if
// any), with the status billing wrote back (if any).
func billedInvoice(t *testing.T, s *store.Store, id, stripeID, status string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.InsertInvoice(ctx, store.Invoice{ID: id, CustomerID: "C-1", CustomerName: "Acme", CustomerEmail: "ap@acme.test",
		Currency: "eur", DueDate: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), Status: store.InvoiceReady,
		Lines: []store.InvoiceLine{{LineNo: 1, Description: "Licence", Quantity: 1, UnitAmount: 100}}}))
	if stripeID != "" {
		_, err := s.SetBillingState(ctx, id, store.BillingState{Status: store.InvoiceBilled, StripeInvoiceID: stripeID, StripeStatus: status})
		require.NoError(t, err)
	}
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func event(id, typ, status string, created time.Time, stripeID, ours string) store.PaymentEvent {
	return store.PaymentEvent{ID: id, Type: typ, Status: status, Created: created, StripeInvoiceID: stripeID, InvoiceID: ours}
}

func TestPaymentEventsApplyOnceAndInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	billedInvoice(t, s, "INV-1", "in_1", "open")

	paid := event("evt_paid", "invoice.paid", "paid", t0.Add(time.Minute), "in_1", "INV-1")
	out, err := s.ApplyPaymentEvent(ctx, paid)
	require.NoError(t, err)
	require.Equal(t, store.PaymentApplied, out.Outcome)
	require.False(t, out.Duplicate)
	require.Equal(t, "INV-1", out.InvoiceID)
	require.Equal(t, store.PaymentStatus{Status: "open"}, out.Before, "billing wrote open, without a time")
	require.Equal(t, store.PaymentStatus{Status: "paid", At: t0.Add(time.Minute)}, out.Now)

	again, err := s.ApplyPaymentEvent(ctx, paid)
	require.NoError(t, err)
	require.True(t, again.Duplicate, "the same event is applied once")
	require.Equal(t, store.PaymentApplied, again.Outcome, "as it was the first time")
	require.Equal(t, out.Now, again.Now)

	older, err := s.ApplyPaymentEvent(ctx, event("evt_fin", "invoice.finalized", "open", t0, "in_1", "INV-1"))
	require.NoError(t, err)
	require.Equal(t, store.PaymentOlder, older.Outcome, "an older event never overwrites a newer status")
	st, err := s.InvoicePaymentStatus(ctx, "INV-1")
	require.NoError(t, err)
	require.Equal(t, out.Now, st)
	inv, err := s.GetInvoice(ctx, "INV-1")
	require.NoError(t, err)
	require.Equal(t, "paid", inv.StripeStatus)

	// An older event handed again is still older, and recorded as handled.
	olderAgain, err := s.ApplyPaymentEvent(ctx, event("evt_fin", "invoice.finalized", "open", t0, "in_1", "INV-1"))
	require.NoError(t, err)
	require.True(t, olderAgain.Duplicate)
	require.Equal(t, store.PaymentOlder, olderAgain.Outcome)
}

func TestPaymentEventsAtTheSameTimeFollowTheLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	billedInvoice(t, s, "INV-2", "in_2", "")
	apply := func(id, status string, at time.Time) string {
		out, err := s.ApplyPaymentEvent(ctx, event(id, "invoice.x", status, at, "in_2", "INV-2"))
		require.NoError(t, err)
		return out.Outcome
	}
	require.Equal(t, store.PaymentApplied, apply("e1", "open", t0))
	require.Equal(t, store.PaymentApplied, apply("e2", "uncollectible", t0), "uncollectible comes after open")
	require.Equal(t, store.PaymentOlder, apply("e3", "open", t0), "open does not come after uncollectible")
	require.Equal(t, store.PaymentApplied, apply("e4", "paid", t0))
	require.Equal(t, store.PaymentOlder, apply("e5", "void", t0), "paid and void are both final: the first stays")
	require.Equal(t, store.PaymentOlder, apply("e6", "uncollectible", t0.Add(-time.Second)))
	require.Equal(t, store.PaymentApplied, apply("e7", "void", t0.Add(time.Second)), "a newer event wins")
}

func TestAPaymentStatusBillingWroteYieldsOnlyForward(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	// A re-sync read "paid" from Stripe; a late invoice.finalized must not
	// reopen it, though billing recorded no time.
	billedInvoice(t, s, "INV-3", "in_3", "paid")
	out, err := s.ApplyPaymentEvent(ctx, event("e1", "invoice.finalized", "open", t0, "in_3", "INV-3"))
	require.NoError(t, err)
	require.Equal(t, store.PaymentOlder, out.Outcome)
	out, err = s.ApplyPaymentEvent(ctx, event("e2", "invoice.paid", "paid", t0, "in_3", "INV-3"))
	require.NoError(t, err)
	require.Equal(t, store.PaymentApplied, out.Outcome, "the same status gains its time")
	require.Equal(t, store.PaymentStatus{Status: "paid", At: t0}, out.Now)
}

func TestPaymentEventsFindTheirInvoice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	billedInvoice(t, s, "INV-4", "in_4", "open")
	billedInvoice(t, s, "INV-5a", "in_5", "open")
	billedInvoice(t, s, "INV-5b", "in_5", "open")
	billedInvoice(t, s, "INV-6", "in_6b", "open")
	billedInvoice(t, s, "INV-7", "", "")

	cases := []struct {
		name      string
		ev        store.PaymentEvent
		outcome   string
		invoice   string
		billedAs  string
		candidate []string
	}{
		{"by Stripe invoice, without metadata", event("e4", "invoice.paid", "paid", t0, "in_4", ""), store.PaymentApplied, "INV-4", "", nil},
		{"metadata naming no invoice: by Stripe invoice", event("e4b", "invoice.sent", "open", t0.Add(time.Hour), "in_4", "INV-gone"), store.PaymentApplied, "INV-4", "", nil},
		{"several invoices carry it", event("e5", "invoice.paid", "paid", t0, "in_5", ""), store.PaymentAmbiguous, "", "", []string{"INV-5a", "INV-5b"}},
		{"metadata settles it", event("e5b", "invoice.paid", "paid", t0, "in_5", "INV-5b"), store.PaymentApplied, "INV-5b", "", nil},
		{"billed as another Stripe invoice now", event("e6", "invoice.voided", "void", t0, "in_6a", "INV-6"), store.PaymentSuperseded, "INV-6", "in_6b", nil},
		{"no Stripe invoice recorded yet: by metadata", event("e7", "invoice.finalized", "open", t0, "in_7", "INV-7"), store.PaymentApplied, "INV-7", "", nil},
		{"unknown", event("e8", "invoice.paid", "paid", t0, "in_8", "INV-8"), store.PaymentUnknown, "", "", nil},
	}
	for _, c := range cases {
		out, err := s.ApplyPaymentEvent(ctx, c.ev)
		require.NoError(t, err, c.name)
		require.Equal(t, c.outcome, out.Outcome, c.name)
		require.Equal(t, c.invoice, out.InvoiceID, c.name)
		require.Equal(t, c.billedAs, out.BilledAs, c.name)
		require.Equal(t, c.candidate, out.Candidates, c.name)
	}
	st, err := s.InvoicePaymentStatus(ctx, "INV-6")
	require.NoError(t, err)
	require.Equal(t, "open", st.Status, "a superseded Stripe invoice's event changes nothing")

	// Unknown and ambiguous events are not recorded: once the invoice
	// exists, the same event applies.
	billedInvoice(t, s, "INV-8", "in_8", "open")
	out, err := s.ApplyPaymentEvent(ctx, event("e8", "invoice.paid", "paid", t0, "in_8", "INV-8"))
	require.NoError(t, err)
	require.Equal(t, store.PaymentApplied, out.Outcome)
	require.False(t, out.Duplicate)

	_, err = s.InvoicePaymentStatus(ctx, "INV-none")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestStripeDeliveriesAreClaimedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	d := store.StripeDelivery{Digest: "d1", EventID: "evt_1", SignedAt: t0}
	claimed, err := s.ClaimStripeDelivery(ctx, d, t0.Add(-5*time.Minute))
	require.NoError(t, err)
	require.True(t, claimed)
	claimed, err = s.ClaimStripeDelivery(ctx, d, t0.Add(-5*time.Minute))
	require.NoError(t, err)
	require.False(t, claimed, "the same delivery again is a replay")

	redelivered := store.StripeDelivery{Digest: "d2", EventID: "evt_1", SignedAt: t0.Add(time.Minute)}
	claimed, err = s.ClaimStripeDelivery(ctx, redelivered, t0.Add(-5*time.Minute))
	require.NoError(t, err)
	require.True(t, claimed, "Stripe's re-delivery of the event is signed anew: another delivery")

	require.NoError(t, s.ReleaseStripeDelivery(ctx, "d2"))
	claimed, err = s.ClaimStripeDelivery(ctx, redelivered, t0.Add(-5*time.Minute))
	require.NoError(t, err)
	require.True(t, claimed, "a released delivery was never taken")

	// Past the tolerance a delivery is forgotten (the signature check
	// refuses it as stale before it gets here).
	claimed, err = s.ClaimStripeDelivery(ctx, d, t0.Add(time.Second))
	require.NoError(t, err)
	require.True(t, claimed)
}

// Billing's write of the status it saw at finalize may come after a webhook
// applied a later one: it does not move the status back.
func TestBillingDoesNotWriteOverAStatusAnEventSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	billedInvoice(t, s, "INV-1", "", "")
	_, err := s.SetBillingState(ctx, "INV-1", store.BillingState{StripeInvoiceID: "in_1"})
	require.NoError(t, err)
	_, err = s.ApplyPaymentEvent(ctx, event("evt_paid", "invoice.paid", "paid", t0, "in_1", "INV-1"))
	require.NoError(t, err)

	_, err = s.SetBillingState(ctx, "INV-1", store.BillingState{Status: store.InvoiceBilled, StripeInvoiceID: "in_1", StripeStatus: "open"})
	require.NoError(t, err)
	inv, err := s.GetInvoice(ctx, "INV-1")
	require.NoError(t, err)
	require.Equal(t, "paid", inv.StripeStatus)
	require.Equal(t, store.InvoiceBilled, inv.Status, "the rest of billing's write applies")
}

// A paid status billing wrote over an event's open does not keep that
// event's time: a delayed event from between the two cannot take the
// invoice back to open.
func TestAStatusBillingWroteOverAnEventIsNotUndoneByAnOlderOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	billedInvoice(t, s, "INV-1", "in_1", "")
	_, err := s.ApplyPaymentEvent(ctx, event("evt_fin", "invoice.finalized", "open", t0, "in_1", "INV-1"))
	require.NoError(t, err)
	_, err = s.SetBillingState(ctx, "INV-1", store.BillingState{Status: store.InvoiceBilled, StripeInvoiceID: "in_1", StripeStatus: "paid"})
	require.NoError(t, err)

	_, err = s.ApplyPaymentEvent(ctx, event("evt_failed", "invoice.payment_failed", "open", t0.Add(time.Minute), "in_1", "INV-1"))
	require.NoError(t, err)
	st, err := s.InvoicePaymentStatus(ctx, "INV-1")
	require.NoError(t, err)
	require.Equal(t, "paid", st.Status)
}
