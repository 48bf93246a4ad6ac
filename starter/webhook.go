package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/connectors/billing"
	"github.com/signalbox-dev/signalbox/store"
)

// stripeWebhookRoute is where Stripe posts its events (the webhook endpoint
// configured in the Stripe Dashboard).
const stripeWebhookRoute = "POST /v1/webhooks/stripe"

// maxStripeBody bounds a Stripe event's body: an invoice event carries the
// whole invoice, lines included (Stripe embeds up to 10 lines).
const maxStripeBody = 512 << 10

// stripeSignatureHeader carries "t=<unix time>,v1=<hex HMAC-SHA256>".
const stripeSignatureHeader = "Stripe-Signature"

// paymentEvents hands verified payment events to their items.
type paymentEvents interface {
	SendPayment(ctx context.Context, ev api.PaymentEvent) (started, error)
}

// SendPayment hands ev to its invoice's item (api.SendPaymentEvent).
func (t *temporalItems) SendPayment(ctx context.Context, ev api.PaymentEvent) (started, error) {
	run, err := api.SendPaymentEvent(ctx, t.client, ev, "stripe-webhook")
	if err != nil {
		return started{}, err
	}
	return started{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// stripeDeliveries remembers the deliveries received within the tolerance
// (store.ClaimStripeDelivery).
type stripeDeliveries interface {
	ClaimStripeDelivery(ctx context.Context, d store.StripeDelivery, forgetBefore time.Time) (bool, error)
	ReleaseStripeDelivery(ctx context.Context, digest string) error
}

// stripeWebhook accepts Stripe's webhook events about invoices and hands
// each to its invoice's invoice-payments item. Stripe's signature is its
// only authentication: the intake's tokens and signatures open no door here,
// and no intake source may be granted this route. Its sender is source
// "stripe" for the rate limits.
//
// A delivery is what Stripe signed: a timestamp and a body. Receiving the
// same delivery twice is a replay and refused (400). Stripe itself never
// sends a delivery twice: when an earlier one was not acknowledged it
// re-delivers the event with a new timestamp and signature, which is taken
// (200) — the item applies each event ID once.
type stripeWebhook struct {
	// secret is the endpoint's signing secret; empty turns the route off.
	secret     string
	events     paymentEvents
	deliveries stripeDeliveries
	limits     *limiter
	logger     *slog.Logger
}

// withStripeWebhook serves Stripe's webhook beside the intake's routes.
func withStripeWebhook(routes http.Handler, h *stripeWebhook) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(stripeWebhookRoute, h)
	mux.Handle("/", routes)
	return mux
}

// stripeWebhookOptions verify a delivery: a signature at most Stripe's
// default 300 s old, made with the endpoint's secret.
var stripeWebhookOptions = webhook.ConstructEventOptions{
	Tolerance: webhook.DefaultTolerance,
	// Stripe renders an event in the API version of the account (or of the
	// endpoint), which need not be the one this stripe-go was built for;
	// signalbox reads a few invoice fields that every version has (see
	// paymentEventOf), so another version is not refused. Its signature is
	// checked all the same.
	IgnoreAPIVersionMismatch: true,
}

func (h *stripeWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.secret == "" {
		h.refuse(w, r, http.StatusServiceUnavailable, "Stripe webhooks are off: set SIGNALBOX_STRIPE_WEBHOOK_SECRET to the endpoint's signing secret (whsec_…) "+
			"and restart the intake; Stripe keeps retrying meanwhile")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxStripeBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		h.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body exceeds %d bytes; nothing was started", maxStripeBody))
		return
	}
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, "could not read the body; nothing was started")
		return
	}
	header := r.Header.Get(stripeSignatureHeader)
	ev, err := webhook.ConstructEventWithOptions(body, header, h.secret, stripeWebhookOptions)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, signatureProblem(err))
		return
	}
	// The delivery is claimed before the rate limit is taken: a replay is
	// refused without counting, so replaying a captured delivery cannot use
	// up Stripe's limit.
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	signedAt := signatureTime(header)
	delivery := store.StripeDelivery{Digest: deliveryDigest(signedAt, body), EventID: ev.ID, SignedAt: signedAt}
	fresh, err := h.deliveries.ClaimStripeDelivery(ctx, delivery, time.Now().Add(-webhook.DefaultTolerance-time.Minute))
	if err != nil {
		h.logger.Error("stripe webhook: could not record the delivery", "event", ev.ID, "error", err)
		w.Header().Set("Retry-After", "60")
		h.refuse(w, r, http.StatusServiceUnavailable, "could not check the delivery against replays: PostgreSQL is unavailable; nothing was started, Stripe retries")
		return
	}
	if !fresh {
		h.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("this delivery of event %s (signed at %s) was received before: a replay is refused and starts nothing "+
			"(Stripe re-delivers an event with a new signature)", ev.ID, signedAt.Format(time.RFC3339)))
		return
	}
	if ok, wait := h.limits.allow(config.StripeSource, time.Now()); !ok {
		h.release(r, ev.ID, delivery.Digest) // not taken: the same delivery may come again
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		h.refuse(w, r, http.StatusTooManyRequests, fmt.Sprintf("more than %s Stripe deliveries (SIGNALBOX_INTAKE_RATE_LIMITS, source stripe); "+
			"nothing was started: Stripe retries", h.limits.limitOf(config.StripeSource)))
		return
	}
	if _, ok := api.PaymentEventStatus(string(ev.Type)); !ok {
		h.logger.Info("stripe webhook: event type ignored", "event", ev.ID, "type", ev.Type)
		writeJSON(w, http.StatusOK, map[string]string{"received": ev.ID, "ignored": fmt.Sprintf("signalbox does not handle %s events; nothing was started", ev.Type)})
		return
	}
	pe, err := paymentEventOf(ev)
	if err != nil {
		h.logger.Warn("stripe webhook: signed event not applicable", "event", ev.ID, "type", ev.Type, "error", err)
		h.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	s, err := h.events.SendPayment(ctx, pe)
	if err != nil {
		h.logger.Error("stripe webhook: could not hand the event to its item", "event", ev.ID, "stripeInvoice", pe.StripeInvoiceID, "error", err)
		h.release(r, ev.ID, delivery.Digest) // not taken: the same delivery, sent again, is no replay
		w.Header().Set("Retry-After", "60")
		h.refuse(w, r, http.StatusServiceUnavailable, "could not hand the event to its item: Temporal is unavailable; Stripe retries")
		return
	}
	h.logger.Info("stripe webhook: event handed to its item", "event", ev.ID, "type", ev.Type, "workflowId", s.WorkflowID)
	writeJSON(w, http.StatusOK, map[string]string{"received": ev.ID, "workflowId": s.WorkflowID, "runId": s.RunID})
}

