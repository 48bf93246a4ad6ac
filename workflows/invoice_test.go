package workflows

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

func acmeInvoice() store.Invoice {
	return store.Invoice{ID: "INV-1", CustomerID: "C-1", CustomerName: "Acme", CustomerEmail: "ap@acme.example", Currency: "eur",
		DueDate: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), Status: store.InvoiceReady,
		Lines: []store.InvoiceLine{{LineNo: 1, Description: "Consulting", Quantity: 3, UnitAmount: 15000}, {LineNo: 2, Description: "Travel", Quantity: 1, UnitAmount: 4200}}}
}

// billingFake plays PostgreSQL and Stripe for the invoice workflow.
type billingFake struct {
	loads      []store.Invoice // returned by successive loads; the last one repeats
	notFound   bool
	customer   string // an existing Stripe customer; empty to create one
	amended    []store.InvoiceHeader
	amendedAt  []int64                   // the version each amendment was written on
	inStripe   *activities.InvoiceResult // an invoice Stripe holds with our ID
	draft      activities.DraftStateResult
	recorded   []store.BillingState
	keys       map[string][]string // idempotency keys by activity, one per attempt
	failures   map[string][]error  // errors returned by successive calls of an activity
	paidStatus string
}

func (b *billingFake) fail(name string) error {
	if errs := b.failures[name]; len(errs) > 0 {
		b.failures[name] = errs[1:]
		return errs[0]
	}
	return nil
}

func (b *billingFake) key(name, key string) {
	if b.keys == nil {
		b.keys = map[string][]string{}
	}
	b.keys[name] = append(b.keys[name], key)
}

func (b *billingFake) install(f *fixture) {
	f.env.OnActivity(invoiceActivities.LoadInvoice, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.LoadInvoiceInput) (store.Invoice, error) {
		if b.notFound {
			return store.Invoice{}, temporal.NewNonRetryableApplicationError("no invoice", string(api.ErrorNotFound), nil)
		}
		inv := b.loads[0]
		if len(b.loads) > 1 {
			b.loads = b.loads[1:]
		}
		return inv, nil
	})
	f.env.OnActivity(invoiceActivities.AmendInvoice, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AmendInvoiceInput) (activities.VersionResult, error) {
		if err := b.fail("AmendInvoice"); err != nil {
			return activities.VersionResult{}, err
		}
		b.amended = append(b.amended, in.Header)
		b.amendedAt = append(b.amendedAt, in.IfVersion)
		return activities.VersionResult{Version: in.IfVersion + 1}, nil
	}).Maybe()
	f.env.OnActivity(invoiceActivities.RecordBilling, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RecordBillingInput) (activities.VersionResult, error) {
		b.recorded = append(b.recorded, in.State)
		return activities.VersionResult{Version: 100 + int64(len(b.recorded))}, nil
	}).Maybe()
	f.env.OnActivity(billingActivities.DraftState, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DraftStateInput) (activities.DraftStateResult, error) {
		b.key("DraftState", in.StripeInvoiceID)
		return b.draft, nil
	}).Maybe()
	f.env.OnActivity(billingActivities.FindInvoice, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FindInvoiceInput) (activities.FindInvoiceResult, error) {
		b.key("FindInvoice", in.InvoiceID)
		if b.inStripe != nil {
			return activities.FindInvoiceResult{Found: true, Invoice: *b.inStripe}, nil
		}
		return activities.FindInvoiceResult{}, nil
	}).Maybe()
	f.env.OnActivity(billingActivities.FindCustomer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FindCustomerInput) (activities.FindCustomerResult, error) {
		return activities.FindCustomerResult{StripeCustomerID: b.customer, Found: b.customer != ""}, b.fail("FindCustomer")
	}).Maybe()
	f.env.OnActivity(billingActivities.CreateCustomer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CreateCustomerInput) (activities.CreateCustomerResult, error) {
		b.key("CreateCustomer", in.IdempotencyKey)
		return activities.CreateCustomerResult{StripeCustomerID: "cus_new"}, b.fail("CreateCustomer")
	}).Maybe()
	f.env.OnActivity(billingActivities.CreateInvoice, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CreateInvoiceInput) (activities.InvoiceResult, error) {
		b.key("CreateInvoice", in.IdempotencyKey+" due "+in.DueDate.Format(time.DateOnly))
		if err := b.fail("CreateInvoice"); err != nil {
			return activities.InvoiceResult{}, err
		}
		return activities.InvoiceResult{StripeInvoiceID: "in_1", StripeStatus: "draft"}, nil
	}).Maybe()
	f.env.OnActivity(billingActivities.AddInvoiceItem, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AddInvoiceItemInput) (activities.AddInvoiceItemResult, error) {
		b.key("AddInvoiceItem", in.IdempotencyKey)
		return activities.AddInvoiceItemResult{StripeInvoiceItemID: "ii_x"}, b.fail("AddInvoiceItem")
	}).Maybe()
	f.env.OnActivity(billingActivities.FinalizeInvoice, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FinalizeInvoiceInput) (activities.InvoiceResult, error) {
		b.key("FinalizeInvoice", in.IdempotencyKey)
		return activities.InvoiceResult{StripeInvoiceID: in.StripeInvoiceID, StripeStatus: "open"}, b.fail("FinalizeInvoice")
	}).Maybe()
	f.env.OnActivity(billingActivities.GetInvoice, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.GetInvoiceInput) (activities.InvoiceResult, error) {
		return activities.InvoiceResult{StripeInvoiceID: in.StripeInvoiceID, StripeStatus: b.paidStatus}, nil
	}).Maybe()
}

