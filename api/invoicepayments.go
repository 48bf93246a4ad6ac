package api

import (
	"time"
)

// IntegrationInvoicePayments is the name of the Stripe → PostgreSQL payment
// status integration: Stripe's webhooks (and reconciliation) tell it what
// became of a billed invoice.
const IntegrationInvoicePayments = "invoice-payments"

// UnknownInvoice: Stripe reported an event for an invoice signalbox does not
// know (no invoice in PostgreSQL carries its ID).
const UnknownInvoice ExceptionKind = "UnknownInvoice"

// SignalPaymentEvent hands an invoice-payments item one PaymentEvent.
const SignalPaymentEvent = "payment-event"

// PaymentEvent is what an invoice-payments item applies: one Stripe event
// about an invoice (from a verified webhook), or the state reconciliation
// read from Stripe. Items apply events idempotently by ID and in order of
// Created: an older event never overwrites a newer status.
type PaymentEvent struct {
	// ID is Stripe's event ID (evt_…), or "reconcile-<run>-<invoice>" for a
	// state read by reconcile run <run>.
	ID string `json:"id"`
	// Type is Stripe's event type (invoice.paid, …), or "reconcile".
	Type string `json:"type"`
	// Created is when Stripe created the event (for reconciliation: when the
	// invoice reached its current status).
	Created time.Time `json:"created"`
	// StripeInvoiceID is Stripe's invoice (in_…): the item's key.
	StripeInvoiceID string `json:"stripeInvoiceId"`
	// InvoiceID is ours, from the Stripe invoice's metadata; may be empty.
	InvoiceID string `json:"invoiceId,omitempty"`
	// Status is the Stripe invoice's status the event reports (open, paid,
	// void, uncollectible).
	Status string `json:"status"`
	// AmountDue and AmountPaid are in minor units of Currency.
	AmountDue  int64  `json:"amountDue"`
	AmountPaid int64  `json:"amountPaid"`
	Currency   string `json:"currency,omitempty"`
}
