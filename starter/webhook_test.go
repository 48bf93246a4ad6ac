package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

const testStripeSecret = "whsec_test_0123456789abcdef"

// fakePaymentEvents records the events handed to items.
type fakePaymentEvents struct {
	mu      sync.Mutex
	sent    []api.PaymentEvent
	failing bool
}

func (f *fakePaymentEvents) SendPayment(_ context.Context, ev api.PaymentEvent) (started, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return started{}, errors.New("connection refused")
	}
	f.sent = append(f.sent, ev)
	return started{WorkflowID: api.ItemID(api.IntegrationInvoicePayments, ev.StripeInvoiceID), RunID: "run-1"}, nil
}

func (f *fakePaymentEvents) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// newStripeWebhook is the intake with its Stripe webhook, on a database of
// its own, handing events to a fake.
func newStripeWebhook(t *testing.T, secret string) (*fakePaymentEvents, *store.Store, http.Handler) {
	t.Helper()
	return newStripeWebhookWith(t, secret, testConfig())
}

// newStripeWebhookWith is newStripeWebhook beside an intake configured by cfg.
func newStripeWebhookWith(t *testing.T, secret string, cfg config.Intake) (*fakePaymentEvents, *store.Store, http.Handler) {
	t.Helper()
	st := store.New(storetest.NewPool(t))
	events := &fakePaymentEvents{}
	intake := newHarness(t, cfg, st, nil, io.Discard)
	h := &stripeWebhook{secret: secret, events: events, deliveries: st, limits: newLimiter(cfg.RateLimitOf), logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return events, st, withStripeWebhook(intake.h, h)
}

func invoiceEvent(t *testing.T, id, typ string, created time.Time) []byte {
	t.Helper()
	ev, err := newStripeEvent(typ, "in_1", "INV-1", "", created.Format(time.RFC3339), id, 15000, "eur")
	require.NoError(t, err)
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	return body
}

// stripeSign signs body as Stripe does, at time at, with secret.
func stripeSign(body []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
}

// deliver posts body with signature header sig (none if empty), without the
// intake's bearer token: Stripe does not have one.
func deliver(h http.Handler, body []byte, sig string) (*httptest.ResponseRecorder, map[string]string) {
	req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/stripe", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out := map[string]string{}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec, out
}

func TestAVerifiedInvoiceEventIsHandedToItsItem(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	created := time.Now().Add(-time.Minute).Truncate(time.Second).UTC()
	body := invoiceEvent(t, "evt_1", "invoice.paid", created)
	rec, answer := deliver(h, body, stripeSign(body, testStripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, map[string]string{"received": "evt_1", "workflowId": "invoice-payments:in_1", "runId": "run-1"}, answer)
	require.Equal(t, []api.PaymentEvent{{ID: "evt_1", Type: "invoice.paid", Created: created, StripeInvoiceID: "in_1", InvoiceID: "INV-1",
		Status: "paid", AmountDue: 15000, AmountPaid: 15000, Currency: "eur"}}, events.sent)
}

func TestUnverifiedStripeDeliveriesAreRefusedAndStartNothing(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	body := invoiceEvent(t, "evt_1", "invoice.paid", time.Now())
	cases := []struct {
		name, sig, want string
	}{
		{"unsigned", "", "no Stripe-Signature header: only events Stripe signed are accepted here; nothing was started"},
		{"signed with another secret", stripeSign(body, "whsec_someone_elses_secret", time.Now()), "the signature does not match the body: check that SIGNALBOX_STRIPE_WEBHOOK_SECRET"},
		{"malformed header", "t=now,v1", "the Stripe-Signature header is malformed"},
		{"stale", stripeSign(body, testStripeSecret, time.Now().Add(-webhook.DefaultTolerance-time.Second)), "the signature is older than Stripe's tolerance of 5m0s"},
	}
	for _, c := range cases {
		rec, answer := deliver(h, body, c.sig)
		require.Equal(t, http.StatusBadRequest, rec.Code, c.name)
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"), c.name)
		require.Contains(t, answer["error"], c.want, c.name)
	}
	tampered := bytes.Replace(body, []byte(`"paid"`), []byte(`"void"`), 1)
	rec, answer := deliver(h, tampered, stripeSign(body, testStripeSecret, time.Now()))
	require.Equal(t, http.StatusBadRequest, rec.Code, "a body changed after signing")
	require.Contains(t, answer["error"], "the signature does not match the body")
	require.Zero(t, events.count())
}

func TestAReplayIsRefusedAndARedeliveryTaken(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	body := invoiceEvent(t, "evt_1", "invoice.paid", time.Now())
	first := time.Now().Add(-2 * time.Minute)
	sig := stripeSign(body, testStripeSecret, first)
	rec, _ := deliver(h, body, sig)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	rec, answer := deliver(h, body, sig)
	require.Equal(t, http.StatusBadRequest, rec.Code, "the same delivery again")
	require.Contains(t, answer["error"], "this delivery of event evt_1 (signed at "+first.UTC().Format(time.RFC3339)+") was received before: a replay is refused")
	rec, _ = deliver(h, body, sig+",v1=00ff,v0=abc")
	require.Equal(t, http.StatusBadRequest, rec.Code, "the same delivery, its header dressed otherwise")
	require.Equal(t, 1, events.count(), "a replay starts nothing")

	// Stripe re-delivers an event it saw no 2xx for with a new timestamp and
	// signature: taken, and handed on under the same event ID, which the
	// item applies once.
	rec, answer = deliver(h, body, stripeSign(body, testStripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "evt_1", answer["received"])
	require.Equal(t, 2, events.count())
	require.Equal(t, events.sent[0].ID, events.sent[1].ID)
}

func TestOtherStripeEventTypesAreAcknowledgedAndIgnored(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	body := invoiceEvent(t, "evt_2", "customer.created", time.Now())
	rec, answer := deliver(h, body, stripeSign(body, testStripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, rec.Code, "Stripe must not retry what signalbox does not handle")
	require.Equal(t, "signalbox does not handle customer.created events; nothing was started", answer["ignored"])
	require.Zero(t, events.count())
}

func TestASignedEventWithoutAnApplicableInvoiceIsRefused(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	for name, body := range map[string]string{
		"no invoice":   `{"id":"evt_3","object":"event","type":"invoice.paid","created":1764230400,"data":{"object":{"id":"ch_1","object":"charge"}}}`,
		"a bad status": `{"id":"evt_4","object":"event","type":"invoice.paid","created":1764230400,"data":{"object":{"id":"in_1","object":"invoice","status":"lost"}}}`,
		"not JSON":     `{"id":`,
	} {
		rec, answer := deliver(h, []byte(body), stripeSign([]byte(body), testStripeSecret, time.Now()))
		require.Equal(t, http.StatusBadRequest, rec.Code, name)
		require.Contains(t, answer["error"], "nothing was started", name)
	}
	require.Zero(t, events.count())
}

func TestWhenTemporalIsDownStripeIsToldToRetry(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	events.failing = true
	body := invoiceEvent(t, "evt_5", "invoice.voided", time.Now())
	sig := stripeSign(body, testStripeSecret, time.Now())
	rec, answer := deliver(h, body, sig)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "60", rec.Header().Get("Retry-After"))
	require.Equal(t, "could not hand the event to its item: Temporal is unavailable; Stripe retries", answer["error"])

	events.failing = false
	rec, _ = deliver(h, body, sig)
	require.Equal(t, http.StatusOK, rec.Code, "a delivery not taken is no replay")
	require.Equal(t, 1, events.count())
}

func TestStripeWebhooksAreOffWithoutASecret(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, "")
	body := invoiceEvent(t, "evt_6", "invoice.paid", time.Now())
	rec, answer := deliver(h, body, stripeSign(body, "whsec_anything_at_all", time.Now()))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, answer["error"], "Stripe webhooks are off: set SIGNALBOX_STRIPE_WEBHOOK_SECRET")
	require.Zero(t, events.count())

	// The intake's own routes are served as before, with their own auth.
	rec, _ = do(h, "GET", "/healthz", "", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	rec, _ = do(h, "POST", "/v1/leads", "application/json", goodLead, map[string]string{"Authorization": "Bearer nope"})
	require.Equal(t, http.StatusUnauthorized, rec.Code)
}

func TestAStripeDeliveryIsBounded(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	body := bytes.Repeat([]byte(" "), maxStripeBody+1)
	rec, _ := deliver(h, body, stripeSign(body, testStripeSecret, time.Now()))
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	require.Zero(t, events.count())
}

func TestTheStripeEventCommandSignsAsStripeDoes(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	srv := httptest.NewServer(h)
	defer srv.Close()
	cfg := config.Intake{StripeWebhookSecret: testStripeSecret, IntakeAddr: "127.0.0.1:8080"}
	var out, errOut strings.Builder
	err := stripeEvent(context.Background(), cfg, []string{"--type", "invoice.payment_failed", "--invoice", "in_9", "--invoice-id", "INV-9",
		"--amount", "4200", "--url", srv.URL + "/v1/webhooks/stripe"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	require.Contains(t, out.String(), "(invoice.payment_failed) for in_9: 200 OK")
	require.Equal(t, 1, events.count())
	require.Equal(t, "open", events.sent[0].Status)
	require.Equal(t, "INV-9", events.sent[0].InvoiceID)
	require.True(t, strings.HasPrefix(events.sent[0].ID, "evt_local_"))

	out.Reset()
	require.NoError(t, stripeEvent(context.Background(), cfg, []string{"--invoice", "in_9", "--id", "evt_it's", "--curl"}, &out, &errOut))
	require.Contains(t, out.String(), "curl -sS -X POST http://127.0.0.1:8080/v1/webhooks/stripe -H 'Content-Type: application/json' -H 'Stripe-Signature: t=")
	require.Contains(t, out.String(), `"id":"evt_it'\''s"`, "quoted for the shell")

	require.ErrorContains(t, stripeEvent(context.Background(), config.Intake{}, []string{"--invoice", "in_9"}, &out, &errOut),
		"set SIGNALBOX_STRIPE_WEBHOOK_SECRET")
	require.ErrorIs(t, stripeEvent(context.Background(), cfg, nil, &out, &errOut), errUsage)
}

func TestAStripeReplayDoesNotSpendTheLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.IntakeRateLimits = config.RateLimits{"stripe": {Requests: 2, Per: time.Hour}}
	events, st, h := newStripeWebhookWith(t, testStripeSecret, cfg)
	body := invoiceEvent(t, "evt_1", "invoice.paid", time.Now())
	captured := stripeSign(body, testStripeSecret, time.Now())
	rec, _ := deliver(h, body, captured)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	for i := range 10 {
		rec, answer := deliver(h, body, captured)
		require.Equal(t, http.StatusBadRequest, rec.Code, "replay %d: %s", i+1, rec.Body.String())
		require.Contains(t, answer["error"], "was received before: a replay is refused")
	}

	body = invoiceEvent(t, "evt_2", "invoice.paid", time.Now())
	rec, _ = deliver(h, body, stripeSign(body, testStripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, rec.Code, "Stripe's next delivery is taken: %s", rec.Body.String())
	require.Equal(t, 2, events.count())

	// Over the limit, a delivery is refused and not kept: sent again, it is no replay.
	body = invoiceEvent(t, "evt_3", "invoice.paid", time.Now())
	at := time.Now()
	rec, _ = deliver(h, body, stripeSign(body, testStripeSecret, at))
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	fresh, err := st.ClaimStripeDelivery(context.Background(), store.StripeDelivery{Digest: deliveryDigest(at.Truncate(time.Second), body),
		EventID: "evt_3", SignedAt: at}, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.True(t, fresh, "a delivery refused for the rate is forgotten")
	require.Equal(t, 2, events.count())
}