func testInvoiceInput() InvoiceInput {
	return InvoiceInput{ItemInput: api.ItemInput{StartedBy: "test"}}
}

func TestInvoiceBelowThresholdIsBilledWithIdempotencyKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	b := &billingFake{loads: []store.Invoice{acmeInvoice()}}
	b.install(f)
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	r := f.result()
	require.Equal(t, api.StatusSynced, r.Status)
	require.Equal(t, map[string]string{"invoice": "INV-1", "stripe customer": "cus_new", "stripe invoice": "in_1"}, r.ExternalIDs)
	require.Equal(t, []string{"signalbox/customer/C-1"}, b.keys["CreateCustomer"], "keyed by our customer, not the run")
	require.Equal(t, []string{"invoice-to-billing:INV-1/invoice due 2026-12-31"}, b.keys["CreateInvoice"])
	require.Equal(t, []string{"invoice-to-billing:INV-1/line/1", "invoice-to-billing:INV-1/line/2"}, b.keys["AddInvoiceItem"])
	require.Equal(t, []string{"invoice-to-billing:INV-1/finalize"}, b.keys["FinalizeInvoice"])
	require.Equal(t, []store.BillingState{
		{StripeCustomerID: "cus_new", StripeInvoiceID: "in_1"},
		{Status: store.InvoiceBilled, StripeCustomerID: "cus_new", StripeInvoiceID: "in_1", StripeStatus: "open", BilledBy: store.BilledBySignalbox, BilledRef: "in_1"},
	}, b.recorded, "the Stripe IDs are written back as soon as they exist, then the billed state")
	require.Equal(t, []string{"INV-1"}, b.keys["FindInvoice"], "Stripe is asked for an invoice with our ID before one is created")
	require.Len(t, f.notified, 1)
	require.Equal(t, "finance", f.notified[0].Team)
	require.Contains(t, f.notified[0].Text, "Invoice INV-1 billed in Stripe as in_1: EUR 492.00, due 2026-12-31.")
}

