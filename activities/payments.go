package activities

import (
	"context"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// Payments holds the local activity that applies Stripe's payment events to
// the invoices in PostgreSQL.
type Payments struct {
	Store *store.Store
}

// ApplyPaymentEventInput is one event to apply.
type ApplyPaymentEventInput struct {
	Event api.PaymentEvent
}

// ApplyPaymentEvent sets the status the event reports on its invoice: once
// per event ID, and never over a status a newer event set (see
// store.ApplyPaymentEvent). An invoice no one knows is an outcome
// (store.PaymentUnknown, store.PaymentAmbiguous), not an error: the item asks
// finance about it and hands the same event again when told to retry.
func (a *Payments) ApplyPaymentEvent(ctx context.Context, in ApplyPaymentEventInput) (store.PaymentOutcome, error) {
	e := in.Event
	out, err := a.Store.ApplyPaymentEvent(ctx, store.PaymentEvent{ID: e.ID, Type: e.Type, Created: e.Created,
		StripeInvoiceID: e.StripeInvoiceID, InvoiceID: e.InvoiceID, Status: e.Status})
	return out, Classify(err)
}
