package workflows

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/workflows/spine"

	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/store"
)

// InvoiceInput starts an InvoiceToBilling item; the invoice, whose ID is the
// item's key, is read from PostgreSQL, its source of truth.
type InvoiceInput struct {
	api.ItemInput
}

// Stripe's limits on an invoice.
const (
	maxInvoiceLines = 250
	maxInvoiceTotal = 99_999_999 // minor units
)

// zeroDecimal are the currencies Stripe counts in whole units; the ones
// signalbox bills in are api.InvoiceCurrencies.
var zeroDecimal = api.ZeroDecimalCurrencies

var customerIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validateInvoice returns every problem of the invoice's contract at once.
func validateInvoice(inv store.Invoice) api.FieldErrors {
	var errs api.FieldErrors
	if !customerIDPattern.MatchString(inv.CustomerID) {
		errs.Add("customerId", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	// The header fields are checked as an amendment's values are
	// (api.CheckInvoiceField), so the console judges them alike.
	api.CheckInvoiceField(&errs, "customerName", inv.CustomerName)
	api.CheckInvoiceField(&errs, "customerEmail", inv.CustomerEmail)
	api.CheckInvoiceField(&errs, "currency", inv.Currency)
	if inv.DueDate.IsZero() {
		errs.Add("dueDate", "is required")
	}
	switch {
	case len(inv.Lines) == 0:
		errs.Add("lines", "an invoice needs at least one line")
	case len(inv.Lines) > maxInvoiceLines:
		errs.Add("lines", "at most %d lines", maxInvoiceLines)
	}
	var total int64
	for _, l := range inv.Lines {
		field := fmt.Sprintf("lines[%d]", l.LineNo)
		api.CheckText(&errs, field+".description", l.Description, 500, true)
		if l.Quantity < 1 || l.Quantity > 1_000_000 {
			errs.Add(field+".quantity", "must be between 1 and 1000000")
		}
		if l.UnitAmount <= 0 || l.UnitAmount > maxInvoiceTotal {
			errs.Add(field+".unitAmount", "must be a positive amount in minor units, at most %d", maxInvoiceTotal)
		} else if l.Quantity >= 1 && l.Quantity <= 1_000_000 {
			total += l.Quantity * l.UnitAmount
		}
	}
	if total > maxInvoiceTotal {
		errs.Add("lines", "the total %d exceeds Stripe's maximum of %d minor units", total, int64(maxInvoiceTotal))
	}
	return errs
}

// invoiceTotal sums the lines, in minor units.
func invoiceTotal(inv store.Invoice) int64 {
	var total int64
	for _, l := range inv.Lines {
		total += l.Quantity * l.UnitAmount
	}
	return total
}

// formatAmount prints minor units as "EUR 1,234.50" (or "JPY 1,234").
func formatAmount(currency string, minor int64) string {
	units, cents := minor, int64(-1)
	if !slices.Contains(zeroDecimal, currency) {
		units, cents = minor/100, minor%100
	}
	digits := fmt.Sprint(units)
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if cents >= 0 {
		fmt.Fprintf(&b, ".%02d", cents)
	}
	return strings.ToUpper(currency) + " " + b.String()
}

// withAmendments returns the invoice with the header fields in set changed,
// or the field errors of the amendment (api.Spec.CheckAmendment, the
// console's check too) and of the result.
func withAmendments(inv store.Invoice, set map[string]string) (store.Invoice, error) {
	errs := api.InvoiceToBillingSpec().CheckAmendment(set)
	for field, v := range set {
		switch field {
		case "customerName":
			inv.CustomerName = v
		case "customerEmail":
			inv.CustomerEmail = v
		case "currency":
			inv.Currency = api.NormalizeCurrency(v)
		case "dueDate":
			if d, err := api.ParseDueDate(v); err == nil {
				inv.DueDate = d
			}
		}
	}
	return amended(inv, errs, validateInvoice)
}

var _ = define(invoiceToBilling)

// invoiceToBilling is the invoice → Stripe integration; api.InvoiceToBillingSpec
// declares it.
func invoiceToBilling() spine.Integration {
	return spine.Integration{
		Spec:     api.InvoiceToBillingSpec(),
		Workflow: InvoiceToBilling,
		Activities: []spine.Activities{
			spine.On(api.TaskQueueBilling, func(d spine.Deps) *activities.Billing { return &activities.Billing{Client: d.Billing, Store: d.Store} }),
			spine.On(api.TaskQueueIntegrations, func(d spine.Deps) *activities.Invoices { return &activities.Invoices{Store: d.Store} }),
			spine.On(api.TaskQueueBilling, func(d spine.Deps) *activities.InvoiceReconcile {
				return &activities.InvoiceReconcile{Client: d.Billing, Store: d.Store}
			}),
		},
		Reconcile: &spine.Reconcile{Queue: api.TaskQueueBilling, Step: invoiceReconcile.ReconcileInvoices},
		Intake: spine.Intake{Route: "POST /v1/invoices/{id}/sync", Command: "invoice", Usage: "ID", Check: checkInvoiceToSync, Input: invoiceInput,
			Bulk: "invoices", Statuses: []string{store.InvoiceReady, store.InvoiceBilled},
			Keys: func(ctx context.Context, st spine.Records, status string) ([]string, error) {
				return st.InvoiceIDs(ctx, status)
			}},
	}
}

// InvoiceToBilling bills one invoice in Stripe.
func InvoiceToBilling(ctx workflow.Context, in InvoiceInput) (api.Result, error) {
	s := &invoiceSync{repair: in.Reconcile}
	return spine.Run(ctx, invoiceToBilling(), in.ItemInput, spine.Hooks{Amend: s.amend, Ended: s.ended}, s.run)
}

// invoiceSync is the state of one InvoiceToBilling run.
type invoiceSync struct {
	inv store.Invoice
	// pending holds amendments not yet written back to PostgreSQL.
	pending map[string]string
	// guarded is set for items begun after invoices had versions: they reload
	// before billing, write with version checks and look Stripe up first.
	guarded bool
	// approved is the invoice as finance approved it, if they did.
	approved *store.Invoice
	// repair is what a reconcile run found, when it started the item.
	repair *api.ReconcileFinding
}

func (s *invoiceSync) amend(set map[string]string, apply bool) error {
	next, err := withAmendments(s.inv, set)
	if err != nil {
		return err
	}
	if apply {
		s.inv = next
		if s.pending == nil {
			s.pending = map[string]string{}
		}
		maps.Copy(s.pending, set)
	}
	return nil
}

// persist writes amendments back to the source of truth before any step uses
// them. If the invoice changed in PostgreSQL meanwhile, nothing is
// overwritten: the item raises Conflict, and on approve writes the amendment
// over the newer invoice.
func (s *invoiceSync) persist(ctx workflow.Context, it *spine.Item) error {
	for len(s.pending) > 0 {
		in := activities.AmendInvoiceInput{InvoiceID: s.inv.ID, Header: store.InvoiceHeader{
			CustomerName: s.inv.CustomerName, CustomerEmail: s.inv.CustomerEmail, Currency: s.inv.Currency, DueDate: s.inv.DueDate}}
		if s.guarded {
			in.IfVersion = s.inv.Version
		}
		var r activities.VersionResult
		err := it.Call(ctx, "Write the amendment to PostgreSQL", invoiceActivities.AmendInvoice, in, &r)
		if err == nil {
			s.inv.Version, s.pending = r.Version, nil
			return nil
		}
		if api.TypeOf(err) != api.ErrorStale {
			return err
		}
		if _, err := it.Raise(ctx, api.Conflict, fmt.Sprintf("invoice %s changed in PostgreSQL while the item waited; approve writes the amendment over the newer invoice", s.inv.ID),
			map[string]string{"amendment": joinSet(s.pending)}); err != nil {
			return err
		}
		// Start over from the newer invoice, the amendment on top: its status,
		// its contract and its approval are checked again before anything is billed.
		return spine.Restart{Why: "invoice " + s.inv.ID + " changed in PostgreSQL"}
	}
	return nil
}

func (s *invoiceSync) load(ctx workflow.Context, it *spine.Item) error {
	return it.Call(ctx, "Load invoice "+it.Key()+" from PostgreSQL", invoiceActivities.LoadInvoice, activities.LoadInvoiceInput{InvoiceID: it.Key()}, &s.inv)
}

func (s *invoiceSync) record(ctx workflow.Context, it *spine.Item, state store.BillingState) error {
	var r activities.VersionResult
	err := it.Call(ctx, "Write the billing state to PostgreSQL", invoiceActivities.RecordBilling, activities.RecordBillingInput{InvoiceID: s.inv.ID, State: state}, &r)
	if err == nil && r.Version == s.inv.Version+1 {
		// Our own write is not someone else's edit; had someone else written
		// meanwhile, the version stays behind and an amendment meets Conflict.
		s.inv.Version = r.Version
	}
	return err
}

// ended writes a decision that ended the item back to the invoice. Resolving
// a failed billing step records that the invoice was billed by hand, and
// where; resolving anything else (a conflict over the invoice's data) leaves
// it as it is, unbilled.
func (s *invoiceSync) ended(ctx workflow.Context, it *spine.Item, end spine.Ended) error {
	if s.repair != nil {
		// A difference with Stripe handled by hand: not raised again while
		// its values stay the same.
		if end.Status == api.StatusManuallyResolved {
			return acceptDifference(ctx, it, *s.repair, end.Actor, "resolved by hand: "+end.Ref)
		}
		return nil
	}
	if s.inv.ID == "" {
		return nil
	}
	state := map[api.Status]string{api.StatusRejected: store.InvoiceRejected, api.StatusCancelled: store.InvoiceCancelled, api.StatusManuallyResolved: store.InvoiceBilled}[end.Status]
	if state == "" {
		return nil
	}
	b := store.BillingState{Status: state}
	if end.Status == api.StatusManuallyResolved && s.guarded {
		if !slices.Contains([]api.ExceptionKind{api.TargetRejected, api.TargetUnavailable, api.AuthFailed}, end.Kind) {
			return nil
		}
		b.BilledBy, b.BilledRef = store.BilledByHand, end.Ref
	}
	return s.record(ctx, it, b)
}

// step runs one Stripe step, writing pending amendments back first.
func (s *invoiceSync) step(ctx workflow.Context, it *spine.Item, name string, fn func(workflow.Context) error) error {
	return it.Do(ctx, name, func(ctx workflow.Context) error {
		if err := s.persist(ctx, it); err != nil {
			return err
		}
		return fn(ctx)
	})
}

// run bills the invoice, starting over from PostgreSQL when a step finds it
// changed under it.
func (s *invoiceSync) run(ctx workflow.Context, it *spine.Item) error {
	if s.repair != nil {
		return s.reconciled(ctx, it)
	}
	for {
		err := s.bill(ctx, it)
		var again spine.Restart
		if !errors.As(err, &again) {
			return err
		}
		it.Logger().Info("starting over", "why", again.Why)
	}
}

// reconciled asks finance about a difference a reconcile run found between
// the invoice and Stripe, which no rule may repair: Stripe's invoice is
// final, and PostgreSQL holds what was meant. Approving accepts it.
func (s *invoiceSync) reconciled(ctx workflow.Context, it *spine.Item) error {
	f := *s.repair
	kind := map[string]api.ExceptionKind{api.ClassAmountDiffers: api.AmountMismatch, api.ClassMissing: api.MissingInTarget}[f.Class]
	if kind == "" {
		return fmt.Errorf("reconcile run %d handed invoice %s a %s difference, which its item does not handle", f.RunID, it.Key(), f.Class)
	}
	it.SetExternalID(api.ExternalStripeInvoice, f.Details["stripe invoice"])
	summary := map[api.ExceptionKind]string{
		api.AmountMismatch:  fmt.Sprintf("invoice %s totals %s in PostgreSQL but %s in Stripe", it.Key(), f.Details["total in PostgreSQL"], f.Details["total in Stripe"]),
		api.MissingInTarget: fmt.Sprintf("the Stripe invoice %s of invoice %s is gone", f.Details["stripe invoice"], it.Key()),
	}[kind]
	d, err := it.Raise(ctx, kind, summary+" (reconcile run "+fmt.Sprint(f.RunID)+")", f.Details)
	if err != nil {
		return err
	}
	return acceptDifference(ctx, it, f, d.Actor, d.Reason)
}

func (s *invoiceSync) bill(ctx workflow.Context, it *spine.Item) error {
	if err := s.loadValid(ctx, it); err != nil {
		return err
	}
	s.guarded = workflow.GetVersion(ctx, "invoice-billing-guard", workflow.DefaultVersion, 1) == 1
	it.SetExternalID(api.ExternalInvoice, s.inv.ID)
	if done, err := s.alreadyBilled(ctx, it); done || err != nil {
		return err
	}
	if err := s.approve(ctx, it); err != nil {
		return err
	}
	if s.guarded {
		// Approval may have taken days: bill what the invoice says now.
		if done, err := s.alreadyBilled(ctx, it); done || err != nil {
			return err
		}
	}

	customer, err := s.customer(ctx, it)
	if err != nil {
		return err
	}
	it.SetExternalID(api.ExternalStripeCustomer, customer)
	invoiceID, finalized, created := s.inv.StripeInvoiceID, "", false
	if invoiceID == "" && s.guarded {
		// A Stripe invoice may exist whose ID never reached PostgreSQL.
		var found activities.FindInvoiceResult
		err := s.step(ctx, it, "find invoice", func(ctx workflow.Context) error {
			return it.Call(ctx, "Find the Stripe invoice of "+s.inv.ID, billingActivities.FindInvoice, activities.FindInvoiceInput{InvoiceID: s.inv.ID}, &found)
		})
		if err != nil {
			return err
		}
		if found.Found {
			invoiceID = found.Invoice.StripeInvoiceID
			if found.Invoice.StripeStatus != "draft" {
				finalized = found.Invoice.StripeStatus
			}
			if err := s.record(ctx, it, store.BillingState{StripeCustomerID: customer, StripeInvoiceID: invoiceID}); err != nil {
				return err
			}
		}
	}
	if invoiceID == "" {
		err := s.step(ctx, it, "create invoice", func(ctx workflow.Context) error {
			var r activities.InvoiceResult
			in := activities.CreateInvoiceInput{InvoiceID: s.inv.ID, StripeCustomerID: customer, Currency: s.inv.Currency,
				DueDate: s.inv.DueDate, IdempotencyKey: it.WorkflowID() + "/invoice"}
			err := it.Call(ctx, "Create the Stripe invoice", billingActivities.CreateInvoice, in, &r)
			invoiceID = r.StripeInvoiceID
			return err
		})
		if err != nil {
			return err
		}
		created = true
		// Recorded at once, so a later run of this item adds to this invoice.
		if err := s.record(ctx, it, store.BillingState{StripeCustomerID: customer, StripeInvoiceID: invoiceID}); err != nil {
			return err
		}
	}
	it.SetExternalID(api.ExternalStripeInvoice, invoiceID)
	var present []int
	if s.guarded && !created && finalized == "" {
		// An earlier run began this invoice: add only the lines it lacks, and
		// finalize it only if it is still a draft.
		var draft activities.DraftStateResult
		err := s.step(ctx, it, "read the draft", func(ctx workflow.Context) error {
			return it.Call(ctx, "Read the Stripe invoice an earlier run began", billingActivities.DraftState, activities.DraftStateInput{StripeInvoiceID: invoiceID}, &draft)
		})
		if err != nil {
			return err
		}
		present = draft.Lines
		if draft.StripeStatus != "" && draft.StripeStatus != "draft" {
			finalized = draft.StripeStatus
		}
	}
	if finalized == "" {
		if finalized, err = s.addLinesAndFinalize(ctx, it, customer, invoiceID, present); err != nil {
			return err
		}
	}
	billed := store.BillingState{Status: store.InvoiceBilled, StripeCustomerID: customer, StripeInvoiceID: invoiceID, StripeStatus: finalized}
	if s.guarded {
		billed.BilledBy, billed.BilledRef = store.BilledBySignalbox, invoiceID
	}
	if err := s.record(ctx, it, billed); err != nil {
		return err
	}
	text := fmt.Sprintf("Invoice %s billed in Stripe as %s: %s, due %s.", s.inv.ID, invoiceID,
		formatAmount(s.inv.Currency, invoiceTotal(s.inv)), s.inv.DueDate.Format(time.DateOnly))
	return it.Notify(ctx, "notify", it.Team(), "the invoice is billed", text, it.WorkflowID()+"/billed/"+invoiceID)
}

func (s *invoiceSync) addLinesAndFinalize(ctx workflow.Context, it *spine.Item, customer, invoiceID string, present []int) (string, error) {
	for _, line := range s.inv.Lines {
		if slices.Contains(present, line.LineNo) {
			continue
		}
		err := s.step(ctx, it, fmt.Sprintf("add line %d", line.LineNo), func(ctx workflow.Context) error {
			in := activities.AddInvoiceItemInput{StripeCustomerID: customer, StripeInvoiceID: invoiceID, Currency: s.inv.Currency, Line: line,
				IdempotencyKey: fmt.Sprintf("%s/line/%d", it.WorkflowID(), line.LineNo)}
			return it.Call(ctx, fmt.Sprintf("Add line %d: %s", line.LineNo, line.Description), billingActivities.AddInvoiceItem, in, nil)
		})
		if err != nil {
			return "", err
		}
	}
	var final activities.InvoiceResult
	err := s.step(ctx, it, "finalize invoice", func(ctx workflow.Context) error {
		in := activities.FinalizeInvoiceInput{StripeInvoiceID: invoiceID, IdempotencyKey: it.WorkflowID() + "/finalize"}
		return it.Call(ctx, "Finalize the Stripe invoice", billingActivities.FinalizeInvoice, in, &final)
	})
	return final.StripeStatus, err
}

// alreadyBilled ends a run whose invoice was billed before: by signalbox (it
// refreshes the payment status from Stripe) or by hand (nothing is created;
// the item ends ManuallyResolved, saying where). It reloads the invoice
// first when asked to check again after a wait.
func (s *invoiceSync) alreadyBilled(ctx workflow.Context, it *spine.Item) (bool, error) {
	if s.inv.Status == store.InvoiceBilled && s.inv.StripeInvoiceID != "" && s.inv.BilledBy != store.BilledByHand {
		return true, s.refresh(ctx, it)
	}
	if !s.guarded || (s.inv.Status != store.InvoiceBilled && s.inv.BilledBy == "") {
		return false, nil
	}
	ref := s.inv.BilledRef
	if ref == "" {
		ref = "no reference recorded"
	}
	it.SetExternalID(api.ExternalBilledByHand, ref)
	reason := fmt.Sprintf("invoice %s was billed by hand (%s); nothing is created in Stripe", s.inv.ID, ref)
	return true, it.End(ctx, api.StatusManuallyResolved, "already_billed", reason, map[string]any{"billedRef": ref})
}

// approve waits for finance above the approval threshold. An approval holds
// for the lines and amounts it saw: if they change while the item waits, or
// before it bills, finance is asked again with the difference.
func (s *invoiceSync) approve(ctx workflow.Context, it *spine.Item) error {
	threshold := it.Policy().InvoiceApprovalThreshold
	for {
		approved := s.approved
		total := invoiceTotal(s.inv)
		if threshold <= 0 || total <= threshold || (approved != nil && sameLines(*approved, s.inv)) {
			return nil
		}
		summary := fmt.Sprintf("invoice %s totals %s, above the approval threshold of %s", s.inv.ID,
			formatAmount(s.inv.Currency, total), formatAmount(s.inv.Currency, threshold))
		details := map[string]string{"customer": s.inv.CustomerID, "total": formatAmount(s.inv.Currency, total), "lines": fmt.Sprint(len(s.inv.Lines))}
		if approved != nil {
			summary = fmt.Sprintf("invoice %s changed after it was approved: it now totals %s (approved: %s); approve again to bill it",
				s.inv.ID, formatAmount(s.inv.Currency, total), formatAmount(approved.Currency, invoiceTotal(*approved)))
			details["approved total"] = formatAmount(approved.Currency, invoiceTotal(*approved))
			details["changed lines"] = lineChanges(*approved, s.inv)
		}
		if _, err := it.Raise(ctx, api.ApprovalRequired, summary, details); err != nil {
			return err
		}
		if !s.guarded {
			return nil
		}
		seen := s.inv
		s.approved = &seen
		if err := s.loadValid(ctx, it); err != nil {
			return err
		}
	}
}

// joinSet prints field changes as "a=1, b=2", in field order.
func joinSet(set map[string]string) string {
	parts := make([]string, 0, len(set))
	for _, k := range slices.Sorted(maps.Keys(set)) {
		parts = append(parts, k+"="+set[k])
	}
	return strings.Join(parts, ", ")
}

// sameLines reports whether two copies of an invoice bill the same lines.
func sameLines(a, b store.Invoice) bool {
	return a.Currency == b.Currency && slices.Equal(a.Lines, b.Lines)
}

// lineChanges describes how the lines of b differ from a's.
func lineChanges(a, b store.Invoice) string {
	byNo := func(inv store.Invoice) map[int]store.InvoiceLine {
		m := map[int]store.InvoiceLine{}
		for _, l := range inv.Lines {
			m[l.LineNo] = l
		}
		return m
	}
	before, after := byNo(a), byNo(b)
	var out []string
	for _, no := range slices.Sorted(maps.Keys(after)) {
		l, was := after[no], before[no]
		switch {
		case was == (store.InvoiceLine{}):
			out = append(out, fmt.Sprintf("line %d added (%d × %s)", no, l.Quantity, formatAmount(b.Currency, l.UnitAmount)))
		case was != l:
			out = append(out, fmt.Sprintf("line %d was %d × %s, now %d × %s", no, was.Quantity, formatAmount(a.Currency, was.UnitAmount),
				l.Quantity, formatAmount(b.Currency, l.UnitAmount)))
		}
	}
	for _, no := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[no]; !ok {
			out = append(out, fmt.Sprintf("line %d removed", no))
		}
	}
	if a.Currency != b.Currency {
		out = append(out, fmt.Sprintf("currency was %s, now %s", a.Currency, b.Currency))
	}
	return strings.Join(out, "; ")
}

// loadValid loads the invoice and waits, while it breaks its contract, for an
// amendment or for a retry after someone fixed it in the billing system.
func (s *invoiceSync) loadValid(ctx workflow.Context, it *spine.Item) error {
	for {
		err := s.load(ctx, it)
		if err == nil && len(s.pending) > 0 {
			// Started over after a conflict the operator approved: the
			// amendment goes on top of the newer invoice (or, if it no longer
			// fits, is dropped and the invoice's own problems are raised).
			amendment := s.pending
			s.pending = nil
			_ = s.amend(amendment, true)
		}
		var errs api.FieldErrors
		switch {
		case err == nil:
			errs = validateInvoice(s.inv)
			if s.inv.Status != store.InvoiceReady && s.inv.Status != store.InvoiceBilled {
				errs.Add("status", "is %s; only ready invoices are billed", s.inv.Status)
			}
		case api.TypeOf(err) == api.ErrorNotFound:
			errs.Add("id", "no invoice %s in PostgreSQL", it.Key())
		default:
			return err
		}
		if len(errs) == 0 {
			return nil
		}
		d, err := it.Raise(ctx, api.ValidationFailed, "the invoice breaks its contract: "+errs.Error(), errs.Details())
		if err != nil {
			return err
		}
		if d.Action == api.ActionAmend {
			if err := s.persist(ctx, it); err != nil {
				return err
			}
		}
	}
}

// customer finds the Stripe customer (by link, else by our ID in its
// metadata) or creates it. Its idempotency key comes from our customer ID, not
// the workflow ID: two invoices of a new customer must not make two customers.
func (s *invoiceSync) customer(ctx workflow.Context, it *spine.Item) (string, error) {
	var found activities.FindCustomerResult
	err := s.step(ctx, it, "find customer", func(ctx workflow.Context) error {
		in := activities.FindCustomerInput{Integration: api.IntegrationInvoiceToBilling, CustomerID: s.inv.CustomerID}
		return it.Call(ctx, "Find Stripe customer "+s.inv.CustomerID, billingActivities.FindCustomer, in, &found)
	})
	if err != nil || found.Found {
		return found.StripeCustomerID, err
	}
	var created activities.CreateCustomerResult
	err = s.step(ctx, it, "create customer", func(ctx workflow.Context) error {
		in := activities.CreateCustomerInput{Integration: api.IntegrationInvoiceToBilling, CustomerID: s.inv.CustomerID,
			Name: s.inv.CustomerName, Email: s.inv.CustomerEmail, IdempotencyKey: "signalbox/customer/" + s.inv.CustomerID}
		return it.Call(ctx, "Create Stripe customer "+s.inv.CustomerID, billingActivities.CreateCustomer, in, &created)
	})
	return created.StripeCustomerID, err
}

// refresh re-syncs a billed invoice: Stripe owns its payment status, which is
// read and written back.
func (s *invoiceSync) refresh(ctx workflow.Context, it *spine.Item) error {
	it.SetExternalID(api.ExternalStripeInvoice, s.inv.StripeInvoiceID)
	var r activities.InvoiceResult
	err := s.step(ctx, it, "refresh payment status", func(ctx workflow.Context) error {
		return it.Call(ctx, "Read the Stripe invoice's status", billingActivities.GetInvoice, activities.GetInvoiceInput{StripeInvoiceID: s.inv.StripeInvoiceID}, &r)
	})
	if err != nil {
		return err
	}
	return s.record(ctx, it, store.BillingState{StripeStatus: r.StripeStatus})
}

func invoiceInput(_, startedBy string) any {
	return InvoiceInput{ItemInput: api.ItemInput{StartedBy: startedBy}}
}

// checkInvoiceToSync refuses unknown invoices and those not ready (a billed
// one may be synced again: that refreshes its payment status).
func checkInvoiceToSync(ctx context.Context, invoices spine.Records, id string) error {
	status, err := invoices.InvoiceStatus(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &spine.Refused{Status: http.StatusNotFound, Message: "no invoice " + id}
	case err != nil:
		return &spine.Refused{Status: http.StatusServiceUnavailable, Message: "could not read the invoice: PostgreSQL is unavailable; retry"}
	case status != store.InvoiceReady && status != store.InvoiceBilled:
		return &spine.Refused{Status: http.StatusConflict, Message: fmt.Sprintf("invoice %s is %s; only ready invoices are billed (and billed ones refreshed)", id, status)}
	}
	return nil
}
