package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store"
)

// stripeSecret signs the Stripe webhooks of the tests' webhook intake.
const stripeSecret = "whsec_e2e_test_not_a_secret"

// webhookIntake runs a second intake on the shared stack, configured with a
// Stripe webhook secret (the shared intake has none), and returns its
// webhook URL.
func webhookIntake(t *testing.T) string {
	t.Helper()
	addr, err := stack.FreeAddr()
	require.NoError(t, err)
	p := &stack.Process{Name: "intake-stripe", Path: filepath.Join(binDir, "starter"), Args: []string{"serve"},
		Env:     append(append([]string(nil), shared.Env...), "SIGNALBOX_STRIPE_WEBHOOK_SECRET="+stripeSecret, "SIGNALBOX_INTAKE_ADDR="+addr),
		LogPath: filepath.Join(t.TempDir(), "intake-stripe.log"), ReadyURL: "http://" + addr + "/healthz"}
	require.NoError(t, p.Start(context.Background()))
	t.Cleanup(func() { _ = p.Stop(15 * time.Second) })
	return "http://" + addr + "/v1/webhooks/stripe"
}

// stripeEvent is a Stripe event about an invoice as Stripe sends it, in an
// older API version than stripe-go's (the intake does not refuse that).
func stripeEvent(t *testing.T, id, typ, stripeInvoice, ours, status string, created time.Time) []byte {
	t.Helper()
	invoice := map[string]any{"id": stripeInvoice, "object": "invoice", "status": status, "amount_due": 49200, "amount_paid": 0,
		"currency": "eur", "metadata": map[string]string{"signalbox_invoice_id": ours}}
	body, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2024-06-20", "type": typ,
		"created": created.Unix(), "livemode": false, "data": map[string]any{"object": invoice}})
	require.NoError(t, err)
	return body
}

// signed is a delivery of body as Stripe signs it at time at.
func signed(body []byte, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: stripeSecret, Timestamp: at}).Header
}

// deliver posts a delivery to url and decodes the answer.
func deliver(t *testing.T, url string, body []byte, signature string) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signature)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out := map[string]string{}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// billedInvoice bills a new invoice through the stack and returns it.
func billedInvoice(t *testing.T, prefix string) store.Invoice {
	t.Helper()
	id := uniqueKey(t, prefix)
	shared.invoice(t, id)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, shared.syncInvoice(t, id)).Status)
	inv := shared.storedInvoice(t, id)
	require.Equal(t, "open", inv.StripeStatus, "billing wrote Stripe's status back")
	return inv
}

// handed waits until the item an accepted delivery went to has applied it.
func handed(t *testing.T, code int, answer map[string]string, stripeInvoice string) {
	t.Helper()
	require.Equal(t, http.StatusOK, code, answer)
	require.Equal(t, api.ItemID(api.IntegrationInvoicePayments, stripeInvoice), answer["workflowId"])
	require.Equal(t, api.StatusSynced, shared.waitResult(t, answer["workflowId"]).Status)
}

// actionsOf lists the audit actions of an item about one event.
func actionsOf(t *testing.T, workflowID, event string) []string {
	t.Helper()
	var out []string
	for _, e := range shared.auditTrail(t, workflowID) {
		if e.Details["event"] == event {
			out = append(out, e.Action)
		}
	}
	return out
}

