package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// stripeCreates counts the successful Stripe invoice creates of an item.
func (s *env) stripeCreates(t *testing.T, workflowID string) int {
	t.Helper()
	n := 0
	for _, r := range s.sandboxRequests(t, "stripe.invoices.create") {
		if r.Identity == "key:"+workflowID+"/invoice" && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// TestAnInvoiceIsNeverBilledTwice tries every path that could bill an invoice
// a second time: a manual resolution then a re-sync, a rejection then a
// re-sync, a start while another run waits, and a re-sync of a billed invoice.
func TestAnInvoiceIsNeverBilledTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("resolved by hand, then synced again", func(t *testing.T) {
		t.Parallel()
		id := uniqueKey(t, "INV-hand")
		inv := shared.invoice(t, id)
		_, err := shared.db(t).UpdateInvoiceHeader(ctx, id, 0, store.InvoiceHeader{CustomerName: inv.CustomerName, CustomerEmail: inv.CustomerEmail,
			Currency: inv.Currency, DueDate: time.Now().UTC().AddDate(0, 0, -3)})
		require.NoError(t, err)
		wf := shared.syncInvoice(t, id)
		require.Equal(t, api.TargetRejected, shared.waitStatus(t, wf, api.StatusBlocked).Exception.Kind)
		_, stderr, code := shared.signals(t, "", "resolve", wf, "--as", "carol", "--external-ref", "in_manual_1", "--reason", "billed by hand")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, api.StatusManuallyResolved, shared.waitResult(t, wf).Status)
		stored := shared.storedInvoice(t, id)
		require.Equal(t, store.InvoiceBilled, stored.Status)
		require.Equal(t, store.BilledByHand, stored.BilledBy)
		require.Equal(t, "in_manual_1", stored.BilledRef, "the external reference is kept with the invoice")
		out, stderr, code := shared.signals(t, "", "show", wf)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, out, "resolved by hand=in_manual_1")

		// Fix the due date and sync again: nothing reaches Stripe.
		_, err = shared.db(t).UpdateInvoiceHeader(ctx, id, 0, store.InvoiceHeader{CustomerName: inv.CustomerName, CustomerEmail: inv.CustomerEmail,
			Currency: inv.Currency, DueDate: time.Now().UTC().AddDate(0, 1, 0)})
		require.NoError(t, err)
		again := shared.syncInvoice(t, id)
		r := shared.waitResult(t, again)
		require.Equal(t, api.StatusManuallyResolved, r.Status)
		require.Equal(t, "in_manual_1", r.ExternalIDs["billed by hand"])
		require.Zero(t, shared.stripeCreates(t, wf), "no Stripe invoice was ever created for it")
	})

	t.Run("rejected, then synced again", func(t *testing.T) {
		t.Parallel()
		id := uniqueKey(t, "INV-rej")
		shared.invoice(t, id, store.InvoiceLine{LineNo: 1, Description: "Licence", Quantity: 1, UnitAmount: 900_000})
		wf := shared.syncInvoice(t, id)
		shared.waitStatus(t, wf, api.StatusBlocked)
		_, stderr, code := shared.signals(t, "", "reject", wf, "--as", "carol", "--reason", "not agreed")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, api.StatusRejected, shared.waitResult(t, wf).Status)
		code, body := shared.post(t, "/v1/invoices/"+id+"/sync", struct{}{}, nil)
		require.Equal(t, http.StatusConflict, code, body)
		require.Contains(t, body["error"], "is rejected")
		require.Zero(t, shared.stripeCreates(t, wf))
	})

	t.Run("started again while it waits, then approved", func(t *testing.T) {
		t.Parallel()
		id := uniqueKey(t, "INV-wait")
		shared.invoice(t, id, store.InvoiceLine{LineNo: 1, Description: "Licence", Quantity: 1, UnitAmount: 900_000})
		wf := shared.syncInvoice(t, id)
		first := shared.waitStatus(t, wf, api.StatusBlocked)
		code, body := shared.post(t, "/v1/invoices/"+id+"/sync", struct{}{}, nil)
		require.Equal(t, http.StatusAccepted, code, body)
		out, errOut, code, err := shared.Command(ctx, "", "starter", "invoice", id)
		require.NoError(t, err)
		require.Equal(t, 0, code, out+errOut)
		_, stderr2, code := shared.signals(t, "", "approve", wf, "--as", "carol", "--reason", "contract signed")
		require.Equal(t, 0, code, stderr2)
		require.Equal(t, api.StatusSynced, shared.waitResult(t, wf).Status)
		require.Equal(t, first.StartedAt, shared.waitStatus(t, wf, api.StatusSynced).StartedAt, "one run all along")

		// A re-sync of the billed invoice refreshes its status and creates nothing.
		again := shared.syncInvoice(t, id)
		require.Equal(t, api.StatusSynced, shared.waitResult(t, again).Status)
		require.Equal(t, 1, shared.stripeCreates(t, wf), "one Stripe invoice, however often it was started")
		require.Len(t, shared.messagesAbout(t, "Invoice "+id+" billed in Stripe"), 1)
	})
}

