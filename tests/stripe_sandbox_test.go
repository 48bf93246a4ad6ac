package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// sandboxInvoice is a Stripe invoice as the sandbox remembers it: every
// invoice created through its Stripe port, with what was done to it since.
// Amounts are in minor units; times are Stripe's, in whole seconds.
type sandboxInvoice struct {
	ID, Customer, Currency string
	Metadata               map[string]string
	// Status is Stripe's: draft, open, paid, void or uncollectible.
	Status                       string
	Total, AmountDue, AmountPaid int64
	Created, DueDate             time.Time
	FinalizedAt, PaidAt          time.Time
	VoidedAt                     time.Time
	MarkedUncollectibleAt        time.Time
	// Deleted is true once the invoice was deleted; Stripe then answers 404.
	Deleted   bool
	DeletedAt time.Time
	Lines     []sandboxInvoiceLine
}

type sandboxInvoiceLine struct {
	ID, Description, UnitAmountDecimal string
	Quantity, Amount                   int64
	Metadata                           map[string]string
}

// stripeInvoice reads what the sandbox's Stripe holds for invoice id.
func (s *env) stripeInvoice(t *testing.T, id string) sandboxInvoice {
	t.Helper()
	return s.stripeInvoiceDo(t, http.MethodGet, id, nil)
}

// setStripeInvoice changes an invoice's status as a person in Stripe's
// dashboard would — "open" (finalized), "paid", "void" or "uncollectible" —
// at the time at (zero: now); Stripe's rules apply (a paid invoice cannot be
// voided). It returns the invoice as changed.
func (s *env) setStripeInvoice(t *testing.T, id, status string, at time.Time) sandboxInvoice {
	t.Helper()
	change := map[string]any{"status": status}
	if !at.IsZero() {
		change["at"] = at.Format(time.RFC3339)
	}
	return s.stripeInvoiceDo(t, http.MethodPost, id, change)
}

// setStripeInvoiceTotal changes an invoice's total (and amount due) in
// Stripe, so that it disagrees with PostgreSQL.
func (s *env) setStripeInvoiceTotal(t *testing.T, id string, total int64) sandboxInvoice {
	t.Helper()
	return s.stripeInvoiceDo(t, http.MethodPost, id, map[string]any{"total": total})
}

// deleteStripeInvoice deletes an invoice in Stripe: reading it answers 404.
func (s *env) deleteStripeInvoice(t *testing.T, id string) {
	t.Helper()
	s.stripeInvoiceDo(t, http.MethodDelete, id, nil)
}

// stripeInvoiceDo sends method to /_sandbox/stripe/invoices/{id} with body
// as JSON (if any), requires a 200 and returns the invoice.
func (s *env) stripeInvoiceDo(t *testing.T, method, id string, body any) sandboxInvoice {
	t.Helper()
	var payload io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		payload = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, s.SandboxURL()+"/_sandbox/stripe/invoices/"+id, payload)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", method, id, raw)
	var inv sandboxInvoice
	require.NoError(t, json.Unmarshal(raw, &inv))
	return inv
}

// TestStripeSandboxHoldsTheBilledInvoice bills an invoice and finds it in the
// sandbox's Stripe as billed, then acts on it as a person in Stripe would.
func TestStripeSandboxHoldsTheBilledInvoice(t *testing.T) {
	t.Parallel()
	id := uniqueKey(t, "INV-sbx")
	shared.invoice(t, id)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, shared.syncInvoice(t, id)).Status)
	stored := shared.storedInvoice(t, id)
	require.Equal(t, store.InvoiceBilled, stored.Status)
	require.Equal(t, "open", stored.StripeStatus, "the finalized status is written back")

	inv := shared.stripeInvoice(t, stored.StripeInvoiceID)
	require.Equal(t, "open", inv.Status)
	require.Equal(t, int64(3*15000+4200), inv.Total, "Stripe's total is the sum of the lines")
	require.Equal(t, id, inv.Metadata["signalbox_invoice_id"])
	require.Equal(t, stored.StripeCustomerID, inv.Customer)
	require.Equal(t, "eur", inv.Currency)
	require.Equal(t, stored.DueDate.Unix(), inv.DueDate.Unix())
	require.False(t, inv.FinalizedAt.IsZero())
	require.Len(t, inv.Lines, 2)

	at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	paid := shared.setStripeInvoice(t, inv.ID, "paid", at)
	require.Equal(t, "paid", paid.Status)
	require.Equal(t, at, paid.PaidAt)
	require.Equal(t, inv.Total, paid.AmountPaid)
	require.Equal(t, int64(100), shared.setStripeInvoiceTotal(t, inv.ID, 100).Total)
	shared.deleteStripeInvoice(t, inv.ID)
	require.True(t, shared.stripeInvoice(t, inv.ID).Deleted)
}
