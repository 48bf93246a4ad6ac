package activities

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/billing"
	"github.com/signalbox-dev/signalbox/store"
)

// Billing holds the activities that call Stripe. Each makes one request per
// attempt, so the billing queue's rate limit is Stripe's request rate.
type Billing struct {
	Client *billing.Client
	Store  *store.Store
}

// customerKey is the external link's source key of one of our customers.
func customerKey(customerID string) string { return "customer:" + customerID }

// FindCustomerInput names one of our customers.
type FindCustomerInput struct {
	Integration string
	CustomerID  string
}

// FindCustomerResult is the Stripe customer, if there is one.
type FindCustomerResult struct {
	StripeCustomerID string
	Found            bool
}

// FindCustomer returns the Stripe customer linked to ours, else the one whose
// metadata names ours (and links it).
func (a *Billing) FindCustomer(ctx context.Context, in FindCustomerInput) (FindCustomerResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (FindCustomerResult, error) {
		link, err := a.Store.GetLink(ctx, in.Integration, customerKey(in.CustomerID), api.SystemStripe)
		if err == nil {
			return FindCustomerResult{StripeCustomerID: link.TargetID, Found: true}, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return FindCustomerResult{}, Classify(err)
		}
		c, found, err := a.Client.FindCustomer(ctx, in.CustomerID)
		if err != nil || !found {
			return FindCustomerResult{}, Classify(err)
		}
		return FindCustomerResult{StripeCustomerID: c.ID, Found: true}, Classify(a.linkCustomer(ctx, in.Integration, in.CustomerID, c.ID))
	})
}

// CreateCustomerInput describes the Stripe customer to create.
type CreateCustomerInput struct {
	Integration             string
	CustomerID, Name, Email string
	IdempotencyKey          string
}

// CreateCustomerResult names the customer created.
type CreateCustomerResult struct {
	StripeCustomerID string
}

// CreateCustomer creates the Stripe customer under the idempotency key and links it.
func (a *Billing) CreateCustomer(ctx context.Context, in CreateCustomerInput) (CreateCustomerResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (CreateCustomerResult, error) {
		c, err := a.Client.CreateCustomer(ctx, billing.NewCustomer{OurID: in.CustomerID, Name: in.Name, Email: in.Email}, in.IdempotencyKey)
		if err != nil {
			return CreateCustomerResult{}, Classify(err)
		}
		return CreateCustomerResult{StripeCustomerID: c.ID}, Classify(a.linkCustomer(ctx, in.Integration, in.CustomerID, c.ID))
	})
}

func (a *Billing) linkCustomer(ctx context.Context, integration, customerID, stripeID string) error {
	return a.Store.SaveLink(ctx, store.Link{Integration: integration, SourceKey: customerKey(customerID), TargetSystem: api.SystemStripe,
		TargetID: stripeID, WorkflowID: "", SyncedAt: time.Now().UTC()})
}

// CreateInvoiceInput describes the draft invoice to create.
type CreateInvoiceInput struct {
	InvoiceID, StripeCustomerID, Currency string
	DueDate                               time.Time
	IdempotencyKey                        string
}

// InvoiceResult is what Stripe holds for an invoice.
type InvoiceResult struct {
	StripeInvoiceID string
	// StripeStatus is Stripe's (and payment's) status: draft, open, paid, ...
	StripeStatus string
	Total        int64
}

// CreateInvoice creates the draft invoice under the idempotency key.
func (a *Billing) CreateInvoice(ctx context.Context, in CreateInvoiceInput) (InvoiceResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (InvoiceResult, error) {
		inv, err := a.Client.CreateInvoice(ctx, billing.NewInvoice{CustomerID: in.StripeCustomerID, OurID: in.InvoiceID,
			Currency: in.Currency, DueDate: in.DueDate}, in.IdempotencyKey)
		return invoiceResult(inv), Classify(err)
	})
}

// AddInvoiceItemInput is one line to add to the draft invoice.
type AddInvoiceItemInput struct {
	StripeCustomerID, StripeInvoiceID, Currency string
	Line                                        store.InvoiceLine
	IdempotencyKey                              string
}

// AddInvoiceItem adds a line under the idempotency key and returns the item's ID.
func (a *Billing) AddInvoiceItem(ctx context.Context, in AddInvoiceItemInput) (AddInvoiceItemResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (AddInvoiceItemResult, error) {
		id, err := a.Client.AddItem(ctx, billing.NewItem{CustomerID: in.StripeCustomerID, InvoiceID: in.StripeInvoiceID,
			Currency: in.Currency, Description: in.Line.Description, Quantity: in.Line.Quantity, UnitAmount: in.Line.UnitAmount,
			LineNo: in.Line.LineNo}, in.IdempotencyKey)
		return AddInvoiceItemResult{StripeInvoiceItemID: id}, Classify(err)
	})
}

// AddInvoiceItemResult names the invoice item added.
type AddInvoiceItemResult struct {
	StripeInvoiceItemID string
}

// FinalizeInvoiceInput names the draft invoice to finalize.
type FinalizeInvoiceInput struct {
	StripeInvoiceID string
	IdempotencyKey  string
}

