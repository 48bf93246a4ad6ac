// Package billing talks to Stripe through the official stripe-go client: find
// or create customers, create invoices and their items, finalize them. Every
// create carries the idempotency key its caller derives, and every failure is
// returned as a *rest.Error, so activities classify Stripe like any target.
package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85"

	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// MetadataCustomerID and MetadataInvoiceID name our IDs in Stripe's metadata.
const (
	MetadataCustomerID = "signalbox_customer_id"
	MetadataInvoiceID  = "signalbox_invoice_id"
)

// Client calls the Stripe API.
type Client struct {
	sc *stripe.Client
}

// New returns a client for the API at baseURL (https://api.stripe.com, or
// stripe-mock behind the sandbox) with a secret key, over hc (see
// rest.HTTPClient). stripe-go's own retries are off: Temporal retries, with
// the same idempotency keys.
func New(baseURL, key string, hc *http.Client) *Client {
	cfg := &stripe.BackendConfig{
		URL:               stripe.String(strings.TrimSuffix(baseURL, "/")),
		HTTPClient:        hc,
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	return &Client{sc: stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))}
}

// Customer is a Stripe customer.
type Customer struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// FindCustomer looks for the customer whose metadata carries our customer ID.
// Stripe's search is eventually consistent (about a minute), which is why
// creates also carry an idempotency key.
func (c *Client) FindCustomer(ctx context.Context, ourID string) (Customer, bool, error) {
	params := &stripe.CustomerSearchParams{SearchParams: stripe.SearchParams{
		Query: metadataQuery(MetadataCustomerID, ourID),
		Limit: stripe.Int64(10),
	}}
	list := c.sc.V1Customers.Search(ctx, params)
	if err := list.Err(); err != nil {
		return Customer{}, false, convert("GET /v1/customers/search", err)
	}
	for _, cu := range list.Data() {
		if cu.Metadata[MetadataCustomerID] == ourID {
			return Customer{ID: cu.ID, Email: cu.Email}, true, nil
		}
	}
	return Customer{}, false, nil
}

// metadataQuery is a Stripe search query for objects whose metadata key holds value.
func metadataQuery(key, value string) string {
	return fmt.Sprintf("metadata['%s']:'%s'", key, strings.ReplaceAll(value, "'", `\'`))
}

// NewCustomer describes a customer to create.
type NewCustomer struct {
	OurID, Name, Email string
}

// CreateCustomer creates a customer under an idempotency key.
func (c *Client) CreateCustomer(ctx context.Context, in NewCustomer, idempotencyKey string) (Customer, error) {
	params := &stripe.CustomerCreateParams{
		Name:     stripe.String(in.Name),
		Email:    stripe.String(in.Email),
		Metadata: map[string]string{MetadataCustomerID: in.OurID},
	}
	params.SetIdempotencyKey(idempotencyKey)
	cu, err := c.sc.V1Customers.Create(ctx, params)
	if err != nil {
		return Customer{}, convert("POST /v1/customers", err)
	}
	return Customer{ID: cu.ID, Email: cu.Email}, nil
}

// Invoice is a Stripe invoice.
type Invoice struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Total, AmountDue and AmountPaid are in minor units of Currency.
	Total      int64  `json:"total"`
	AmountDue  int64  `json:"amountDue,omitempty"`
	AmountPaid int64  `json:"amountPaid,omitempty"`
	Currency   string `json:"currency,omitempty"`
	// OurID is our invoice ID, from its metadata.
	OurID string `json:"ourId,omitempty"`
	// StatusAt is when it reached its status (Stripe's status_transitions),
	// or when it was created.
	StatusAt time.Time `json:"statusAt,omitzero"`
}

// NewInvoice describes a draft invoice to create.
type NewInvoice struct {
	CustomerID string
	OurID      string
	Currency   string
	DueDate    time.Time
}

// CreateInvoice creates a draft invoice, sent to the customer for payment by
// the due date, that takes only the items added to it explicitly.
func (c *Client) CreateInvoice(ctx context.Context, in NewInvoice, idempotencyKey string) (Invoice, error) {
	params := &stripe.InvoiceCreateParams{
		Customer:                    stripe.String(in.CustomerID),
		Currency:                    stripe.String(in.Currency),
		CollectionMethod:            stripe.String(string(stripe.InvoiceCollectionMethodSendInvoice)),
		DueDate:                     stripe.Int64(in.DueDate.Unix()),
		AutoAdvance:                 stripe.Bool(false),
		PendingInvoiceItemsBehavior: stripe.String("exclude"),
		Metadata:                    map[string]string{MetadataInvoiceID: in.OurID},
	}
	params.SetIdempotencyKey(idempotencyKey)
	inv, err := c.sc.V1Invoices.Create(ctx, params)
	if err != nil {
		return Invoice{}, convert("POST /v1/invoices", err)
	}
	return toInvoice(inv), nil
}

// NewItem is one line to add to a draft invoice; UnitAmount is in minor units.
type NewItem struct {
	CustomerID, InvoiceID, Currency, Description string
	Quantity, UnitAmount                         int64
	LineNo                                       int
}