// createContact makes a CRM contact as a salesperson would, by hand.
func (s *env) createContact(t *testing.T, props map[string]string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"properties": props})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.SandboxURL()+"/crm/v3/objects/contacts", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sandbox-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var c contact
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	return c.ID
}

// TestSomeoneElsesContactIsNotOverwritten: a contact a salesperson typed in
// is found by the lead's email. Its hand-entered phone survives the lead's
// blank; its job title, which the form contradicts, waits for a person; the
// person keeps the CRM's, and a later re-sync of the same lead asks no more.
func TestSomeoneElsesContactIsNotOverwritten(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-typed")
	l := lead(key)
	l.JobTitle = "Engineer"
	contactID := shared.createContact(t, map[string]string{"email": l.Email, "firstname": "A.", "lastname": l.LastName,
		"phone": "+44 20 7946 0001", "jobtitle": "CTO"})
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	code, body := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st := shared.waitStatus(t, id, api.StatusBlocked)
	require.Equal(t, api.Conflict, st.Exception.Kind)
	require.Equal(t, `CRM "CTO", form "Engineer"`, st.Exception.Details["jobtitle"])
	require.NotContains(t, st.Exception.Details, "phone")
	shared.waitMessage(t, id+" waits for a decision by sales")

	_, stderr, code := shared.signals(t, "", "resolve", id, "--as", "alice", "--external-ref", "checked with the customer: CTO", "--reason", "the CRM is right")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusManuallyResolved, shared.waitResult(t, id).Status)
	c := shared.contactsWithEmail(t, l.Email)
	require.Len(t, c, 1)
	require.Equal(t, contactID, c[0].ID)
	require.Equal(t, "+44 20 7946 0001", c[0].Properties["phone"], "the blank never overwrote the hand-entered phone")
	require.Equal(t, "CTO", c[0].Properties["jobtitle"])
	link, err := shared.db(t).GetLink(context.Background(), api.IntegrationLeadToCRM, key, "crm")
	require.NoError(t, err)
	require.Equal(t, "checked with the customer: CTO", link.ManualRef)

	code, _ = shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code)
	r := shared.waitResult(t, id)
	require.Equal(t, api.StatusSynced, r.Status, "the decision is the baseline: the same lead raises no conflict again")
	c = shared.contactsWithEmail(t, l.Email)
	require.Equal(t, "CTO", c[0].Properties["jobtitle"])
	require.Equal(t, "Ada", c[0].Properties["firstname"], "the person's own name is the form's to set")
}

// TestANewerSubmissionForARunningLeadIsNotDropped: while a lead waits, the
// same key with other data is refused with 409 (nothing silently dropped);
// the same data again is the running item.
func TestANewerSubmissionForARunningLeadIsNotDropped(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-newer")
	l := lead(key)
	l.Consent = false
	code, first := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code)
	id := first["workflowId"].(string)
	shared.waitStatus(t, id, api.StatusBlocked)

	code, same := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, "a sender's retry of the same submission")
	require.Equal(t, first["runId"], same["runId"])

	newer := l
	newer.Company = "Analytical Engines"
	code, body := shared.post(t, "/v1/leads", newer, nil)
	require.Equal(t, http.StatusConflict, code, body)
	require.True(t, strings.Contains(body["error"].(string), "not taken"), body)
}