func TestStripeWebhookSetsThePaymentStatusOnceAndInOrder(t *testing.T) {
	t.Parallel()
	url := webhookIntake(t)
	ctx := context.Background()
	inv := billedInvoice(t, "INV-paid")
	item := api.ItemID(api.IntegrationInvoicePayments, inv.StripeInvoiceID)

	created := time.Now().UTC().Truncate(time.Second)
	paidID := "evt_paid_" + inv.ID
	paid := stripeEvent(t, paidID, "invoice.paid", inv.StripeInvoiceID, inv.ID, "paid", created)
	delivery := signed(paid, time.Now())
	code, answer := deliver(t, url, paid, delivery)
	handed(t, code, answer, inv.StripeInvoiceID)
	require.Equal(t, paidID, answer["received"])
	st, err := shared.db(t).InvoicePaymentStatus(ctx, inv.ID)
	require.NoError(t, err)
	require.Equal(t, store.PaymentStatus{Status: "paid", At: created}, st)
	require.Equal(t, []string{"payment_status_applied"}, actionsOf(t, item, paidID))

	// The same delivery again is a replay: refused, and nothing starts.
	trail := len(shared.auditTrail(t, item))
	code, answer = deliver(t, url, paid, delivery)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, answer["error"], "this delivery of event "+paidID)
	require.Contains(t, answer["error"], "was received before: a replay is refused and starts nothing")
	time.Sleep(time.Second) // an item it started would have begun by now
	require.Len(t, shared.auditTrail(t, item), trail, "a replay starts nothing")

	// Stripe re-delivers the event, signed anew: taken, applied once.
	code, answer = deliver(t, url, paid, signed(paid, time.Now().Add(time.Second)))
	handed(t, code, answer, inv.StripeInvoiceID)
	require.Equal(t, []string{"payment_status_applied", "payment_event_ignored"}, actionsOf(t, item, paidID))

	// An older event delivered after it changes nothing.
	finalizedID := "evt_finalized_" + inv.ID
	finalized := stripeEvent(t, finalizedID, "invoice.finalized", inv.StripeInvoiceID, inv.ID, "open", created.Add(-time.Hour))
	code, answer = deliver(t, url, finalized, signed(finalized, time.Now()))
	handed(t, code, answer, inv.StripeInvoiceID)
	require.Equal(t, []string{"payment_event_ignored"}, actionsOf(t, item, finalizedID))
	st, err = shared.db(t).InvoicePaymentStatus(ctx, inv.ID)
	require.NoError(t, err)
	require.Equal(t, store.PaymentStatus{Status: "paid", At: created}, st, "an older event never overwrites a newer status")
	require.Equal(t, "paid", shared.storedInvoice(t, inv.ID).StripeStatus)

	// Another type: acknowledged, nothing started.
	other := stripeEvent(t, "evt_other_"+inv.ID, "invoice.upcoming", inv.StripeInvoiceID, inv.ID, "draft", created)
	code, answer = deliver(t, url, other, signed(other, time.Now()))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, answer["ignored"], "signalbox does not handle invoice.upcoming events")
	require.Empty(t, actionsOf(t, item, "evt_other_"+inv.ID))
}

func TestStripeWebhookOfAFailedPaymentTellsFinanceOnce(t *testing.T) {
	t.Parallel()
	url := webhookIntake(t)
	inv := billedInvoice(t, "INV-failed")
	failed := stripeEvent(t, "evt_failed_"+inv.ID, "invoice.payment_failed", inv.StripeInvoiceID, inv.ID, "open", time.Now())
	code, answer := deliver(t, url, failed, signed(failed, time.Now()))
	handed(t, code, answer, inv.StripeInvoiceID)
	text := "A payment of invoice " + inv.ID + " (Stripe invoice " + inv.StripeInvoiceID + ") failed"
	shared.waitMessage(t, text)

	code, answer = deliver(t, url, failed, signed(failed, time.Now().Add(time.Second)))
	handed(t, code, answer, inv.StripeInvoiceID)
	messages := shared.messagesAbout(t, text)
	require.Len(t, messages, 1, "finance hears once, however often Stripe delivers the event")
	require.Equal(t, "finance", messages[0].Team)
	require.Contains(t, messages[0].Text, "EUR 492.00 remains due")
	require.Equal(t, "open", shared.storedInvoice(t, inv.ID).StripeStatus)
}

func TestStripeWebhookForAnUnknownInvoiceWaitsForFinance(t *testing.T) {
	t.Parallel()
	url := webhookIntake(t)
	ours := uniqueKey(t, "INV-late")
	stripeInvoice := "in_e2e_" + strings.ReplaceAll(ours, "-", "")
	created := time.Now().UTC().Truncate(time.Second)
	paid := stripeEvent(t, "evt_unknown_"+ours, "invoice.paid", stripeInvoice, ours, "paid", created)
	code, answer := deliver(t, url, paid, signed(paid, time.Now()))
	require.Equal(t, http.StatusOK, code, answer)
	item := answer["workflowId"]

	st := shared.waitStatus(t, item, api.StatusBlocked)
	require.Equal(t, api.UnknownInvoice, st.Exception.Kind)
	require.Equal(t, "finance", st.Exception.Deciders)
	require.Contains(t, st.Exception.Summary, "no invoice in PostgreSQL has ID "+ours)
	require.Equal(t, "evt_unknown_"+ours, st.Exception.Details["event"])

	// Finance imports the invoice, then retries: the event applies.
	shared.invoice(t, ours)
	out, stderr, code := shared.signals(t, "", "retry", item, "--as", "carol", "--reason", "the invoice was imported late")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "retry applied")
	require.Equal(t, api.StatusSynced, shared.waitResult(t, item).Status)
	require.Equal(t, "paid", shared.storedInvoice(t, ours).StripeStatus)
}

func TestStripeWebhookIsOffWithoutASecret(t *testing.T) {
	t.Parallel()
	body := stripeEvent(t, "evt_off", "invoice.paid", "in_off", "INV-off", "paid", time.Now())
	code, answer := deliver(t, shared.IntakeURL()+"/v1/webhooks/stripe", body, signed(body, time.Now()))
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, answer["error"], "Stripe webhooks are off: set SIGNALBOX_STRIPE_WEBHOOK_SECRET")
}