// FinalizeInvoice finalizes the invoice under the idempotency key.
func (a *Billing) FinalizeInvoice(ctx context.Context, in FinalizeInvoiceInput) (InvoiceResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (InvoiceResult, error) {
		inv, err := a.Client.Finalize(ctx, in.StripeInvoiceID, in.IdempotencyKey)
		return invoiceResult(inv), Classify(err)
	})
}

// FindInvoiceInput names one of our invoices.
type FindInvoiceInput struct {
	InvoiceID string
}

// FindInvoiceResult is the Stripe invoice that carries our ID, if any.
type FindInvoiceResult struct {
	Found   bool
	Invoice InvoiceResult
}

// FindInvoice looks Stripe up for an invoice whose metadata names ours, so a
// create never duplicates one that exists.
func (a *Billing) FindInvoice(ctx context.Context, in FindInvoiceInput) (FindInvoiceResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (FindInvoiceResult, error) {
		inv, found, err := a.Client.FindInvoice(ctx, in.InvoiceID)
		return FindInvoiceResult{Found: found, Invoice: invoiceResult(inv)}, Classify(err)
	})
}

// DraftStateInput names a Stripe invoice an earlier run began.
type DraftStateInput struct {
	StripeInvoiceID string
}

// DraftStateResult says how far the invoice got: its status, and the line
// numbers it holds already.
type DraftStateResult struct {
	StripeStatus string
	Lines        []int
}

// DraftState reads a Stripe invoice an earlier run began, so that a re-run
// adds only the lines it lacks and finalizes it only if it is still a draft.
func (a *Billing) DraftState(ctx context.Context, in DraftStateInput) (DraftStateResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (DraftStateResult, error) {
		inv, err := a.Client.GetInvoice(ctx, in.StripeInvoiceID)
		if err != nil {
			return DraftStateResult{}, Classify(err)
		}
		lines, err := a.Client.InvoiceLines(ctx, in.StripeInvoiceID)
		return DraftStateResult{StripeStatus: inv.Status, Lines: lines}, Classify(err)
	})
}

// GetInvoice reads the invoice's status in Stripe.
func (a *Billing) GetInvoice(ctx context.Context, in GetInvoiceInput) (InvoiceResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (InvoiceResult, error) {
		inv, err := a.Client.GetInvoice(ctx, in.StripeInvoiceID)
		return invoiceResult(inv), Classify(err)
	})
}

// GetInvoiceInput names the Stripe invoice to read.
type GetInvoiceInput struct {
	StripeInvoiceID string
}

// UnmarshalJSON also reads the bare string that items scheduled before this
// type existed sent, so their queued tasks still run.
func (in *GetInvoiceInput) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &in.StripeInvoiceID)
	}
	type plain GetInvoiceInput
	return json.Unmarshal(b, (*plain)(in))
}

func invoiceResult(inv billing.Invoice) InvoiceResult {
	return InvoiceResult{StripeInvoiceID: inv.ID, StripeStatus: inv.Status, Total: inv.Total}
}

// Invoices holds the local activities that read and write the invoices the
// business keeps in PostgreSQL, the source of truth of amounts and lines.
type Invoices struct {
	Store *store.Store
}

// LoadInvoice reads the invoice; a missing one is a non-retryable NotFound.
func (a *Invoices) LoadInvoice(ctx context.Context, in LoadInvoiceInput) (store.Invoice, error) {
	inv, err := a.Store.GetInvoice(ctx, in.InvoiceID)
	if errors.Is(err, store.ErrNotFound) {
		return inv, temporal.NewNonRetryableApplicationError("invoice "+in.InvoiceID+" does not exist in PostgreSQL", string(api.ErrorNotFound), nil)
	}
	return inv, Classify(err)
}

// LoadInvoiceInput names the invoice to read.
type LoadInvoiceInput struct {
	InvoiceID string
}

// AmendInvoiceInput carries amended header fields back to PostgreSQL.
type AmendInvoiceInput struct {
	InvoiceID string
	// IfVersion is the version the amendment was made on; 0 writes whatever
	// the invoice's version (items begun before versions existed).
	IfVersion int64
	Header    store.InvoiceHeader
}

// AmendInvoice writes amended header fields to the source of truth, unless
// the invoice changed since the item read it: then it fails with string(api.ErrorStale) and
// writes nothing, so no one's edit is overwritten.
func (a *Invoices) AmendInvoice(ctx context.Context, in AmendInvoiceInput) (VersionResult, error) {
	version, err := a.Store.UpdateInvoiceHeader(ctx, in.InvoiceID, in.IfVersion, in.Header)
	if errors.Is(err, store.ErrStale) {
		return VersionResult{}, temporal.NewNonRetryableApplicationError("invoice "+in.InvoiceID+" changed in PostgreSQL while the item waited; the amendment was not written", string(api.ErrorStale), nil)
	}
	return VersionResult{Version: version}, Classify(err)
}

// VersionResult is the version a record has after a write.
type VersionResult struct {
	Version int64
}

// RecordBillingInput writes what Stripe holds back to the invoice.
type RecordBillingInput struct {
	InvoiceID string
	State     store.BillingState
}

// RecordBilling writes the Stripe IDs and statuses back to PostgreSQL.
func (a *Invoices) RecordBilling(ctx context.Context, in RecordBillingInput) (VersionResult, error) {
	version, err := a.Store.SetBillingState(ctx, in.InvoiceID, in.State)
	return VersionResult{Version: version}, Classify(err)
}