// release forgets a delivery the webhook did not act on (a 429, a 503).
func (h *stripeWebhook) release(r *http.Request, event, digest string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := h.deliveries.ReleaseStripeDelivery(ctx, digest); err != nil {
		h.logger.Error("stripe webhook: could not forget the delivery not taken", "event", event, "error", err)
	}
}

func (h *stripeWebhook) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.logger.Info("stripe webhook refused", "path", r.URL.Path, "status", status, "error", msg)
	writeJSON(w, status, problem{Error: msg})
}

// signatureProblem says why stripe-go refused a delivery, and what to do.
func signatureProblem(err error) string {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return "no " + stripeSignatureHeader + " header: only events Stripe signed are accepted here; nothing was started"
	case errors.Is(err, webhook.ErrInvalidHeader):
		return "the " + stripeSignatureHeader + " header is malformed (Stripe sends t=<unix time>,v1=<signature>); nothing was started"
	case errors.Is(err, webhook.ErrTooOld):
		return fmt.Sprintf("the signature is older than Stripe's tolerance of %s: a stale or replayed delivery; nothing was started "+
			"(Stripe re-delivers with a fresh signature)", webhook.DefaultTolerance)
	case errors.Is(err, webhook.ErrNoValidSignature):
		return "the signature does not match the body: check that SIGNALBOX_STRIPE_WEBHOOK_SECRET is this endpoint's signing secret; nothing was started"
	}
	return "the signed body is not a Stripe event (" + err.Error() + "); nothing was started"
}

// signatureTime is the timestamp the delivery was signed with, the last t= of
// the header as stripe-go reads it (which has verified the header by now).
func signatureTime(header string) time.Time {
	var at time.Time
	for _, pair := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(pair, "t="); ok {
			if unix, err := strconv.ParseInt(v, 10, 64); err == nil {
				at = time.Unix(unix, 0).UTC()
			}
		}
	}
	return at
}

// deliveryDigest identifies a delivery by what Stripe signed: the same
// timestamp and body are the same delivery, however the header is dressed.
func deliveryDigest(signedAt time.Time, body []byte) string {
	sum := sha256.New()
	fmt.Fprintf(sum, "%d.", signedAt.Unix())
	sum.Write(body)
	return hex.EncodeToString(sum.Sum(nil))
}

// stripeInvoice is what signalbox reads of an event's invoice. It is read
// field by field, not as a stripe.Invoice, so that an invoice of another API
// version (see stripeWebhookOptions) cannot fail on fields signalbox does
// not read.
type stripeInvoice struct {
	ID         string            `json:"id"`
	Object     string            `json:"object"`
	Status     string            `json:"status"`
	Metadata   map[string]string `json:"metadata"`
	AmountDue  int64             `json:"amount_due"`
	AmountPaid int64             `json:"amount_paid"`
	Currency   string            `json:"currency"`
}

