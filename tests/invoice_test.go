package tests

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// invoice stores a ready invoice of its own customer in the stack's database.
func (s *env) invoice(t *testing.T, id string, lines ...store.InvoiceLine) store.Invoice {
	t.Helper()
	if len(lines) == 0 {
		lines = []store.InvoiceLine{{LineNo: 1, Description: "Consulting", Quantity: 3, UnitAmount: 15000}, {LineNo: 2, Description: "Travel", Quantity: 1, UnitAmount: 4200}}
	}
	inv := store.Invoice{ID: id, CustomerID: "C-" + id, CustomerName: "Acme " + id, CustomerEmail: "ap@acme.example", Currency: "eur",
		DueDate: time.Now().UTC().AddDate(0, 0, 30).Truncate(24 * time.Hour), Status: store.InvoiceReady, Lines: lines}
	require.NoError(t, s.db(t).InsertInvoice(context.Background(), inv))
	return inv
}

func (s *env) syncInvoice(t *testing.T, id string) string {
	t.Helper()
	code, body := s.post(t, "/v1/invoices/"+id+"/sync", struct{}{}, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	return body["workflowId"].(string)
}

func (s *env) storedInvoice(t *testing.T, id string) store.Invoice {
	t.Helper()
	inv, err := s.db(t).GetInvoice(context.Background(), id)
	require.NoError(t, err)
	return inv
}

func TestInvoiceBelowThresholdIsBilledInStripe(t *testing.T) {
	t.Parallel()
	id := uniqueKey(t, "INV-small")
	shared.invoice(t, id)
	wf := shared.syncInvoice(t, id)
	require.Equal(t, "invoice-to-billing:"+id, wf)

	r := shared.waitResult(t, wf)
	require.Equal(t, api.StatusSynced, r.Status)
	inv := shared.storedInvoice(t, id)
	require.Equal(t, store.InvoiceBilled, inv.Status)
	require.True(t, strings.HasPrefix(inv.StripeInvoiceID, "in_"), inv.StripeInvoiceID)
	require.True(t, strings.HasPrefix(inv.StripeCustomerID, "cus_"), inv.StripeCustomerID)
	require.NotEmpty(t, inv.StripeStatus, "Stripe's status is written back")
	require.Equal(t, inv.StripeInvoiceID, r.ExternalIDs["stripe invoice"])
	require.Len(t, shared.messagesAbout(t, "Invoice "+id+" billed in Stripe"), 1)

	code, body := shared.post(t, "/v1/invoices/INV-none/sync", struct{}{}, nil)
	require.Equal(t, http.StatusNotFound, code, body)
}

func TestInvoiceAboveThresholdWaitsForAFinanceOperator(t *testing.T) {
	t.Parallel()
	id := uniqueKey(t, "INV-big")
	shared.invoice(t, id, store.InvoiceLine{LineNo: 1, Description: "Annual licence", Quantity: 1, UnitAmount: 1_200_000})
	wf := shared.syncInvoice(t, id)
	st := shared.waitStatus(t, wf, api.StatusBlocked)
	require.Equal(t, api.ApprovalRequired, st.Exception.Kind)
	require.Contains(t, st.Exception.Summary, "EUR 12,000.00")

	_, stderr, code := shared.signals(t, "", "approve", wf, "--as", "alice", "--reason", "sales says fine")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "only operators of team finance")
	out, stderr, code := shared.signals(t, "", "approve", wf, "--as", "carol", "--reason", "licence contract signed")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "approve applied")
	require.Equal(t, api.StatusSynced, shared.waitResult(t, wf).Status)
	require.Equal(t, store.InvoiceBilled, shared.storedInvoice(t, id).Status)
}

