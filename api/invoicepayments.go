package api

import (
	"context"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
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

// PaymentEventReconcile is the Type of a PaymentEvent that a reconcile run
// built from Stripe's invoice as it is now (a webhook that never arrived).
// Items apply it like Stripe's own events and audit it as a repair found by
// that run.
const PaymentEventReconcile = "reconcile"

// EventInvoicePaymentFailed is the Stripe event that tells finance.
const EventInvoicePaymentFailed = "invoice.payment_failed"

// PaymentEventStatus is the status of the Stripe invoice an event of type typ
// reports, for the Stripe event types invoice-payments applies; ok is false
// for any other type (their webhooks are acknowledged and ignored).
// invoice.finalized and invoice.sent set open, as the others set their
// status: under the same rules of order, so they never take a later status back.
func PaymentEventStatus(typ string) (status string, ok bool) {
	switch typ {
	case "invoice.paid":
		return "paid", true
	case EventInvoicePaymentFailed, "invoice.finalized", "invoice.sent":
		return "open", true
	case "invoice.voided":
		return "void", true
	case "invoice.marked_uncollectible":
		return "uncollectible", true
	}
	return "", false
}

// InvoicePaymentStatuses are the statuses a Stripe invoice can have.
var InvoicePaymentStatuses = []string{"draft", "open", "paid", "uncollectible", "void"}

// Check says what is wrong with an event, every problem at once: an item
// refuses (and audits) an event that fails it instead of applying it.
func (e PaymentEvent) Check() FieldErrors {
	var errs FieldErrors
	if strings.TrimSpace(e.ID) == "" {
		errs.Add("id", "is required: Stripe's event ID, or reconcile-<run>-<invoice>")
	}
	if _, ok := PaymentEventStatus(e.Type); !ok && e.Type != PaymentEventReconcile {
		errs.Add("type", "%q is not an invoice event invoice-payments applies, nor %q", e.Type, PaymentEventReconcile)
	}
	if e.Type == PaymentEventReconcile && !strings.HasPrefix(e.ID, "reconcile-") {
		errs.Add("id", "a reconcile event's ID is reconcile-<run>-<invoice>")
	}
	if e.Created.IsZero() {
		errs.Add("created", "is required: when Stripe created the event (or the invoice reached its status)")
	}
	if err := CheckSourceKey(e.StripeInvoiceID); err != nil {
		errs.Add("stripeInvoiceId", "%v", err)
	}
	if err := CheckSourceKey(e.InvoiceID); e.InvoiceID != "" && err != nil {
		errs.Add("invoiceId", "%v", err)
	}
	if !slices.Contains(InvoicePaymentStatuses, e.Status) {
		errs.Add("status", "%q is not a Stripe invoice status (%s)", e.Status, strings.Join(InvoicePaymentStatuses, ", "))
	}
	return errs
}

// ReconcilePaymentEventID is the ID of the event reconcile run `run` hands
// an invoice's item: "reconcile-<run>-<invoice>" (run holds no '-'). The same
// run finding the same invoice twice hands the same event, applied once.
func ReconcilePaymentEventID(run, invoice string) string {
	return "reconcile-" + run + "-" + invoice
}

// ReconcileRun is the reconcile run a reconcile event came from ("" for
// Stripe's own events).
func (e PaymentEvent) ReconcileRun() string {
	if e.Type != PaymentEventReconcile {
		return ""
	}
	run, _, _ := strings.Cut(strings.TrimPrefix(e.ID, "reconcile-"), "-")
	return run
}

// InvoicePaymentsInput starts an invoice-payments item. Its events arrive by
// signal (SignalPaymentEvent); Pending are those a previous run of the item
// handed on when it continued as new.
type InvoicePaymentsInput struct {
	ItemInput
	Pending []PaymentEvent `json:"pending,omitempty"`
}

// SendPaymentEvent hands ev to its invoice's item (keyed by the Stripe
// invoice), starting the item if it does not run: Signal-With-Start, so that
// no event waits for an item to end. The webhook intake and reconciliation
// both deliver events this way; startedBy says which, for the audit trail.
// Once it returns nil, Temporal holds the event.
func SendPaymentEvent(ctx context.Context, c client.Client, ev PaymentEvent, startedBy string) (client.WorkflowRun, error) {
	spec := InvoicePaymentsSpec()
	opts := StartOptions(spec, ev.StripeInvoiceID)
	return c.SignalWithStartWorkflow(ctx, opts.ID, SignalPaymentEvent, ev, opts, spec.WorkflowType,
		InvoicePaymentsInput{ItemInput: ItemInput{StartedBy: startedBy}})
}

// InvoicePaymentsSpec declares the Stripe → PostgreSQL payment status
// integration: one item per Stripe invoice, started by the first event about
// it and ending once it has applied every event it was handed.
func InvoicePaymentsSpec() Spec {
	return Spec{
		Name:         IntegrationInvoicePayments,
		WorkflowType: "InvoicePayments",
		Title:        "Stripe payment status → invoices",
		Description: "Stripe's signed webhooks about a billed invoice (paid, payment failed, voided, uncollectible, finalized, sent), " +
			"and the statuses reconciliation reads from Stripe, set the invoice's stripe_status in PostgreSQL: each event once, " +
			"in the order Stripe created them. A failed payment tells finance.",
		Owner:  "finance",
		Source: SystemStripe,
		Target: "postgres",
		Fields: []Field{
			{Name: "payment status", TargetName: "invoices.stripe_status", Owner: SystemStripe, Direction: DirToTarget, Rule: RuleOwnerWins, Required: true,
				Description: "the Stripe invoice's status (open, paid, void, uncollectible); an older event never overwrites a newer one"},
			{Name: "status time", TargetName: "invoices.stripe_status_at", Owner: SystemStripe, Direction: DirToTarget,
				Description: "when Stripe created the event that set the status; equal times: open < uncollectible < paid, void"},
			{Name: "invoice ID", TargetName: "invoices.id", Owner: "postgres",
				Description: "from the Stripe invoice's metadata signalbox_invoice_id; without it, invoices.stripe_invoice_id finds the invoice"},
		},
		Exceptions: append([]ExceptionSpec{
			{Kind: UnknownInvoice, Status: StatusBlocked,
				When:      "Stripe reported an event about an invoice no invoice in PostgreSQL matches (by its metadata's ID, else by Stripe invoice ID)",
				Decisions: []Action{ActionRetry, ActionResolve, ActionCancel}, Deciders: "finance", SLA: 4 * time.Hour},
			// Its only external step is telling finance: a refused post is
			// retried or resolved; there is nothing to amend, and nobody
			// else edits what it writes.
		}, WithoutKinds(WithoutDecision(TechnicalExceptions(time.Hour), ActionAmend), Conflict)...),
	}
}