// paymentEventOf is the payment event a verified invoice event reports.
func paymentEventOf(ev stripe.Event) (api.PaymentEvent, error) {
	var inv stripeInvoice
	if ev.Data == nil || json.Unmarshal(ev.Data.Raw, &inv) != nil || inv.Object != "invoice" {
		return api.PaymentEvent{}, fmt.Errorf("event %s (%s) carries no invoice in data.object; nothing was started", ev.ID, ev.Type)
	}
	pe := api.PaymentEvent{ID: ev.ID, Type: string(ev.Type), Created: time.Unix(ev.Created, 0).UTC(), StripeInvoiceID: inv.ID,
		InvoiceID: inv.Metadata[billing.MetadataInvoiceID], Status: inv.Status, AmountDue: inv.AmountDue, AmountPaid: inv.AmountPaid, Currency: inv.Currency}
	if errs := pe.Check(); len(errs) > 0 {
		return api.PaymentEvent{}, fmt.Errorf("event %s (%s) cannot be applied: %s; nothing was started", ev.ID, ev.Type, errs.Error())
	}
	return pe, nil
}

// stripeEventCommand signs and posts an event as Stripe would: Stripe does
// not send webhooks to a local stack.
const stripeEventCommand = "stripe-event"

// stripeEvent builds a Stripe event about an invoice, signs it with
// SIGNALBOX_STRIPE_WEBHOOK_SECRET now and posts it to the intake's webhook,
// or with --curl prints a curl command that does (valid for Stripe's
// tolerance, 5 minutes).
func stripeEvent(ctx context.Context, cfg config.Intake, args []string, stdout, stderr io.Writer) error {
	name := "starter " + stripeEventCommand
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	typ := fs.String("type", "invoice.paid", "the event type: invoice.paid, invoice.payment_failed, invoice.voided, invoice.marked_uncollectible, invoice.finalized, invoice.sent (another type is acknowledged and ignored)")
	invoice := fs.String("invoice", "", "the Stripe invoice (in_…), required")
	ours := fs.String("invoice-id", "", "our invoice ID, as the Stripe invoice's metadata "+billing.MetadataInvoiceID)
	status := fs.String("status", "", "the invoice status the event reports (default: the type's)")
	created := fs.String("created", "", "when Stripe created the event, RFC 3339 (default: now)")
	id := fs.String("id", "", "the event ID (default: a new evt_local_…)")
	amount := fs.Int64("amount", 0, "the amount due, in minor units")
	currency := fs.String("currency", "eur", "the invoice's currency")
	target := fs.String("url", "http://"+cfg.IntakeAddr+"/v1/webhooks/stripe", "where to post it")
	curl := fs.Bool("curl", false, "print a curl command that posts it (valid 5 minutes) instead of posting")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	if *invoice == "" {
		fmt.Fprintf(stderr, "%s: --invoice (the Stripe invoice, in_…) is required\n", name)
		return errUsage
	}
	if cfg.StripeWebhookSecret == "" {
		return errors.New("set SIGNALBOX_STRIPE_WEBHOOK_SECRET to the intake's signing secret (`make run` prints the local stack's)")
	}
	ev, err := newStripeEvent(*typ, *invoice, *ours, *status, *created, *id, *amount, *currency)
	if err != nil {
		return err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: cfg.StripeWebhookSecret, Timestamp: time.Now()})
	if *curl {
		fmt.Fprintf(stdout, "curl -sS -X POST %s -H 'Content-Type: application/json' -H '%s: %s' --data-raw %s\n",
			*target, stripeSignatureHeader, signed.Header, shellQuote(string(body)))
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(stripeSignatureHeader, signed.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post the event to %s: %w (is the intake running?)", *target, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprintf(stdout, "posted %s (%s) for %s: %s %s", ev.ID, ev.Type, *invoice, resp.Status, answer)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the intake answered %s", resp.Status)
	}
	return nil
}

// newStripeEvent builds the event the command signs.
func newStripeEvent(typ, invoice, ours, status, created, id string, amount int64, currency string) (stripe.Event, error) {
	at := time.Now()
	if created != "" {
		var err error
		if at, err = time.Parse(time.RFC3339, created); err != nil {
			return stripe.Event{}, fmt.Errorf("--created must be a time like 2026-11-27T09:00:00Z")
		}
	}
	if status == "" {
		status = "open"
		if s, ok := api.PaymentEventStatus(typ); ok {
			status = s
		}
	}
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = "evt_local_" + hex.EncodeToString(b[:])
	}
	paid := int64(0)
	if status == "paid" {
		paid = amount
	}
	inv := stripeInvoice{ID: invoice, Object: "invoice", Status: status, Metadata: map[string]string{}, AmountDue: amount, AmountPaid: paid, Currency: currency}
	if ours != "" {
		inv.Metadata[billing.MetadataInvoiceID] = ours
	}
	raw, err := json.Marshal(inv)
	if err != nil {
		return stripe.Event{}, err
	}
	return stripe.Event{ID: id, Object: "event", APIVersion: stripe.APIVersion, Created: at.Unix(), Type: stripe.EventType(typ),
		Data: &stripe.EventData{Raw: raw}}, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