func TestInvoiceAboveThresholdWaitsForFinance(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	big := acmeInvoice()
	big.Lines[0].Quantity = 40 // 40 × 150.00 + 42.00 = 6,042.00
	b := &billingFake{loads: []store.Invoice{big}, customer: "cus_old"}
	b.install(f)
	f.at(time.Hour, func() {
		s := f.state()
		require.Equal(t, api.ApprovalRequired, s.Exception.Kind)
		require.Equal(t, "finance", s.Exception.Deciders)
		require.Contains(t, s.Exception.Summary, "totals EUR 6,042.00, above the approval threshold of EUR 5,000.00")
		f.decide("sales", api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "looks right"})
		f.decide("finance", api.Decision{Action: api.ActionApprove, Actor: "carol", Reason: "contract #77 signed"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["sales"].err, `"alice" may not decide: only operators of team finance`)
	require.NoError(t, f.updates["finance"].err)
	require.Empty(t, b.keys["CreateCustomer"], "the existing customer is used")
	require.Equal(t, []string{"decision_refused Blocked→Blocked alice", "approve Blocked→Running carol"}, f.actions()[3:5],
		"the refusal is audited; the approval applies")
}

func TestInvoiceApprovalRejectedIsWrittenBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	big := acmeInvoice()
	big.Lines[0].UnitAmount = 1_000_000
	b := &billingFake{loads: []store.Invoice{big}}
	b.install(f)
	f.at(time.Hour, func() {
		f.decide("no", api.Decision{Action: api.ActionReject, Actor: "carol", Reason: "duplicate of INV-0"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusRejected, f.result().Status)
	require.Equal(t, []store.BillingState{{Status: store.InvoiceRejected}}, b.recorded, "the source of truth hears about the rejection")
	require.Empty(t, b.keys, "nothing reached Stripe")
}

func TestStripeRejectionThenAmendThenRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	rejected := appError("billing POST /v1/invoices: HTTP 400 invalid_request_error: Invoice due_date must be in the future (parameter due_date)",
		api.ErrorTargetRejected, true, activities.Rejection{Target: "billing", Status: 400, Code: "invalid_request_error",
			Message: "Invoice due_date must be in the future", Param: "due_date"})
	b := &billingFake{loads: []store.Invoice{acmeInvoice()}, customer: "cus_old", failures: map[string][]error{"CreateInvoice": {rejected}}}
	b.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.TargetRejected, s.Exception.Kind)
		require.Equal(t, "due_date", s.Exception.Details["parameter"])
		require.Contains(t, s.Exception.Summary, "Invoice due_date must be in the future")
		f.decide("lines", api.Decision{Action: api.ActionAmend, Actor: "carol", Reason: "x", Set: map[string]string{"lines": "[]"}})
		f.decide("bad-date", api.Decision{Action: api.ActionAmend, Actor: "carol", Reason: "x", Set: map[string]string{"dueDate": "31/01/2027"}})
		f.decide("ok", api.Decision{Action: api.ActionAmend, Actor: "carol", Reason: "customer agreed to end of January", Set: map[string]string{"dueDate": "2027-01-31"}})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["lines"].rejected, "lines: cannot be amended")
	require.ErrorContains(t, f.updates["bad-date"].rejected, "dueDate: must be a date like 2026-12-31")
	require.Len(t, b.amended, 1, "the amendment is written to PostgreSQL, the source of truth")
	require.Equal(t, time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), b.amended[0].DueDate)
	require.Equal(t, []string{"invoice-to-billing:INV-1/invoice due 2026-12-31", "invoice-to-billing:INV-1/invoice due 2027-01-31"}, b.keys["CreateInvoice"])
}

func TestStripeRetriesReuseTheIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	busy := temporal.NewApplicationErrorWithOptions("billing: HTTP 429", string(api.ErrorRateLimited), temporal.ApplicationErrorOptions{NextRetryDelay: 2 * time.Second})
	down := appError("billing: HTTP 500 api_error", api.ErrorTargetUnavailable, false)
	b := &billingFake{loads: []store.Invoice{acmeInvoice()}, failures: map[string][]error{
		"CreateCustomer": {down, busy}, "AddInvoiceItem": {busy, down, down}, "FinalizeInvoice": {down}}}
	b.install(f)
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, []string{"signalbox/customer/C-1", "signalbox/customer/C-1", "signalbox/customer/C-1"}, b.keys["CreateCustomer"])
	line1 := "invoice-to-billing:INV-1/line/1"
	require.Equal(t, []string{line1, line1, line1, line1, "invoice-to-billing:INV-1/line/2"}, b.keys["AddInvoiceItem"])
	require.Len(t, b.keys["FinalizeInvoice"], 2)
	require.Equal(t, b.keys["FinalizeInvoice"][0], b.keys["FinalizeInvoice"][1])
}