// AddItem adds a line to a draft invoice and returns the item's ID.
func (c *Client) AddItem(ctx context.Context, in NewItem, idempotencyKey string) (string, error) {
	params := &stripe.InvoiceItemCreateParams{
		Customer:    stripe.String(in.CustomerID),
		Invoice:     stripe.String(in.InvoiceID),
		Currency:    stripe.String(in.Currency),
		Description: stripe.String(in.Description),
		Quantity:    stripe.Int64(in.Quantity),
		// Exact: minor units are integers far below 2^53.
		UnitAmountDecimal: stripe.Float64(float64(in.UnitAmount)),
		Metadata:          map[string]string{metadataLineNo: fmt.Sprint(in.LineNo)},
	}
	params.SetIdempotencyKey(idempotencyKey)
	item, err := c.sc.V1InvoiceItems.Create(ctx, params)
	if err != nil {
		return "", convert("POST /v1/invoiceitems", err)
	}
	return item.ID, nil
}

// Finalize finalizes a draft invoice so it can be sent and paid.
func (c *Client) Finalize(ctx context.Context, invoiceID, idempotencyKey string) (Invoice, error) {
	params := &stripe.InvoiceFinalizeInvoiceParams{AutoAdvance: stripe.Bool(false)}
	params.SetIdempotencyKey(idempotencyKey)
	inv, err := c.sc.V1Invoices.FinalizeInvoice(ctx, invoiceID, params)
	if err != nil {
		return Invoice{}, convert("POST /v1/invoices/{id}/finalize", err)
	}
	return toInvoice(inv), nil
}

// FindInvoice looks for the invoice whose metadata carries our invoice ID: an
// invoice billed before (by an earlier run, or one whose answer was lost) is
// never created again. Like customer search, it is eventually consistent,
// which is why creates also carry an idempotency key.
func (c *Client) FindInvoice(ctx context.Context, ourID string) (Invoice, bool, error) {
	params := &stripe.InvoiceSearchParams{SearchParams: stripe.SearchParams{
		Query: metadataQuery(MetadataInvoiceID, ourID),
		Limit: stripe.Int64(10),
	}}
	list := c.sc.V1Invoices.Search(ctx, params)
	if err := list.Err(); err != nil {
		return Invoice{}, false, convert("GET /v1/invoices/search", err)
	}
	for _, inv := range list.Data() {
		if inv.Metadata[MetadataInvoiceID] == ourID && inv.Status != stripe.InvoiceStatusVoid {
			return toInvoice(inv), true, nil
		}
	}
	return Invoice{}, false, nil
}

// metadataLineNo names our line number in an invoice item's metadata.
const metadataLineNo = "signalbox_line_no"

// InvoiceLines returns the line numbers (our signalbox_line_no) of the items
// a Stripe invoice already holds, so that a draft made by an earlier run is
// completed rather than filled twice (Stripe forgets idempotency keys after a day).
func (c *Client) InvoiceLines(ctx context.Context, invoiceID string) ([]int, error) {
	params := &stripe.InvoiceItemListParams{Invoice: stripe.String(invoiceID)}
	params.Limit = stripe.Int64(100)
	var lines []int
	for item, err := range c.sc.V1InvoiceItems.List(ctx, params).All(ctx) {
		if err != nil {
			return nil, convert("GET /v1/invoiceitems", err)
		}
		if n, err := strconv.Atoi(item.Metadata[metadataLineNo]); err == nil && item.Invoice != nil && item.Invoice.ID == invoiceID {
			lines = append(lines, n)
		}
	}
	return lines, nil
}

// GetInvoice reads an invoice, for its payment status.
func (c *Client) GetInvoice(ctx context.Context, invoiceID string) (Invoice, error) {
	inv, err := c.sc.V1Invoices.Retrieve(ctx, invoiceID, nil)
	if err != nil {
		return Invoice{}, convert("GET /v1/invoices/{id}", err)
	}
	return toInvoice(inv), nil
}

func toInvoice(inv *stripe.Invoice) Invoice {
	out := Invoice{ID: inv.ID, Status: string(inv.Status), Total: inv.Total, AmountDue: inv.AmountDue, AmountPaid: inv.AmountPaid,
		Currency: string(inv.Currency), OurID: inv.Metadata[MetadataInvoiceID]}
	if inv.Created > 0 {
		out.StatusAt = time.Unix(inv.Created, 0).UTC()
	}
	if t := inv.StatusTransitions; t != nil {
		at := map[stripe.InvoiceStatus]int64{stripe.InvoiceStatusOpen: t.FinalizedAt, stripe.InvoiceStatusPaid: t.PaidAt,
			stripe.InvoiceStatusVoid: t.VoidedAt, stripe.InvoiceStatusUncollectible: t.MarkedUncollectibleAt}[inv.Status]
		if at > 0 {
			out.StatusAt = time.Unix(at, 0).UTC()
		}
	}
	return out
}

// convert turns stripe-go's errors into *rest.Error: Stripe's type becomes
// the code, its message and parameter are kept for the operator, and an
// idempotency_error is marked so that activities tell a key still in use (409)
// from a key reused with other parameters (400).
func convert(op string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode == 0 {
		return rest.TransportError("billing", op, err)
	}
	e := &rest.Error{Target: "billing", Op: op, StatusCode: se.HTTPStatusCode, Code: string(se.Type), Message: se.Msg, Param: se.Param,
		Idempotency: se.Type == stripe.ErrorTypeIdempotency}
	if se.Code != "" {
		e.Code += "/" + string(se.Code)
	}
	if se.LastResponse != nil {
		e.RetryAfter, e.HasRetryAfter = rest.ParseRetryAfter(se.LastResponse.Header.Get("Retry-After"), time.Now())
	}
	return e
}
