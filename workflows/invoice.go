package workflows

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/store"
)

// IntegrationInvoiceToBilling is the name of the invoice → billing integration.
const IntegrationInvoiceToBilling = "invoice-to-billing"

// TaskQueueBilling runs the activities that call Stripe.
const TaskQueueBilling = "billing"

// InvoiceInput starts an InvoiceToBilling item; the invoice itself is read
// from PostgreSQL, its source of truth.
type InvoiceInput struct {
	ItemInput
	InvoiceID string `json:"invoiceId"`
}

// Stripe's limits on an invoice.
const (
	maxInvoiceLines = 250
	maxInvoiceTotal = 99_999_999 // minor units
)

// zeroDecimal are the currencies Stripe counts in whole units.
var zeroDecimal = []string{"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}

// currencies are the ones signalbox bills in; Stripe supports more, and
// adding one here is all it takes.
var currencies = append([]string{"aud", "cad", "chf", "czk", "dkk", "eur", "gbp", "hkd", "nok", "nzd", "pln", "sek", "sgd", "usd"}, zeroDecimal...)

var customerIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validateInvoice returns every problem of the invoice's contract at once.
func validateInvoice(inv store.Invoice) FieldErrors {
	var errs FieldErrors
	if !customerIDPattern.MatchString(inv.CustomerID) {
		errs.add("customerId", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	checkText(&errs, "customerName", inv.CustomerName, 200, true)
	checkEmail(&errs, "customerEmail", inv.CustomerEmail)
	if !slices.Contains(currencies, inv.Currency) {
		errs.add("currency", "must be one of %s (lower case)", strings.Join(currencies, ", "))
	}
	if inv.DueDate.IsZero() {
		errs.add("dueDate", "is required")
	}
	switch {
	case len(inv.Lines) == 0:
		errs.add("lines", "an invoice needs at least one line")
	case len(inv.Lines) > maxInvoiceLines:
		errs.add("lines", "at most %d lines", maxInvoiceLines)
	}
	var total int64
	for _, l := range inv.Lines {
		field := fmt.Sprintf("lines[%d]", l.LineNo)
		checkText(&errs, field+".description", l.Description, 500, true)
		if l.Quantity < 1 || l.Quantity > 1_000_000 {
			errs.add(field+".quantity", "must be between 1 and 1000000")
		}
		if l.UnitAmount <= 0 || l.UnitAmount > maxInvoiceTotal {
			errs.add(field+".unitAmount", "must be a positive amount in minor units, at most %d", maxInvoiceTotal)
		} else if l.Quantity >= 1 && l.Quantity <= 1_000_000 {
			total += l.Quantity * l.UnitAmount
		}
	}
	if total > maxInvoiceTotal {
		errs.add("lines", "the total %d exceeds Stripe's maximum of %d minor units", total, int64(maxInvoiceTotal))
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

// amendableInvoiceFields are the header fields an operator may amend; lines
// and amounts are changed in the billing system, then the item retried.
var amendableInvoiceFields = []string{"customerName", "customerEmail", "currency", "dueDate"}

// withAmendments returns the invoice with the header fields in set changed,
// or the field errors of the result.
func withAmendments(inv store.Invoice, set map[string]string) (store.Invoice, error) {
	var errs FieldErrors
	for field, v := range set {
		switch field {
		case "customerName":
			inv.CustomerName = v
		case "customerEmail":
			inv.CustomerEmail = v
		case "currency":
			inv.Currency = strings.ToLower(strings.TrimSpace(v))
		case "dueDate":
			d, err := time.Parse(time.DateOnly, v)
			if err != nil {
				errs.add(field, "must be a date like 2026-12-31")
				continue
			}
			inv.DueDate = d
		default:
			errs.add(field, "cannot be amended (amendable: %s; change lines and amounts in the billing system, then retry)", strings.Join(amendableInvoiceFields, ", "))
		}
	}
	return amended(inv, errs, validateInvoice)
}

// InvoiceToBillingSpec declares the invoice → billing integration.
func InvoiceToBillingSpec() Spec {
	return Spec{
		Name:         IntegrationInvoiceToBilling,
		WorkflowType: "InvoiceToBilling",
		Workflow:     InvoiceToBilling,
		Title:        "Invoice → Stripe billing",
		Description:  "Each ready invoice in PostgreSQL becomes one finalized Stripe invoice for one Stripe customer; large ones wait for finance's approval.",
		Owner:        "finance",
		Source:       "postgres",
		Target:       "stripe",
		Fields: []Field{
			{Name: "customerId", TargetName: "customer.metadata.signalbox_customer_id", Owner: "postgres", Required: true, Description: "finds the Stripe customer"},
			{Name: "customerName", TargetName: "customer.name", Owner: "postgres", Required: true, Description: "amendable"},
			{Name: "customerEmail", TargetName: "customer.email", Owner: "postgres", Required: true, Description: "amendable"},
			{Name: "currency", TargetName: "invoice.currency", Owner: "postgres", Required: true, Description: "amendable"},
			{Name: "dueDate", TargetName: "invoice.due_date", Owner: "postgres", Required: true, Description: "amendable"},
			{Name: "lines and amounts", TargetName: "invoiceitem.quantity, unit_amount_decimal", Owner: "postgres", Required: true, Description: "minor units; change them in the billing system, then retry"},
			{Name: "Stripe customer and invoice IDs", TargetName: "customer.id, invoice.id", Owner: "stripe", Description: "written back to invoices and external_links"},
			{Name: "payment status", TargetName: "invoice.status", Owner: "stripe", Description: "written back to invoices.stripe_status; a re-sync refreshes it"},
		},
		Exceptions: append([]ExceptionSpec{
			{Kind: ValidationFailed, Status: StatusBlocked, When: "the invoice breaks its contract (currency, lines, amounts, customer email) or is not ready",
				Decisions: []Action{ActionAmend, ActionRetry, ActionReject, ActionCancel}, SLA: 4 * time.Hour},
			{Kind: ApprovalRequired, Status: StatusBlocked, When: "the invoice's total is above SIGNALBOX_INVOICE_APPROVAL_THRESHOLD",
				Decisions: []Action{ActionApprove, ActionReject}, Deciders: "finance", SLA: 24 * time.Hour},
		}, technicalExceptions(time.Hour)...),
	}
}

// InvoiceToBilling bills one invoice in Stripe.
func InvoiceToBilling(ctx workflow.Context, in InvoiceInput) (Result, error) {
	s := &invoiceSync{}
	return runItem(ctx, InvoiceToBillingSpec(), in.ItemInput, hooks{amend: s.amend, ended: s.ended}, s.run)
}

var invoiceActivities *activities.Invoices

var billingActivities *activities.Billing

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
func (s *invoiceSync) persist(ctx workflow.Context, it *item) error {
	for len(s.pending) > 0 {
		in := activities.AmendInvoiceInput{InvoiceID: s.inv.ID, Header: store.InvoiceHeader{
			CustomerName: s.inv.CustomerName, CustomerEmail: s.inv.CustomerEmail, Currency: s.inv.Currency, DueDate: s.inv.DueDate}}
		if s.guarded {
			in.IfVersion = s.inv.Version
		}
		var r activities.VersionResult
		err := workflow.ExecuteLocalActivity(localCtx(ctx, "Write the amendment to PostgreSQL"), invoiceActivities.AmendInvoice, in).Get(ctx, &r)
		if err == nil {
			s.inv.Version, s.pending = r.Version, nil
			return nil
		}
		if errorType(err) != activities.ErrStale {
			return err
		}
		if _, err := it.Raise(ctx, Conflict, fmt.Sprintf("invoice %s changed in PostgreSQL while the item waited; approve writes the amendment over the newer invoice", s.inv.ID),
			map[string]string{"amendment": joinSet(s.pending)}); err != nil {
			return err
		}
		// Start over from the newer invoice, the amendment on top: its status,
		// its contract and its approval are checked again before anything is billed.
		return restart{why: "invoice " + s.inv.ID + " changed in PostgreSQL"}
	}
	return nil
}

func (s *invoiceSync) load(ctx workflow.Context, id string) error {
	return workflow.ExecuteLocalActivity(localCtx(ctx, "Load invoice "+id+" from PostgreSQL"), invoiceActivities.LoadInvoice, id).Get(ctx, &s.inv)
}

func (s *invoiceSync) record(ctx workflow.Context, state store.BillingState) error {
	var r activities.VersionResult
	err := workflow.ExecuteLocalActivity(localCtx(ctx, "Write the billing state to PostgreSQL"), invoiceActivities.RecordBilling,
		activities.RecordBillingInput{InvoiceID: s.inv.ID, State: state}).Get(ctx, &r)
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
func (s *invoiceSync) ended(ctx workflow.Context, end ended) error {
	if s.inv.ID == "" {
		return nil
	}
	state := map[Status]string{StatusRejected: store.InvoiceRejected, StatusCancelled: store.InvoiceCancelled, StatusManuallyResolved: store.InvoiceBilled}[end.status]
	if state == "" {
		return nil
	}
	b := store.BillingState{Status: state}
	if end.status == StatusManuallyResolved && s.guarded {
		if !slices.Contains([]ExceptionKind{TargetRejected, TargetUnavailable, AuthFailed}, end.kind) {
			return nil
		}
		b.BilledBy, b.BilledRef = store.BilledByHand, end.ref
	}
	return s.record(ctx, b)
}

// step runs one Stripe step, writing pending amendments back first.
func (s *invoiceSync) step(ctx workflow.Context, it *item, name string, fn func(workflow.Context) error) error {
	return it.Do(ctx, name, func(ctx workflow.Context) error {
		if err := s.persist(ctx, it); err != nil {
			return err
		}
		return fn(ctx)
	})
}

// run bills the invoice, starting over from PostgreSQL when a step finds it
// changed under it.
func (s *invoiceSync) run(ctx workflow.Context, it *item) error {
	for {
		err := s.bill(ctx, it)
		var again restart
		if !errors.As(err, &again) {
			return err
		}
		it.logger.Info("starting over", "why", again.why)
	}
}

func (s *invoiceSync) bill(ctx workflow.Context, it *item) error {
	if err := s.loadValid(ctx, it); err != nil {
		return err
	}
	s.guarded = workflow.GetVersion(ctx, "invoice-billing-guard", workflow.DefaultVersion, 1) == 1
	it.state.ExternalIDs["invoice"] = s.inv.ID
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
	it.state.ExternalIDs["stripe customer"] = customer
	invoiceID, finalized, created := s.inv.StripeInvoiceID, "", false
	if invoiceID == "" && s.guarded {
		// A Stripe invoice may exist whose ID never reached PostgreSQL.
		var found activities.FindInvoiceResult
		err := s.step(ctx, it, "find invoice", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueBilling, "Find the Stripe invoice of "+s.inv.ID), billingActivities.FindInvoice,
				activities.FindInvoiceInput{InvoiceID: s.inv.ID}).Get(ctx, &found)
		})
		if err != nil {
			return err
		}
		if found.Found {
			invoiceID = found.Invoice.StripeInvoiceID
			if found.Invoice.StripeStatus != "draft" {
				finalized = found.Invoice.StripeStatus
			}
			if err := s.record(ctx, store.BillingState{StripeCustomerID: customer, StripeInvoiceID: invoiceID}); err != nil {
				return err
			}
		}
	}
	if invoiceID == "" {
		err := s.step(ctx, it, "create invoice", func(ctx workflow.Context) error {
			var r activities.InvoiceResult
			in := activities.CreateInvoiceInput{InvoiceID: s.inv.ID, StripeCustomerID: customer, Currency: s.inv.Currency,
				DueDate: s.inv.DueDate, IdempotencyKey: it.state.WorkflowID + "/invoice"}
			err := workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueBilling, "Create the Stripe invoice"), billingActivities.CreateInvoice, in).Get(ctx, &r)
			invoiceID = r.StripeInvoiceID
			return err
		})
		if err != nil {
			return err
		}
		created = true
		// Recorded at once, so a later run of this item adds to this invoice.
		if err := s.record(ctx, store.BillingState{StripeCustomerID: customer, StripeInvoiceID: invoiceID}); err != nil {
			return err
		}
	}
	it.state.ExternalIDs["stripe invoice"] = invoiceID
	var present []int
	if s.guarded && !created && finalized == "" {
		// An earlier run began this invoice: add only the lines it lacks, and
		// finalize it only if it is still a draft.
		var draft activities.DraftStateResult
		err := s.step(ctx, it, "read the draft", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueBilling, "Read the Stripe invoice an earlier run began"), billingActivities.DraftState,
				activities.DraftStateInput{StripeInvoiceID: invoiceID}).Get(ctx, &draft)
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
	if err := s.record(ctx, billed); err != nil {
		return err
	}
	text := fmt.Sprintf("Invoice %s billed in Stripe as %s: %s, due %s.", s.inv.ID, invoiceID,
		formatAmount(s.inv.Currency, invoiceTotal(s.inv)), s.inv.DueDate.Format(time.DateOnly))
	return it.Notify(ctx, "notify", it.spec.Owner, "the invoice is billed", text, it.state.WorkflowID+"/billed/"+invoiceID)
}

func (s *invoiceSync) addLinesAndFinalize(ctx workflow.Context, it *item, customer, invoiceID string, present []int) (string, error) {
	for _, line := range s.inv.Lines {
		if slices.Contains(present, line.LineNo) {
			continue
		}
		err := s.step(ctx, it, fmt.Sprintf("add line %d", line.LineNo), func(ctx workflow.Context) error {
			in := activities.AddInvoiceItemInput{StripeCustomerID: customer, StripeInvoiceID: invoiceID, Currency: s.inv.Currency, Line: line,
				IdempotencyKey: fmt.Sprintf("%s/line/%d", it.state.WorkflowID, line.LineNo)}
			return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueBilling, fmt.Sprintf("Add line %d: %s", line.LineNo, line.Description)),
				billingActivities.AddInvoiceItem, in).Get(ctx, nil)
		})
		if err != nil {
			return "", err
		}
	}
	var final activities.InvoiceResult
	err := s.step(ctx, it, "finalize invoice", func(ctx workflow.Context) error {
		in := activities.FinalizeInvoiceInput{StripeInvoiceID: invoiceID, IdempotencyKey: it.state.WorkflowID + "/finalize"}
		return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueBilling, "Finalize the Stripe invoice"), billingActivities.FinalizeInvoice, in).Get(ctx, &final)
	})
	return final.StripeStatus, err
}