func TestInvalidInvoiceWaitsForAFixThenRetryReloads(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	broken := acmeInvoice()
	broken.Currency, broken.Lines = "zzz", nil
	b := &billingFake{loads: []store.Invoice{broken, acmeInvoice()}, customer: "cus_old"}
	b.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.ValidationFailed, s.Exception.Kind)
		require.Contains(t, s.Exception.Details["currency"], "must be one of")
		require.Equal(t, "an invoice needs at least one line", s.Exception.Details["lines"])
		f.decide("retry", api.Decision{Action: api.ActionRetry, Actor: "carol", Reason: "fixed the lines and currency in the billing system"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())
	require.Equal(t, api.StatusSynced, f.result().Status)
}

func TestMissingInvoiceCanBeCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-404")
	b := &billingFake{notFound: true}
	b.install(f)
	f.at(time.Minute, func() {
		require.Equal(t, "no invoice INV-404 in PostgreSQL", f.state().Exception.Details["id"])
		f.decide("cancel", api.Decision{Action: api.ActionCancel, Actor: "carol", Reason: "typo in the ID"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, InvoiceInput{})
	require.Equal(t, api.StatusCancelled, f.result().Status)
	require.Empty(t, b.recorded, "there is no invoice to write to")
}

func TestBilledInvoiceResyncRefreshesPaymentStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	billed := acmeInvoice()
	billed.Status, billed.StripeInvoiceID, billed.StripeStatus = store.InvoiceBilled, "in_9", "open"
	b := &billingFake{loads: []store.Invoice{billed}, paidStatus: "paid"}
	b.install(f)
	f.quiet()
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, []store.BillingState{{StripeStatus: "paid"}}, b.recorded, "Stripe owns the payment status")
	require.Empty(t, b.keys, "nothing is created again")
}

func TestInvoiceContract(t *testing.T) {
	t.Parallel()
	require.Empty(t, validateInvoice(acmeInvoice()))
	bad := acmeInvoice()
	bad.CustomerID, bad.CustomerEmail, bad.Currency, bad.DueDate = "", "nope", "EUR", time.Time{}
	bad.Lines = append(bad.Lines, store.InvoiceLine{LineNo: 3, Description: "", Quantity: 0, UnitAmount: -5})
	got := validateInvoice(bad).Details()
	require.Equal(t, map[string]string{
		"customerId": "must be 1 to 64 letters, digits, '.', '_' or '-'", "customerEmail": "must be an address like name@example.com",
		"currency": got["currency"], "dueDate": "is required",
		"lines[3].description": "is required", "lines[3].quantity": "must be between 1 and 1000000",
		"lines[3].unitAmount": "must be a positive amount in minor units, at most 99999999",
	}, got)
	require.Contains(t, got["currency"], "must be one of")
	huge := acmeInvoice()
	huge.Lines[0].Quantity, huge.Lines[0].UnitAmount = 1_000_000, 99_999_999
	require.Contains(t, validateInvoice(huge).Details()["lines"], "exceeds Stripe's maximum")

	require.Equal(t, "EUR 1,234,567.89", formatAmount("eur", 123456789))
	require.Equal(t, "EUR 0.05", formatAmount("eur", 5))
	require.Equal(t, "JPY 1,234", formatAmount("jpy", 1234))
}

func TestHandBilledInvoiceIsNeverBilledAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	byHand := acmeInvoice()
	byHand.Status, byHand.BilledBy, byHand.BilledRef = store.InvoiceBilled, store.BilledByHand, "in_manual_1"
	b := &billingFake{loads: []store.Invoice{byHand}}
	b.install(f)
	f.quiet()
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	r := f.result()
	require.Equal(t, api.StatusManuallyResolved, r.Status)
	require.Equal(t, "in_manual_1", r.ExternalIDs["billed by hand"])
	require.Empty(t, b.keys, "nothing is looked up or created in Stripe")
	require.Contains(t, f.actions(), "already_billed Running→ManuallyResolved system")
}

