package workflows

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

var _ = define(invoicePayments)

var paymentActivities *activities.Payments

// invoicePayments is the Stripe → PostgreSQL payment status integration;
// api.InvoicePaymentsSpec declares it. It has no intake route or command of
// its own: the starter's Stripe webhook (POST /v1/webhooks/stripe) and
// reconciliation hand events to its items with api.SendPaymentEvent.
func invoicePayments() spine.Integration {
	return spine.Integration{
		Spec:     api.InvoicePaymentsSpec(),
		Workflow: InvoicePayments,
		Activities: []spine.Activities{
			spine.On(api.TaskQueueIntegrations, func(d spine.Deps) *activities.Payments { return &activities.Payments{Store: d.Store} }),
		},
	}
}

// maxEventsPerRun bounds the events one run applies; the rest go on in a new
// run of the item, so that a run's history stays bounded.
const maxEventsPerRun = 100

// InvoicePayments applies the payment events of one Stripe invoice (the
// item's key) to its invoice in PostgreSQL, each once and in the order Stripe
// created them, and ends Synced when none is left. Events arrive by signal
// (api.SignalPaymentEvent); one that arrives after the item ended starts a
// new run.
func InvoicePayments(ctx workflow.Context, in api.InvoicePaymentsInput) (api.Result, error) {
	p := &paymentsRun{spec: api.InvoicePaymentsSpec(), queued: in.Pending}
	return spine.Run(ctx, invoicePayments(), in.ItemInput, spine.Hooks{Ended: p.ended, Leftover: p.leftover}, p.run)
}

// paymentsRun is the state of one InvoicePayments run.
type paymentsRun struct {
	spec   api.Spec
	events workflow.ReceiveChannel
	// queued are the events a previous run handed on; they come first.
	queued []api.PaymentEvent
	// current is the event being applied, until its invoice was found.
	current *api.PaymentEvent
	it      *spine.Item
}

// leftover passes events signalled while the item recorded its end to a new
// run of the item: the last check of the channel is in the workflow task that
// completes the run, so none is lost with it.
func (p *paymentsRun) leftover(ctx workflow.Context) error {
	var pending []api.PaymentEvent
	for p.events != nil && p.events.Len() > 0 {
		rest, err := p.rest(ctx, p.it)
		if err != nil {
			return err
		}
		pending = append(pending, rest...)
	}
	if len(pending) == 0 {
		return nil
	}
	return workflow.NewContinueAsNewError(ctx, InvoicePayments, api.InvoicePaymentsInput{
		ItemInput: api.ItemInput{StartedBy: "continued"}, Pending: pending})
}

func (p *paymentsRun) run(ctx workflow.Context, it *spine.Item) error {
	p.events = workflow.GetSignalChannelWithOptions(ctx, api.SignalPaymentEvent, workflow.SignalChannelOptions{
		Description: "One Stripe event about this item's invoice (api.PaymentEvent), applied once and in order of created",
	})
	p.it = it
	it.SetExternalID(api.ExternalStripeInvoice, it.Key())
	for applied := 0; ; applied++ {
		ev, ok, err := p.next(ctx, it)
		if err != nil || !ok {
			// No event left: the item ends, and it checked the channel in
			// the same workflow task as it completes, so a signal arriving
			// meanwhile makes Temporal run this again with it.
			return err
		}
		if applied == maxEventsPerRun {
			rest, err := p.rest(ctx, it)
			if err != nil {
				return err
			}
			return workflow.NewContinueAsNewError(ctx, InvoicePayments, api.InvoicePaymentsInput{
				ItemInput: api.ItemInput{StartedBy: "continued"}, Pending: append([]api.PaymentEvent{ev}, rest...)})
		}
		if err := p.apply(ctx, it, ev); err != nil {
			return err
		}
	}
}

// next is the next event to apply: those handed on first, then those
// signalled. A signal that is no valid event for this item is audited and
// skipped, never applied.
func (p *paymentsRun) next(ctx workflow.Context, it *spine.Item) (api.PaymentEvent, bool, error) {
	for {
		if len(p.queued) > 0 {
			ev := p.queued[0]
			p.queued = p.queued[1:]
			return ev, true, nil
		}
		// RawMessage takes any JSON, so a malformed event reaches us and is
		// audited instead of failing the workflow task.
		var raw json.RawMessage
		if !p.events.ReceiveAsync(&raw) {
			return api.PaymentEvent{}, false, nil
		}
		ev, problem := decodePaymentEvent(raw, it.Key())
		if problem == "" {
			return ev, true, nil
		}
		payload := string(raw)
		if len(payload) > 1000 || !utf8.ValidString(payload) {
			payload = strings.ToValidUTF8(payload[:min(len(payload), 1000)], "?")
		}
		err := it.Audit(ctx, "payment_event_refused", "a payment event signalled to this item was refused, nothing applied: "+problem,
			map[string]any{"payload": payload})
		if err != nil {
			return api.PaymentEvent{}, false, err
		}
	}
}