// alreadyBilled ends a run whose invoice was billed before: by signalbox (it
// refreshes the payment status from Stripe) or by hand (nothing is created;
// the item ends ManuallyResolved, saying where). It reloads the invoice
// first when asked to check again after a wait.
func (s *invoiceSync) alreadyBilled(ctx workflow.Context, it *item) (bool, error) {
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
	it.state.ExternalIDs["billed by hand"] = ref
	reason := fmt.Sprintf("invoice %s was billed by hand (%s); nothing is created in Stripe", s.inv.ID, ref)
	if err := it.transition(ctx, StatusManuallyResolved, ActorSystem, "already_billed", reason, map[string]any{"billedRef": ref}); err != nil {
		return true, err
	}
	return true, ended{status: StatusManuallyResolved}
}

// approve waits for finance above the approval threshold. An approval holds
// for the lines and amounts it saw: if they change while the item waits, or
// before it bills, finance is asked again with the difference.
func (s *invoiceSync) approve(ctx workflow.Context, it *item) error {
	threshold := it.policy.InvoiceApprovalThreshold
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
		if _, err := it.Raise(ctx, ApprovalRequired, summary, details); err != nil {
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
func (s *invoiceSync) loadValid(ctx workflow.Context, it *item) error {
	for {
		err := s.load(ctx, it.state.SourceKey)
		if err == nil && len(s.pending) > 0 {
			// Started over after a conflict the operator approved: the
			// amendment goes on top of the newer invoice (or, if it no longer
			// fits, is dropped and the invoice's own problems are raised).
			amendment := s.pending
			s.pending = nil
			_ = s.amend(amendment, true)
		}
		var errs FieldErrors
		switch {
		case err == nil:
			errs = validateInvoice(s.inv)
			if s.inv.Status != store.InvoiceReady && s.inv.Status != store.InvoiceBilled {
				errs.add("status", "is %s; only ready invoices are billed", s.inv.Status)
			}
		case errorType(err) == activities.ErrNotFound:
			errs.add("id", "no invoice %s in PostgreSQL", it.state.SourceKey)
		default:
			return err
		}
		if len(errs) == 0 {
			return nil
		}
		d, err := it.Raise(ctx, ValidationFailed, "the invoice breaks its contract: "+errs.Error(), errs.Details())
		if err != nil {
			return err
		}
		if d.Action == ActionAmend {
			if err := s.persist(ctx, it); err != nil {
				return err
			}
		}
	}
}

// customer finds the Stripe customer (by link, else by our ID in its
// metadata) or creates it. Its idempotency key comes from our customer ID, not
// the workflow ID: two invoices of a new customer must not make two customers.
func (s *invoiceSync) customer(ctx workflow.Context, it *item) (string, error) {
	var found activities.FindCustomerResult
	err := s.step(ctx, it, "find customer", func(ctx workflow.Context) error {
		in := activities.FindCustomerInput{Integration: IntegrationInvoiceToBilling, CustomerID: s.inv.CustomerID}
		return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueBilling, "Find Stripe customer "+s.inv.CustomerID), billingActivities.FindCustomer, in).Get(ctx, &found)
	})
	if err != nil || found.Found {
		return found.StripeCustomerID, err
	}
	var created activities.CreateCustomerResult
	err = s.step(ctx, it, "create customer", func(ctx workflow.Context) error {
		in := activities.CreateCustomerInput{Integration: IntegrationInvoiceToBilling, CustomerID: s.inv.CustomerID,
			Name: s.inv.CustomerName, Email: s.inv.CustomerEmail, IdempotencyKey: "signalbox/customer/" + s.inv.CustomerID}
		return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueBilling, "Create Stripe customer "+s.inv.CustomerID), billingActivities.CreateCustomer, in).Get(ctx, &created)
	})
	return created.StripeCustomerID, err
}

// refresh re-syncs a billed invoice: Stripe owns its payment status, which is
// read and written back.
func (s *invoiceSync) refresh(ctx workflow.Context, it *item) error {
	it.state.ExternalIDs["stripe invoice"] = s.inv.StripeInvoiceID
	var r activities.InvoiceResult
	err := s.step(ctx, it, "refresh payment status", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueBilling, "Read the Stripe invoice's status"), billingActivities.GetInvoice, s.inv.StripeInvoiceID).Get(ctx, &r)
	})
	if err != nil {
		return err
	}
	return s.record(ctx, store.BillingState{StripeStatus: r.StripeStatus})
}