func TestStripeRejectionAmendedByFinance(t *testing.T) {
	t.Parallel()
	id := uniqueKey(t, "INV-late")
	inv := shared.invoice(t, id)
	ctx := context.Background()
	past := store.InvoiceHeader{CustomerName: inv.CustomerName, CustomerEmail: inv.CustomerEmail, Currency: inv.Currency, DueDate: time.Now().UTC().AddDate(0, 0, -3)}
	_, err := shared.db(t).UpdateInvoiceHeader(ctx, id, 0, past)
	require.NoError(t, err)
	wf := shared.syncInvoice(t, id)
	st := shared.waitStatus(t, wf, api.StatusBlocked)
	require.Equal(t, api.TargetRejected, st.Exception.Kind)
	require.Equal(t, "due_date", st.Exception.Details["parameter"])
	require.Equal(t, "invalid_request_error", st.Exception.Details["code"])

	due := time.Now().UTC().AddDate(0, 1, 0).Format(time.DateOnly)
	_, stderr, code := shared.signals(t, "", "amend", wf, "--set", "dueDate="+due, "--as", "carol", "--reason", "customer agreed to next month")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, wf).Status)
	stored := shared.storedInvoice(t, id)
	require.Equal(t, due, stored.DueDate.Format(time.DateOnly), "the amendment reached the source of truth")
	require.Equal(t, store.InvoiceBilled, stored.Status)
}

// TestStarterBillsEveryReadyInvoice runs alone (not in parallel), so that the
// ready invoices are only its own.
func TestStarterBillsEveryReadyInvoice(t *testing.T) {
	prefix := uniqueKey(t, "INV-batch")
	var ids []string
	for i := range 3 {
		id := fmt.Sprintf("%s-%d", prefix, i)
		shared.invoice(t, id)
		ids = append(ids, id)
	}
	ctx := context.Background()
	out, stderr, code, err := shared.Command(ctx, "", "starter", "invoices", "--status", "ready")
	require.NoError(t, err)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "[3/3] invoice-to-billing:"+ids[2]+" started")
	require.Contains(t, out, "started 3 of 3")
	for _, id := range ids {
		require.Equal(t, api.StatusSynced, shared.waitResult(t, "invoice-to-billing:"+id).Status)
	}
	out, _, code, err = shared.Command(ctx, "", "starter", "invoices", "--status", "ready")
	require.NoError(t, err)
	require.Equal(t, 0, code)
	require.Equal(t, "no ready invoices\n", out, "running it again finds nothing left to bill")
}

// TestStripeRetriesCarryTheSameIdempotencyKey injects 429s and 5xx into every
// Stripe call and checks that each create is retried under one key, derived
// from the workflow ID and step.
func TestStripeRetriesCarryTheSameIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := startStack(t, `{"stripe.*": {"rate5xx": 0.3, "rate429": 0.2, "retryAfter": "1s"}}`)
	id := uniqueKey(t, "INV-faults")
	s.invoice(t, id,
		store.InvoiceLine{LineNo: 1, Description: "a", Quantity: 1, UnitAmount: 100},
		store.InvoiceLine{LineNo: 2, Description: "b", Quantity: 2, UnitAmount: 200},
		store.InvoiceLine{LineNo: 3, Description: "c", Quantity: 3, UnitAmount: 300})
	wf := s.syncInvoice(t, id)
	// Half the calls fail; each 429 is waited out with its 2s margin: give it time.
	require.Equal(t, api.StatusSynced, s.waitResultWithin(t, wf, 5*time.Minute).Status)

	keys := map[string]map[string]int{} // endpoint → key → attempts
	for _, r := range s.sandboxRequests(t, "stripe.*") {
		if !strings.HasSuffix(r.Endpoint, ".create") && r.Endpoint != "stripe.invoices.finalize" {
			continue
		}
		require.True(t, strings.HasPrefix(r.Identity, "key:"), "every Stripe write carries an Idempotency-Key: %+v", r)
		if keys[r.Endpoint] == nil {
			keys[r.Endpoint] = map[string]int{}
		}
		keys[r.Endpoint][strings.TrimPrefix(r.Identity, "key:")]++
	}
	names := func(m map[string]int) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	require.Equal(t, []string{"signalbox/customer/C-" + id}, names(keys["stripe.customers.create"]))
	require.Equal(t, []string{wf + "/invoice"}, names(keys["stripe.invoices.create"]))
	require.Equal(t, []string{wf + "/line/1", wf + "/line/2", wf + "/line/3"}, names(keys["stripe.invoiceitems.create"]))
	require.Equal(t, []string{wf + "/finalize"}, names(keys["stripe.invoices.finalize"]))
	attempts := 0
	for _, m := range keys {
		for _, n := range m {
			attempts += n
		}
	}
	require.Greater(t, attempts, 6, "faults made some creates retry, each under the key it started with")
	require.Zero(t, s.sandboxStats(t).EarlyRetries)
}