// rest takes every event still queued or signalled.
func (p *paymentsRun) rest(ctx workflow.Context, it *spine.Item) ([]api.PaymentEvent, error) {
	var out []api.PaymentEvent
	for {
		ev, ok, err := p.next(ctx, it)
		if err != nil || !ok {
			return out, err
		}
		out = append(out, ev)
	}
}

// decodePaymentEvent reads a signalled event, or says what is wrong with it.
func decodePaymentEvent(raw json.RawMessage, key string) (api.PaymentEvent, string) {
	var ev api.PaymentEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, "it is not an api.PaymentEvent (" + err.Error() + ")"
	}
	if errs := ev.Check(); len(errs) > 0 {
		return ev, errs.Error()
	}
	if ev.StripeInvoiceID != key {
		return ev, fmt.Sprintf("it is about Stripe invoice %s, and this item applies %s's events only", ev.StripeInvoiceID, key)
	}
	return ev, ""
}

// apply applies one event to its invoice, waiting for finance while no
// invoice matches; then audits what it did and tells finance of a failed
// payment.
func (p *paymentsRun) apply(ctx workflow.Context, it *spine.Item, ev api.PaymentEvent) error {
	p.current = &ev
	var r store.PaymentOutcome
	for {
		err := it.Call(ctx, fmt.Sprintf("Apply %s (%s) to the invoice in PostgreSQL", ev.Type, ev.ID), paymentActivities.ApplyPaymentEvent,
			activities.ApplyPaymentEventInput{Event: ev}, &r)
		if err != nil {
			return err
		}
		if r.Outcome != store.PaymentUnknown && r.Outcome != store.PaymentAmbiguous {
			break
		}
		summary, details := unknownInvoice(ev, r)
		if _, err := it.Raise(ctx, api.UnknownInvoice, summary, details); err != nil {
			return err
		}
		// retry: apply it again, now that someone created or linked it.
	}
	p.current = nil
	it.SetExternalID(api.ExternalInvoice, r.InvoiceID)
	action, reason := paymentAudit(ev, r)
	details := eventDetails(ev)
	details["outcome"], details["invoice"] = r.Outcome, r.InvoiceID
	details["before"], details["after"] = r.Before, r.Now
	if err := it.Audit(ctx, action, reason, details); err != nil {
		return err
	}
	return p.tellFinance(ctx, it, ev, r)
}

// unknownInvoice is what finance is told about an event no invoice matches.
func unknownInvoice(ev api.PaymentEvent, r store.PaymentOutcome) (string, map[string]string) {
	details := map[string]string{"event": ev.ID, "type": ev.Type, "created": ev.Created.UTC().Format(time.RFC3339),
		"status": ev.Status, "stripe invoice": ev.StripeInvoiceID}
	if ev.InvoiceID != "" {
		details["invoice (Stripe metadata)"] = ev.InvoiceID
	}
	details["after a decision"] = "retry applies the event again; resolve or cancel end this item, and the events queued behind it are audited as not applied"
	what := "Stripe invoice ID " + ev.StripeInvoiceID
	if ev.InvoiceID != "" {
		what = "ID " + ev.InvoiceID + " (from the Stripe invoice's metadata) or " + what
	}
	if r.Outcome == store.PaymentAmbiguous {
		details["invoices"] = strings.Join(r.Candidates, ", ")
		return fmt.Sprintf("Stripe reported %s (%s), but invoices %s all carry Stripe invoice %s and its metadata names none of them: "+
			"correct their stripe_invoice_id in PostgreSQL, then retry; resolve if it was handled elsewhere", ev.Type, ev.ID,
			strings.Join(r.Candidates, ", "), ev.StripeInvoiceID), details
	}
	return fmt.Sprintf("Stripe reported %s (%s) about an invoice signalbox does not know: no invoice in PostgreSQL has %s. "+
		"Create or link the invoice, then retry; resolve if it was handled elsewhere; cancel if it is not ours", ev.Type, ev.ID, what), details
}