func TestResolveRecordsWhereTheInvoiceWasBilled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	inv := acmeInvoice()
	b := &billingFake{loads: []store.Invoice{inv}, failures: map[string][]error{
		"CreateInvoice": {appError("billing POST /v1/invoices: HTTP 400", api.ErrorTargetRejected, true)}}}
	b.install(f)
	f.at(time.Hour, func() {
		f.decide("resolve", api.Decision{Action: api.ActionResolve, Actor: "carol", Reason: "billed by hand", ExternalRef: "in_manual_1"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	r := f.result()
	require.Equal(t, api.StatusManuallyResolved, r.Status)
	require.Equal(t, "in_manual_1", r.ExternalIDs["resolved by hand"])
	last := b.recorded[len(b.recorded)-1]
	require.Equal(t, store.BillingState{Status: store.InvoiceBilled, BilledBy: store.BilledByHand, BilledRef: "in_manual_1"}, last,
		"the invoice keeps who billed it and where, so a re-sync never creates it again")
	require.Equal(t, []activities.RecordResolutionInput{{Integration: api.IntegrationInvoiceToBilling, SourceKey: "INV-1", TargetSystem: "stripe",
		WorkflowID: "invoice-to-billing:INV-1", ExternalRef: "in_manual_1"}}, f.resolutions)
}

func TestInvoiceChangedAfterApprovalIsApprovedAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	big := acmeInvoice()
	big.Lines[0].Quantity = 40 // EUR 6,042.00
	bigger := big
	bigger.Lines = slices.Clone(big.Lines)
	bigger.Lines[0].Quantity = 60 // EUR 9,042.00
	bigger.Version = big.Version + 1
	// Loaded at start, then reloaded after the first approval (changed), then after the second.
	b := &billingFake{loads: []store.Invoice{big, bigger, bigger}}
	b.install(f)
	f.at(time.Hour, func() {
		f.decide("first", api.Decision{Action: api.ActionApprove, Actor: "carol", Reason: "contract #77"})
	})
	f.at(2*time.Hour, func() {
		s := f.state()
		require.Equal(t, api.ApprovalRequired, s.Exception.Kind, "the approval held for 6,042.00 only")
		require.Contains(t, s.Exception.Summary, "changed after it was approved: it now totals EUR 9,042.00 (approved: EUR 6,042.00)")
		require.Equal(t, "line 1 was 40 × EUR 150.00, now 60 × EUR 150.00", s.Exception.Details["changed lines"])
		f.decide("second", api.Decision{Action: api.ActionApprove, Actor: "carol", Reason: "extension signed"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, []string{"invoice-to-billing:INV-1/line/1", "invoice-to-billing:INV-1/line/2"}, b.keys["AddInvoiceItem"])
	require.Contains(t, f.notified[len(f.notified)-1].Text, "EUR 9,042.00", "it billed the lines it reloaded")
}

func TestApprovedInvoiceBilledByHandMeanwhileIsNotBilled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	big := acmeInvoice()
	big.Lines[0].Quantity = 40
	handled := big
	handled.Status, handled.BilledBy, handled.BilledRef = store.InvoiceBilled, store.BilledByHand, "paper 12"
	b := &billingFake{loads: []store.Invoice{big, handled}}
	b.install(f)
	f.at(time.Hour, func() {
		f.decide("ok", api.Decision{Action: api.ActionApprove, Actor: "carol", Reason: "fine"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusManuallyResolved, f.result().Status)
	require.Empty(t, b.keys, "finance billed it by hand while it waited: nothing reaches Stripe")
}

func TestInvoiceFoundInStripeIsNotCreatedAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	b := &billingFake{loads: []store.Invoice{acmeInvoice()}, inStripe: &activities.InvoiceResult{StripeInvoiceID: "in_lost", StripeStatus: "open"}}
	b.install(f)
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	r := f.result()
	require.Equal(t, api.StatusSynced, r.Status)
	require.Equal(t, "in_lost", r.ExternalIDs["stripe invoice"])
	require.Empty(t, b.keys["CreateInvoice"], "an invoice with our ID exists: it is not created again")
	require.Empty(t, b.keys["AddInvoiceItem"], "it is finalized already: no line is added")
	require.Equal(t, store.BillingState{Status: store.InvoiceBilled, StripeCustomerID: "cus_new", StripeInvoiceID: "in_lost", StripeStatus: "open",
		BilledBy: store.BilledBySignalbox, BilledRef: "in_lost"}, b.recorded[len(b.recorded)-1])
}

func TestAmendmentOverAConcurrentEditRaisesConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	late := acmeInvoice()
	late.Version = 5
	edited := late
	edited.Version = 6
	edited.CustomerName = "Acme Holdings"
	b := &billingFake{loads: []store.Invoice{late, edited}, failures: staleAmendment()}
	b.install(f)
	f.at(time.Hour, func() { f.amendDueDate() })
	f.at(2*time.Hour, func() {
		s := f.state()
		require.Equal(t, api.Conflict, s.Exception.Kind, "the invoice changed in PostgreSQL: the amendment is not written over it")
		require.Equal(t, "dueDate=2027-01-31", s.Exception.Details["amendment"])
		f.decide("overwrite", api.Decision{Action: api.ActionApprove, Actor: "carol", Reason: "write my due date"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Len(t, b.amended, 1)
	require.Equal(t, "Acme Holdings", b.amended[0].CustomerName, "the other edit is kept")
	require.Equal(t, time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), b.amended[0].DueDate)
	require.Equal(t, []int64{6}, b.amendedAt, "written on the version it read, with the check")
}

func TestAnInvoiceBilledByHandWhileAConflictWaitedIsNotBilled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	late := acmeInvoice()
	late.Version = 5
	byHand := late
	byHand.Version, byHand.Status, byHand.BilledBy, byHand.BilledRef = 6, store.InvoiceBilled, store.BilledByHand, "paper 9"
	b := &billingFake{loads: []store.Invoice{late, byHand}, failures: staleAmendment()}
	b.install(f)
	f.at(time.Hour, func() { f.amendDueDate() })
	f.at(2*time.Hour, func() {
		f.decide("overwrite", api.Decision{Action: api.ActionApprove, Actor: "carol", Reason: "write my due date"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusManuallyResolved, f.result().Status, "it starts over from PostgreSQL and finds it billed by hand")
	require.Len(t, b.keys["CreateInvoice"], 1, "only the attempt Stripe refused: nothing is billed again")
	require.Empty(t, b.amended, "the amendment is not written over a billed invoice")
}

func TestResolvingAConflictDoesNotMarkTheInvoiceBilled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	late := acmeInvoice()
	b := &billingFake{loads: []store.Invoice{late}, failures: staleAmendment()}
	b.install(f)
	f.at(time.Hour, func() { f.amendDueDate() })
	f.at(2*time.Hour, func() {
		f.decide("keep", api.Decision{Action: api.ActionResolve, Actor: "carol", Reason: "keep the newer invoice", ExternalRef: "asked the clerk"})
	})
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusManuallyResolved, f.result().Status)
	for _, r := range b.recorded {
		require.NotEqual(t, store.InvoiceBilled, r.Status, "resolving a conflict over its data is not billing it")
	}
}

func TestARunCompletesTheDraftAnEarlierRunBegan(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	begun := acmeInvoice()
	begun.StripeInvoiceID, begun.StripeCustomerID = "in_old", "cus_old"
	b := &billingFake{loads: []store.Invoice{begun}, customer: "cus_old", draft: activities.DraftStateResult{StripeStatus: "draft", Lines: []int{1}}}
	b.install(f)
	f.env.ExecuteWorkflow(InvoiceToBilling, testInvoiceInput())

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, []string{"in_old"}, b.keys["DraftState"])
	require.Equal(t, []string{"invoice-to-billing:INV-1/line/2"}, b.keys["AddInvoiceItem"], "line 1 is in the draft already: it is not added twice")
	require.Empty(t, b.keys["CreateInvoice"])
}

// staleAmendment makes Stripe refuse the invoice's due date and then the
// amendment meet an invoice someone changed meanwhile.
func staleAmendment() map[string][]error {
	return map[string][]error{
		"CreateInvoice": {appError("billing POST /v1/invoices: HTTP 400 due_date", api.ErrorTargetRejected, true)},
		"AmendInvoice":  {temporal.NewNonRetryableApplicationError("changed", string(api.ErrorStale), nil)},
	}
}

// amendDueDate is finance amending the due date Stripe refused.
func (f *fixture) amendDueDate() {
	f.decide("amend", api.Decision{Action: api.ActionAmend, Actor: "carol", Reason: "agreed", Set: map[string]string{"dueDate": "2027-01-31"}})
}