// paymentAudit is the audit action and reason of an event's outcome. A
// reconcile event that set the status is a repair found by its run.
func paymentAudit(ev api.PaymentEvent, r store.PaymentOutcome) (string, string) {
	switch {
	case r.Duplicate:
		return "payment_event_ignored", fmt.Sprintf("%s was handled before (%s): a re-delivery, applied once", ev.ID, r.Outcome)
	case r.Outcome == store.PaymentSuperseded:
		return "payment_event_ignored", fmt.Sprintf("invoice %s is billed as Stripe invoice %s now; this event is about %s, which it no longer is",
			r.InvoiceID, r.BilledAs, ev.StripeInvoiceID)
	case r.Outcome == store.PaymentOlder:
		return "payment_event_ignored", fmt.Sprintf("older than the invoice's status: %s reports %s as of %s, and invoice %s is %s as of %s",
			ev.ID, ev.Status, ev.Created.UTC().Format(time.RFC3339), r.InvoiceID, r.Before.Status, formatStatusTime(r.Before.At))
	case ev.Type == api.PaymentEventReconcile:
		return "repaired", fmt.Sprintf("reconcile run %s found Stripe's status %s, which no webhook had brought: invoice %s is %s (was %s)",
			ev.ReconcileRun(), ev.Status, r.InvoiceID, r.Now.Status, orNone(r.Before.Status))
	}
	return "payment_status_applied", fmt.Sprintf("%s (%s): invoice %s is %s (was %s)", ev.Type, ev.ID, r.InvoiceID, r.Now.Status, orNone(r.Before.Status))
}

// eventDetails are an event's audit details: identifiers, never personal data.
func eventDetails(ev api.PaymentEvent) map[string]any {
	d := map[string]any{"event": ev.ID, "type": ev.Type, "created": ev.Created.UTC().Format(time.RFC3339), "status": ev.Status,
		"stripeInvoice": ev.StripeInvoiceID}
	if run := ev.ReconcileRun(); run != "" {
		d["reconcileRun"] = run
	}
	return d
}

func formatStatusTime(at time.Time) string {
	if at.IsZero() {
		return "its billing (no event time)"
	}
	return at.UTC().Format(time.RFC3339)
}

func orNone(status string) string {
	if status == "" {
		return "none"
	}
	return status
}

// tellFinance tells the owner team of a failed payment, once per event (the
// notification's key is the event's), unless the invoice is paid or void by
// now: a failure a later payment or voiding settled is no news.
func (p *paymentsRun) tellFinance(ctx workflow.Context, it *spine.Item, ev api.PaymentEvent, r store.PaymentOutcome) error {
	if ev.Type != api.EventInvoicePaymentFailed || r.Outcome == store.PaymentSuperseded || r.Now.Status == "paid" || r.Now.Status == "void" {
		return nil
	}
	amount := ""
	if ev.Currency != "" && ev.AmountDue > 0 {
		amount = " " + formatAmount(strings.ToLower(ev.Currency), ev.AmountDue-ev.AmountPaid) + " remains due."
	}
	text := fmt.Sprintf("A payment of invoice %s (Stripe invoice %s) failed at %s.%s Stripe retries as its settings say; "+
		"if it keeps failing, contact the customer. Event %s.", r.InvoiceID, ev.StripeInvoiceID, ev.Created.UTC().Format(time.RFC3339), amount, ev.ID)
	return it.Notify(ctx, "tell finance", p.spec.Owner, "a payment failed", text, it.WorkflowID()+"/payment-failed/"+ev.ID)
}

// ended records, when a decision ended the item, the events it did not
// apply: the one it waited on and those queued behind it. Nothing is
// dropped silently; reconciliation finds the statuses they would have set.
func (p *paymentsRun) ended(ctx workflow.Context, it *spine.Item, end spine.Ended) error {
	var left []api.PaymentEvent
	if p.current != nil {
		left = append(left, *p.current)
	}
	rest, err := p.rest(ctx, it)
	if err != nil {
		return err
	}
	by := ""
	if end.Actor != "" {
		by = " by " + end.Actor
	}
	for _, ev := range append(left, rest...) {
		reason := fmt.Sprintf("not applied: the item ended %s%s before it applied this event; the nightly reconciliation finds the status it reports", end.Status, by)
		if err := it.Audit(ctx, "payment_event_not_applied", reason, eventDetails(ev)); err != nil {
			return err
		}
	}
	return nil
}
