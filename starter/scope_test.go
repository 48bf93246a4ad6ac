package main

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
	"github.com/signalbox-dev/signalbox/workflows"
)

const billingToken = "billing-token-0123456789"

// send sends a request with exactly these headers (no credentials but
// theirs) and decodes the answer's error.
func send(h http.Handler, method, target, body string, header map[string]string) (*httptest.ResponseRecorder, string) {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p problem
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	return rec, p.Error
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
}

// signed are the headers of a request signed with secret at time at.
func signed(secret string, at time.Time, method, target, key, body string) map[string]string {
	h := map[string]string{signatureHeader: sign(secret, at, method, target, key, body), "Content-Type": "application/json"}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return h
}

func lead(id string) string {
	return `{"id":"` + id + `","email":"ada@example.com","firstName":"Ada","lastName":"Lovelace","consent":true}`
}

// scopedConfig: webform may post leads and read items, billing may sync
// invoices (named by integration), shop signs leads (named by integration).
func scopedConfig() config.Intake {
	return config.Intake{
		IntakeTokens:      config.TeamMap{"webform": testToken, "billing": billingToken},
		IntakeHMACSecrets: config.TeamMap{"shop": testSecret},
		IntakeRoutes:      config.SourceRoutes{"webform": {"leads", "items"}, "billing": {"invoice-to-billing"}, "shop": {"lead-to-crm"}},
	}
}

func readyInvoice(t *testing.T, st *store.Store, id string) {
	t.Helper()
	require.NoError(t, st.InsertInvoice(context.Background(), store.Invoice{ID: id, CustomerID: "C-1", CustomerName: "Acme", CustomerEmail: "ap@acme.test",
		Currency: "eur", DueDate: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), Status: store.InvoiceReady,
		Lines: []store.InvoiceLine{{LineNo: 1, Description: "Licence", Quantity: 1, UnitAmount: 100}}}))
}

func TestSourcesUseOnlyTheRoutesTheyAreGiven(t *testing.T) {
	t.Parallel()
	st := store.New(storetest.NewPool(t))
	readyInvoice(t, st, "INV-1")
	hs := newHarness(t, scopedConfig(), st, nil, io.Discard)

	refused := []struct {
		name, method, target, body string
		header                     map[string]string
		want                       string
	}{
		{"webform syncs an invoice", "POST", "/v1/invoices/INV-1/sync", "{}", bearer(testToken),
			`source "webform" may not use POST /v1/invoices/{id}/sync; nothing was started`},
		{"billing posts a lead", "POST", "/v1/leads", lead("l-1"), bearer(billingToken), `source "billing" may not use POST /v1/leads; nothing was started`},
		{"billing reads an item", "GET", "/v1/items/invoice-to-billing:INV-1", "", bearer(billingToken), `source "billing" may not read items`},
		{"shop syncs an invoice", "POST", "/v1/invoices/INV-1/sync", "{}", signed(testSecret, testNow, "POST", "/v1/invoices/INV-1/sync", "", "{}"),
			`source "shop" may not use POST /v1/invoices/{id}/sync`},
		{"shop reads an item", "GET", "/v1/items/lead-to-crm:l-1", "", signed(testSecret, testNow, "GET", "/v1/items/lead-to-crm:l-1", "", ""),
			`source "shop" may not read items`},
	}
	for _, tc := range refused {
		rec, msg := send(hs.h, tc.method, tc.target, tc.body, tc.header)
		require.Equal(t, http.StatusForbidden, rec.Code, tc.name)
		require.Contains(t, msg, tc.want, tc.name)
		require.Contains(t, msg, "SIGNALBOX_INTAKE_ROUTES", tc.name)
	}
	require.Zero(t, hs.items.startCount(), "a refused route starts nothing")

	for _, tc := range []struct {
		name, target, body string
		header             map[string]string
	}{
		{"webform posts a lead", "/v1/leads", lead("l-1"), bearer(testToken)},
		{"billing syncs an invoice", "/v1/invoices/INV-1/sync", "{}", bearer(billingToken)},
		{"shop posts a lead", "/v1/leads", lead("l-2"), signed(testSecret, testNow, "POST", "/v1/leads", "", lead("l-2"))},
	} {
		rec, msg := send(hs.h, "POST", tc.target, tc.body, tc.header)
		require.Equal(t, http.StatusAccepted, rec.Code, "%s: %s", tc.name, msg)
	}
	var by []string
	for _, s := range hs.items.starts {
		by = append(by, s.key+" "+startedByOf(s.input))
	}
	require.Equal(t, []string{"l-1 intake:webform", "INV-1 intake:billing", "l-2 intake:shop"}, by)
}

func startedByOf(input any) string {
	raw, _ := json.Marshal(input)
	var in api.ItemInput
	_ = json.Unmarshal(raw, &in)
	return in.StartedBy
}

func TestRoutesAreNamedByIntegrationOrPath(t *testing.T) {
	t.Parallel()
	integrations, err := workflows.Integrations()
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"lead-to-crm": "lead-to-crm", "leads": "lead-to-crm",
		"invoice-to-billing": "invoice-to-billing", "invoices": "invoice-to-billing",
		"customer-sync": "customer-sync", "customers": "customer-sync",
		"items": "items",
	}, routeNames(integrations), "invoice-payments has no intake route: Stripe's webhook starts it")

	cfg := config.Intake{IntakeTokens: config.TeamMap{"local": testToken}, IntakeRoutes: config.SourceRoutes{"local": {"*"}}}
	sc, err := newScopes(cfg, integrations)
	require.NoError(t, err)
	require.Equal(t, "customer-sync,invoice-to-billing,items,lead-to-crm", sc.of("local"), "* is every route")
}

// loadIntake loads the intake's settings from exactly these variables and
// checks them as `starter serve` does.
func loadIntake(t *testing.T, env map[string]string) (config.Intake, error) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "SIGNALBOX_INTAKE_") || name == "SIGNALBOX_STRIPE_WEBHOOK_SECRET" {
			t.Setenv(name, "")
			require.NoError(t, os.Unsetenv(name))
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var cfg config.Intake
	if err := config.Load(&cfg); err != nil {
		return cfg, err
	}
	if err := cfg.CheckIntakeAuth(); err != nil {
		return cfg, err
	}
	integrations, err := workflows.Integrations()
	require.NoError(t, err)
	_, err = newScopes(cfg, integrations)
	return cfg, err
}

// TestIntakeSettingsAreCheckedAtStart: not parallel, it sets the environment.
func TestIntakeSettingsAreCheckedAtStart(t *testing.T) {
	const routes = "customer-sync, customers, invoice-to-billing, invoices, items, lead-to-crm, leads or * (every route)"
	const otherToken = "other-token-0123456789"
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"credentials without routes", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "webform=" + testToken + ";billing=" + billingToken},
			`config: SIGNALBOX_INTAKE_ROUTES gives no routes to sources "billing", "webform", which hold a token or secret: every request they send would be refused. ` +
				`Set SIGNALBOX_INTAKE_ROUTES="billing=<routes>;webform=<routes>", each <routes> a comma-separated list of ` + routes + ` (e.g. webform=leads,items)`},
		{"routes for another source only", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "webform=" + testToken, "SIGNALBOX_INTAKE_HMAC_SECRETS": "shop=" + testSecret,
			"SIGNALBOX_INTAKE_ROUTES": "webform=leads"}, `SIGNALBOX_INTAKE_ROUTES gives no routes to source "shop", which holds a token or secret: every request it sends would be refused. Set SIGNALBOX_INTAKE_ROUTES="shop=<routes>"`},
		{"routes set empty", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "local=" + testToken, "SIGNALBOX_INTAKE_ROUTES": ""},
			`SIGNALBOX_INTAKE_ROUTES gives no routes to source "local"`},
		{"unknown route", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "webform=" + testToken, "SIGNALBOX_INTAKE_ROUTES": "webform=lead,items"},
			`config: SIGNALBOX_INTAKE_ROUTES: source "webform": unknown route "lead"; the routes are ` + routes},
		{"the Stripe webhook", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "webform=" + testToken, "SIGNALBOX_INTAKE_ROUTES": "webform=leads,webhooks"},
			`source "webform": the Stripe webhook (POST /v1/webhooks/stripe) takes Stripe's signature only (SIGNALBOX_STRIPE_WEBHOOK_SECRET) and cannot be granted`},
		{"a source twice", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "webform=" + testToken, "SIGNALBOX_INTAKE_ROUTES": "webform=leads;webform=items"},
			`config: SIGNALBOX_INTAKE_ROUTES="webform=leads;webform=items" is not a valid config.SourceRoutes (source "webform" appears twice)`},
		{"a source named stripe", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "stripe=" + testToken, "SIGNALBOX_INTAKE_ROUTES": "stripe=*"},
			`config: SIGNALBOX_INTAKE_TOKENS: source "stripe" is the Stripe webhook's sender, which Stripe's signature authenticates (SIGNALBOX_STRIPE_WEBHOOK_SECRET): give this source another name`},
		{"one token, two sources", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "a=" + testToken + ";b=" + testToken, "SIGNALBOX_INTAKE_ROUTES": "a=*;b=*"},
			`config: SIGNALBOX_INTAKE_TOKENS source "b" has the same secret as SIGNALBOX_INTAKE_TOKENS source "a": give every source a secret of its own`},
		{"an HMAC secret that is Stripe's", map[string]string{"SIGNALBOX_INTAKE_HMAC_SECRETS": "shop=whsec_0123456789abcdef", "SIGNALBOX_INTAKE_ROUTES": "shop=*",
			"SIGNALBOX_STRIPE_WEBHOOK_SECRET": "whsec_0123456789abcdef"},
			`SIGNALBOX_INTAKE_HMAC_SECRETS source "shop" has the same secret as SIGNALBOX_STRIPE_WEBHOOK_SECRET`},
		{"malformed limit", map[string]string{"SIGNALBOX_INTAKE_RATE_LIMIT": "fast"},
			`config: SIGNALBOX_INTAKE_RATE_LIMIT="fast" is not a valid config.RateLimit (must be requests per window, e.g. 1200/1m or 20/s, with 1 to 1000000 requests)`},
		{"no requests", map[string]string{"SIGNALBOX_INTAKE_RATE_LIMIT": "0/1m"}, `SIGNALBOX_INTAKE_RATE_LIMIT="0/1m" is not a valid config.RateLimit (must be requests per window`},
		{"a window too short", map[string]string{"SIGNALBOX_INTAKE_RATE_LIMIT": "10/1ms"}, `the window of "10/1ms" must be a duration from 1s to 24h`},
		{"a malformed source limit", map[string]string{"SIGNALBOX_INTAKE_RATE_LIMITS": "webform=lots"},
			`config: SIGNALBOX_INTAKE_RATE_LIMITS="webform=lots" is not a valid config.RateLimits (source "webform": must be requests per window`},
		{"a limit for an unknown source", map[string]string{"SIGNALBOX_INTAKE_TOKENS": "webform=" + testToken, "SIGNALBOX_INTAKE_ROUTES": "webform=leads",
			"SIGNALBOX_INTAKE_RATE_LIMITS": "webfrom=10/s"}, `config: SIGNALBOX_INTAKE_RATE_LIMITS names source "webfrom", which holds no token or secret; the sources are "webform", "stripe"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadIntake(t, tc.env)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "\n", "one line")
			require.NotContains(t, err.Error(), testToken, "secrets are not echoed")
			require.NotContains(t, err.Error(), "whsec_0123456789abcdef", "secrets are not echoed")
		})
	}

	t.Run("no source is given routes by default, whatever its name", func(t *testing.T) {
		_, err := loadIntake(t, map[string]string{"SIGNALBOX_INTAKE_TOKENS": "local=" + testToken})
		require.ErrorContains(t, err, `gives no routes to source "local"`)
		cfg, err := loadIntake(t, map[string]string{"SIGNALBOX_INTAKE_TOKENS": "local=" + testToken, "SIGNALBOX_INTAKE_ROUTES": "local=*"})
		require.NoError(t, err)
		require.Equal(t, config.RateLimit{Requests: 1200, Per: time.Minute}, cfg.RateLimitOf("local"), "the default limit")
	})
	t.Run("limits by source", func(t *testing.T) {
		cfg, err := loadIntake(t, map[string]string{"SIGNALBOX_INTAKE_TOKENS": "webform=" + testToken, "SIGNALBOX_INTAKE_ROUTES": " webform = leads , items ",
			"SIGNALBOX_INTAKE_RATE_LIMIT": "20/s", "SIGNALBOX_INTAKE_RATE_LIMITS": "stripe=6000/1h"})
		require.NoError(t, err)
		require.Equal(t, config.SourceRoutes{"webform": {"leads", "items"}}, cfg.IntakeRoutes)
		require.Equal(t, config.RateLimit{Requests: 20, Per: time.Second}, cfg.RateLimitOf("webform"))
		require.Equal(t, config.RateLimit{Requests: 6000, Per: time.Hour}, cfg.RateLimitOf("stripe"))
	})
}

func TestASignedRequestIsTakenOnceAndOnlyWhileFresh(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, testConfig(), nil, nil, io.Discard)
	body := lead("l-1")

	first := signed(testSecret, testNow, "POST", "/v1/leads", "form-1", body)
	rec, msg := send(hs.h, "POST", "/v1/leads", body, first)
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	rec, msg = send(hs.h, "POST", "/v1/leads", body, first)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Contains(t, msg, "this signed request was received before: a replay is refused and starts nothing")
	require.Contains(t, msg, "sign it anew with the current time")
	hs.clock.advance(4 * time.Minute)
	rec, _ = send(hs.h, "POST", "/v1/leads", body, first)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "still a replay while the signature is fresh")
	require.Equal(t, 1, hs.items.startCount(), "the replays started nothing")

	// Signed anew, the same lead is a sender's retry: taken.
	rec, msg = send(hs.h, "POST", "/v1/leads", body, signed(testSecret, hs.clock.now(), "POST", "/v1/leads", "form-1", body))
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	require.Equal(t, 2, hs.items.startCount())

	now := hs.clock.now()
	for _, tc := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"6 minutes old", now.Add(-6 * time.Minute), "the signature's time t=" + strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10) + " is 6m0s from the intake's clock, more than the 5m0s allowed"},
		{"6 minutes ahead", now.Add(6 * time.Minute), "is 6m0s from the intake's clock"},
	} {
		rec, msg := send(hs.h, "POST", "/v1/leads", body, signed(testSecret, tc.at, "POST", "/v1/leads", "form-2", body))
		require.Equal(t, http.StatusUnauthorized, rec.Code, tc.name)
		require.Contains(t, msg, tc.want, tc.name)
	}
	for _, off := range []time.Duration{-4*time.Minute - 59*time.Second, 4*time.Minute + 59*time.Second} {
		rec, msg := send(hs.h, "POST", "/v1/leads", body, signed(testSecret, now.Add(off), "POST", "/v1/leads", "form-3", body))
		require.Equal(t, http.StatusAccepted, rec.Code, "%s off: %s", off, msg)
	}
	require.Equal(t, 4, hs.items.startCount(), "stale signatures started nothing")
}

func TestASignatureCoversMethodPathIdempotencyKeyAndBody(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, testConfig(), nil, nil, io.Discard)
	hs.items.states["lead-to-crm:a"] = api.ItemState{WorkflowID: "lead-to-crm:a", Status: api.StatusSynced}
	hs.items.states["lead-to-crm:b"] = api.ItemState{WorkflowID: "lead-to-crm:b", Status: api.StatusSynced}
	for _, id := range []string{"lead-to-crm:a", "lead-to-crm:b"} {
		_, _, err := hs.ledger.ClaimIntakeItem(context.Background(), "shop", id)
		require.NoError(t, err)
	}
	body := lead("l-1")
	for _, tc := range []struct {
		name, method, target, body string
		header                     map[string]string
	}{
		{"another Idempotency-Key", "POST", "/v1/leads", body, withHeader(signed(testSecret, testNow, "POST", "/v1/leads", "k1", body), "Idempotency-Key", "k2")},
		{"no Idempotency-Key", "POST", "/v1/leads", body, withHeader(signed(testSecret, testNow, "POST", "/v1/leads", "k1", body), "Idempotency-Key", "")},
		{"an Idempotency-Key added", "POST", "/v1/leads", body, withHeader(signed(testSecret, testNow, "POST", "/v1/leads", "", body), "Idempotency-Key", "k1")},
		{"another body", "POST", "/v1/leads", lead("l-2"), signed(testSecret, testNow, "POST", "/v1/leads", "", body)},
		{"another item", "GET", "/v1/items/lead-to-crm:b", "", signed(testSecret, testNow, "GET", "/v1/items/lead-to-crm:a", "", "")},
		{"another method", "GET", "/v1/items/lead-to-crm:a", "", signed(testSecret, testNow, "POST", "/v1/items/lead-to-crm:a", "", "")},
		{"a query added", "GET", "/v1/items/lead-to-crm:a?x=1", "", signed(testSecret, testNow, "GET", "/v1/items/lead-to-crm:a", "", "")},
		{"another secret", "POST", "/v1/leads", body, signed("not-the-secret-0123456789", testNow, "POST", "/v1/leads", "", body)},
	} {
		rec, msg := send(hs.h, tc.method, tc.target, tc.body, tc.header)
		require.Equal(t, http.StatusUnauthorized, rec.Code, tc.name)
		require.Contains(t, msg, "the signature does not match this request", tc.name)
		require.Contains(t, msg, "docs/intake.md", tc.name)
	}
	require.Zero(t, hs.items.startCount())

	for _, tc := range []struct{ name, header, want string }{
		{"no t", "v1=" + strings.Repeat("ab", 32), "the Signalbox-Signature header is malformed"},
		{"no v1", "t=" + strconv.FormatInt(testNow.Unix(), 10), "the Signalbox-Signature header is malformed"},
		{"short v1", "t=1,v1=abcd", "the Signalbox-Signature header is malformed"},
		{"two t", "t=1,t=2,v1=" + strings.Repeat("ab", 32), "the Signalbox-Signature header is malformed"},
	} {
		rec, msg := send(hs.h, "POST", "/v1/leads", body, map[string]string{signatureHeader: tc.header, "Content-Type": "application/json"})
		require.Equal(t, http.StatusUnauthorized, rec.Code, tc.name)
		require.Contains(t, msg, tc.want, tc.name)
	}
	rec, msg := send(hs.h, "POST", "/v1/leads", body, map[string]string{oldSignatureHeader: "sha256=" + strings.Repeat("ab", 32), "Content-Type": "application/json"})
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Contains(t, msg, "X-Signature-256 (an HMAC of the body alone) is no longer accepted: sign the request with Signalbox-Signature: t=<unix time>,v1=")

	// Signed right, each is taken; a signed GET reads only its own item.
	rec, msg = send(hs.h, "GET", "/v1/items/lead-to-crm:a", "", signed(testSecret, testNow, "GET", "/v1/items/lead-to-crm:a", "", ""))
	require.Equal(t, http.StatusOK, rec.Code, msg)
	rec, msg = send(hs.h, "POST", "/v1/leads", body, signed(testSecret, testNow, "POST", "/v1/leads", "k1", body))
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	require.Equal(t, "k1", hs.items.starts[0].key)
	// Another signature of the sender's, rotating its secret, may stand beside.
	other := signed(testSecret, testNow, "POST", "/v1/leads", "k2", body)
	other[signatureHeader] += ",v1=" + strings.Repeat("00", 32)
	rec, msg = send(hs.h, "POST", "/v1/leads", body, other)
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
}

func withHeader(h map[string]string, k, v string) map[string]string {
	h[k] = v
	if v == "" {
		delete(h, k)
	}
	return h
}

func TestASignedRequestNotTakenMaySimplyBeSentAgain(t *testing.T) {
	t.Parallel()
	led := newMemLedger()
	hs := newHarness(t, testConfig(), nil, led, io.Discard)
	body := lead("l-1")
	req := signed(testSecret, testNow, "POST", "/v1/leads", "", body)

	led.setDown(true)
	rec, msg := send(hs.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, "unable to rule out a replay, the intake takes nothing")
	require.Contains(t, msg, "PostgreSQL is unavailable; nothing was started")
	require.Zero(t, hs.items.startCount())
	led.setDown(false)

	hs.items.failing = true
	rec, _ = send(hs.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	hs.items.failing = false
	rec, msg = send(hs.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusAccepted, rec.Code, "a request the intake could not act on is no replay: %s", msg)
	rec, _ = send(hs.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "once taken, it is")
}

// TestReplicasAndRestartsShareTheSignaturesSeen: two intakes on one
// database, as replicas are, and a third started later, as after a restart.
func TestReplicasAndRestartsShareTheSignaturesSeen(t *testing.T) {
	t.Parallel()
	st := store.New(storetest.NewPool(t))
	a := newHarness(t, testConfig(), nil, st, io.Discard)
	b := newHarness(t, testConfig(), nil, st, io.Discard)
	body := lead("l-1")
	req := signed(testSecret, testNow, "POST", "/v1/leads", "", body)
	rec, msg := send(a.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	rec, _ = send(b.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "the other replica has seen it too")
	restarted := newHarness(t, testConfig(), nil, st, io.Discard)
	rec, _ = send(restarted.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "a restart forgets nothing")
	require.Zero(t, b.items.startCount()+restarted.items.startCount())
}

func TestAFloodIsRefusedPerSource(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.IntakeTokens["billing"] = billingToken
	cfg.IntakeRoutes["billing"] = []string{"leads"}
	cfg.IntakeRateLimit = config.RateLimit{Requests: 100, Per: time.Minute}
	cfg.IntakeRateLimits = config.RateLimits{"webform": {Requests: 3, Per: time.Minute}, "shop": {Requests: 1, Per: 2 * time.Minute}}
	hs := newHarness(t, cfg, nil, nil, io.Discard)

	post := func(n int) (*httptest.ResponseRecorder, string) {
		return send(hs.h, "POST", "/v1/leads", lead("w-"+strconv.Itoa(n)), bearer(testToken))
	}
	accepted, sent := 0, 0
	var waits []string
	for range 10 {
		sent++
		rec, msg := post(sent)
		switch rec.Code {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			waits = append(waits, rec.Header().Get("Retry-After"))
			require.Contains(t, msg, `source "webform" sent more than its limit of 3 per 1m0s; nothing was started: send it again after Retry-After seconds`)
		default:
			t.Fatalf("HTTP %d: %s", rec.Code, msg)
		}
	}
	require.Equal(t, 3, accepted, "a burst of the limit, no more, within the window")
	require.Equal(t, slices.Repeat([]string{"20"}, 7), waits, "one request more every 20s")
	require.Equal(t, 3, hs.items.startCount(), "a refused request starts nothing")

	rec, msg := send(hs.h, "POST", "/v1/leads", lead("b-1"), bearer(billingToken))
	require.Equal(t, http.StatusAccepted, rec.Code, "another source is not held back: %s", msg)

	hs.clock.advance(19 * time.Second)
	sent++
	rec, _ = post(sent)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	hs.clock.advance(time.Second)
	sent++
	rec, _ = post(sent)
	require.Equal(t, http.StatusAccepted, rec.Code, "Retry-After told the truth")
	hs.clock.advance(time.Hour)
	for range 3 {
		sent++
		rec, _ = post(sent)
		require.Equal(t, http.StatusAccepted, rec.Code, "a full bucket after a quiet hour, but no more than full")
	}
	sent++
	rec, _ = post(sent)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)

	// A signed request refused for the rate is not spent: sent unchanged
	// after Retry-After (still fresh), it is taken.
	first := signed(testSecret, hs.clock.now(), "POST", "/v1/leads", "", lead("s-1"))
	rec, _ = send(hs.h, "POST", "/v1/leads", lead("s-1"), first)
	require.Equal(t, http.StatusAccepted, rec.Code)
	body := lead("s-2")
	req := signed(testSecret, hs.clock.now(), "POST", "/v1/leads", "", body)
	rec, _ = send(hs.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "120", rec.Header().Get("Retry-After"))
	hs.clock.advance(2 * time.Minute)
	rec, msg = send(hs.h, "POST", "/v1/leads", body, req)
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
}

func TestAReplayDoesNotSpendItsSourcesLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.IntakeRateLimits = config.RateLimits{"shop": {Requests: 3, Per: time.Minute}}
	hs := newHarness(t, cfg, nil, nil, io.Discard)

	body := lead("s-1")
	captured := signed(testSecret, hs.clock.now(), "POST", "/v1/leads", "s-1", body)
	rec, msg := send(hs.h, "POST", "/v1/leads", body, captured)
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	for i := range 10 {
		rec, msg = send(hs.h, "POST", "/v1/leads", body, captured)
		require.Equal(t, http.StatusUnauthorized, rec.Code, "replay %d: %s", i+1, msg)
		require.Contains(t, msg, "this signed request was received before")
	}
	require.Equal(t, 1, hs.items.startCount())

	// The source's own next requests are taken: the replays counted nothing.
	for _, key := range []string{"s-2", "s-3"} {
		body := lead(key)
		rec, msg = send(hs.h, "POST", "/v1/leads", body, signed(testSecret, hs.clock.now(), "POST", "/v1/leads", key, body))
		require.Equal(t, http.StatusAccepted, rec.Code, "%s: %s", key, msg)
	}
	// Its limit is still there: the fourth within the minute is refused,
	// and, not taken, may be sent unchanged once the wait is over.
	body = lead("s-4")
	fourth := signed(testSecret, hs.clock.now(), "POST", "/v1/leads", "s-4", body)
	rec, _ = send(hs.h, "POST", "/v1/leads", body, fourth)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	hs.clock.advance(20 * time.Second)
	rec, msg = send(hs.h, "POST", "/v1/leads", body, fourth)
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	require.Equal(t, 4, hs.items.startCount())
}

func TestAnItemKeyBelongsToTheSourceThatFirstStartedIt(t *testing.T) {
	t.Parallel()
	st := store.New(storetest.NewPool(t))
	readyInvoice(t, st, "INV-1")
	cfg := testConfig()
	cfg.IntakeTokens["shop2"] = billingToken
	cfg.IntakeRoutes["shop2"] = []string{"leads", "invoices", "items"}
	led := newMemLedger()
	hs := newHarness(t, cfg, st, led, io.Discard)
	asShop2 := bearer(billingToken)
	post := func(key string, l string, header map[string]string) (*httptest.ResponseRecorder, string) {
		h := maps.Clone(header)
		h["Idempotency-Key"] = key
		return send(hs.h, "POST", "/v1/leads", l, h)
	}
	other := `{"id":"x","email":"mallory@example.com","firstName":"Mallory","lastName":"M","consent":true}`

	rec, msg := post("w9", lead("l-1"), bearer(testToken))
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	const id = "lead-to-crm:w9"
	hs.items.states[id] = api.ItemState{WorkflowID: id, Status: api.StatusSynced}
	hs.items.startedBy[id] = "intake:webform"

	// Another source with the route, other data or the same: refused, and
	// the owner is not named.
	for _, body := range []string{other, lead("l-1")} {
		rec, msg = post("w9", body, asShop2)
		require.Equal(t, http.StatusConflict, rec.Code, msg)
		require.Equal(t, `the item key "w9" belongs to another source; nothing was started: an item key belongs to the source that first started it: `+
			`send this record under a key of your own (the Idempotency-Key header, else the record's id)`, msg)
		require.Empty(t, rec.Header().Get("Location"))
	}
	rec, msg = send(hs.h, "POST", "/v1/leads", lead("l-1"), signed(testSecret, testNow, "POST", "/v1/leads", "w9", lead("l-1")))
	require.Equal(t, http.StatusConflict, rec.Code, "nor a signing source: %s", msg)
	require.Equal(t, 1, hs.items.startCount(), "nothing was started")
	read, err := led.IntakeItemOf(context.Background(), "shop2", id)
	require.NoError(t, err)
	require.False(t, read, "a refused POST records nothing")
	rec, _ = send(hs.h, "GET", "/v1/items/"+id, "", asShop2)
	require.Equal(t, http.StatusNotFound, rec.Code, "nor opens the item")

	// The owner may send it again (a re-sync); another key of shop2's is its own.
	rec, msg = post("w9", other, bearer(testToken))
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	rec, msg = post("s2-w9", other, asShop2)
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	hs.items.states["lead-to-crm:s2-w9"] = api.ItemState{WorkflowID: "lead-to-crm:s2-w9", Status: api.StatusSynced}
	rec, _ = send(hs.h, "GET", "/v1/items/lead-to-crm:s2-w9", "", asShop2)
	require.Equal(t, http.StatusOK, rec.Code, "its own item is read")

	// A path route: the key is the record's ID.
	rec, msg = send(hs.h, "POST", "/v1/invoices/INV-1/sync", "", bearer(testToken))
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	rec, msg = send(hs.h, "POST", "/v1/invoices/INV-1/sync", "", asShop2)
	require.Equal(t, http.StatusConflict, rec.Code, msg)
	require.Contains(t, msg, `the item key "INV-1" belongs to another source; nothing was started`)
	require.Contains(t, msg, "here the key is the record's ID: sync it with that source's credentials, or ask signalbox's operators to")

	// An item started before the intake recorded sources: its first run
	// names the source that owns it, which is recorded for it now.
	hs.items.states["lead-to-crm:old"] = api.ItemState{WorkflowID: "lead-to-crm:old", Status: api.StatusSynced}
	hs.items.startedBy["lead-to-crm:old"] = "intake:webform"
	rec, msg = post("old", other, asShop2)
	require.Equal(t, http.StatusConflict, rec.Code, msg)
	owner, err := led.IntakeItemOwner(context.Background(), "lead-to-crm:old")
	require.NoError(t, err)
	require.Equal(t, "webform", owner)
	rec, msg = post("old", lead("l-1"), bearer(testToken))
	require.Equal(t, http.StatusAccepted, rec.Code, msg)

	// Items operators, a poll or a reconcile started belong to no source:
	// the first source accepted for the key owns it from then on.
	for _, by := range []string{"cli", "poll", "reconcile run 7"} {
		key := strings.ReplaceAll("by-"+by, " ", "-")
		hs.items.states["lead-to-crm:"+key] = api.ItemState{WorkflowID: "lead-to-crm:" + key, Status: api.StatusSynced}
		hs.items.startedBy["lead-to-crm:"+key] = by
		rec, msg = post(key, other, asShop2)
		require.Equal(t, http.StatusAccepted, rec.Code, "%s: %s", by, msg)
		rec, msg = post(key, other, bearer(testToken))
		require.Equal(t, http.StatusConflict, rec.Code, "%s: %s", by, msg)
	}

	// Nothing started, nothing kept: a key the intake could not start is
	// free again; PostgreSQL down, nothing is started.
	hs.items.failing = true
	rec, _ = post("fresh", other, asShop2)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	hs.items.failing = false
	owner, err = led.IntakeItemOwner(context.Background(), "lead-to-crm:fresh")
	require.NoError(t, err)
	require.Empty(t, owner)
	hs.items.running = "lead-to-crm:busy"
	rec, _ = post("busy", other, asShop2)
	require.Equal(t, http.StatusConflict, rec.Code, "running with another submission")
	owner, err = led.IntakeItemOwner(context.Background(), "lead-to-crm:busy")
	require.NoError(t, err)
	require.Empty(t, owner)
	rec, msg = post("fresh", other, bearer(testToken))
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	started := hs.items.startCount()
	led.setDown(true)
	rec, msg = post("down", other, bearer(testToken))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, msg, "nothing was started: retry with the same key")
	require.Equal(t, started, hs.items.startCount())
}

func TestTheLimiterRefillsAtItsRate(t *testing.T) {
	t.Parallel()
	l := newLimiter(func(string) config.RateLimit { return config.RateLimit{Requests: 10, Per: time.Second} })
	now := testNow
	taken := 0
	// A sender sending every 10ms for 2s: a burst of 10, then 10 a second.
	for i := range 200 {
		if ok, _ := l.allow("x", now.Add(time.Duration(i)*10*time.Millisecond)); ok {
			taken++
		}
	}
	require.InDelta(t, 10+10*2, taken, 1)
	l.allow("x", now.Add(2*time.Second))
	ok, wait := l.allow("x", now.Add(2*time.Second))
	require.False(t, ok)
	require.Positive(t, wait)
	require.LessOrEqual(t, wait, 100*time.Millisecond)
	require.Equal(t, 1, retryAfter(wait), "Retry-After is whole seconds, at least 1")
}

func TestItemsAreReadOnlyByTheSourceThatWasGivenThem(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.IntakeRoutes["shop"] = []string{"leads", "items"}
	led := newMemLedger()
	hs := newHarness(t, cfg, nil, led, io.Discard)
	get := func(id string, header map[string]string) (*httptest.ResponseRecorder, string) {
		return send(hs.h, "GET", "/v1/items/"+id, "", header)
	}
	asShop := func(id string) map[string]string {
		return signed(testSecret, hs.clock.now(), "GET", "/v1/items/"+id, "", "")
	}

	rec, msg := send(hs.h, "POST", "/v1/leads", lead("l-1"), bearer(testToken))
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	id := "lead-to-crm:l-1"
	// Whoever started the run (here a poll, before the sender's retry was
	// answered 202), the source that was answered 202 reads it.
	hs.items.startedBy[id] = "poll"
	hs.items.states[id] = api.ItemState{Integration: "lead-to-crm", WorkflowID: id, SourceKey: "l-1", Owner: "sales", Team: "sales-dach",
		Status: api.StatusBlocked, Step: "find contact", StartedAt: testNow, UpdatedAt: testNow.Add(time.Minute),
		Exception: &api.ExceptionState{Kind: api.ExceptionKind("Conflict"), Summary: "ada@example.com holds another phone", Since: testNow,
			Details: map[string]string{"email": "ada@example.com", "phone": "+49 30 1234567"}, Deciders: "sales"},
		ExternalIDs: map[string]string{"crm": "1001"}, Attempts: map[string]int{"find contact": 2},
		Decisions: []api.DecisionRecord{{Decision: api.Decision{Action: "retry", Actor: "alice", Reason: "Ada Lovelace called, try again"}}}}

	rec, _ = get(id, bearer(testToken))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	for _, personal := range []string{"ada@example.com", "+49", "Lovelace", "alice", "another phone", "sales"} {
		require.NotContains(t, body, personal, "the answer carries no personal data, details or decisions")
	}
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	require.Equal(t, []string{"exception", "externalIds", "integration", "sourceKey", "startedAt", "status", "step", "updatedAt", "workflowId"}, keys)
	require.Equal(t, map[string]any{"kind": "Conflict", "since": testNow.Format(time.RFC3339)}, got["exception"])
	require.Equal(t, map[string]any{"crm": "1001"}, got["externalIds"])
	var asState api.ItemState
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &asState), "readers of the wider ItemState still read it")
	require.Equal(t, api.StatusBlocked, asState.Status)

	// Another source: the same 404 as an item that does not exist, told
	// from the ledger alone: Temporal is not asked, so the answer takes as
	// long for an item of another source as for one that does not exist.
	hs.items.states["lead-to-crm:mine"] = api.ItemState{WorkflowID: "lead-to-crm:mine", Status: api.StatusSynced}
	hs.items.startedBy["lead-to-crm:mine"] = "intake:webform"
	asked := hs.items.lookupCount()
	rec, other := get(id, asShop(id))
	require.Equal(t, http.StatusNotFound, rec.Code)
	rec, none := get("lead-to-crm:nope", asShop("lead-to-crm:nope"))
	require.Equal(t, http.StatusNotFound, rec.Code)
	rec, started := get("lead-to-crm:mine", asShop("lead-to-crm:mine"))
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.Equal(t, asked, hs.items.lookupCount(), "a source's 404 never asks Temporal")
	require.Equal(t, strings.ReplaceAll(none, "lead-to-crm:nope", id), other, "existence does not leak")
	require.Equal(t, strings.ReplaceAll(none, "lead-to-crm:nope", "lead-to-crm:mine"), started)
	require.Contains(t, other, "no item "+id+" among those this source started")

	// An item shop started before the intake recorded items is not read
	// from its first run any more: only the ledger opens an item.
	hs.items.states["lead-to-crm:old"] = api.ItemState{WorkflowID: "lead-to-crm:old", Status: api.StatusSynced}
	hs.items.startedBy["lead-to-crm:old"] = "intake:shop"
	rec, _ = get("lead-to-crm:old", asShop("lead-to-crm:old"))
	require.Equal(t, http.StatusNotFound, rec.Code)

	// PostgreSQL down: nothing is read, not even the source's own item.
	led.setDown(true)
	rec, msg = get(id, bearer(testToken))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, msg, "PostgreSQL is unavailable")
}

func TestTheStripeWebhookTakesNoIntakeCredentials(t *testing.T) {
	t.Parallel()
	events, _, h := newStripeWebhook(t, testStripeSecret)
	body := invoiceEvent(t, "evt_1", "invoice.paid", time.Now())
	for name, header := range map[string]map[string]string{
		"an intake token":     bearer(testToken),
		"an intake signature": signed(testSecret, time.Now(), "POST", "/v1/webhooks/stripe", "", string(body)),
	} {
		rec, msg := send(h, "POST", "/v1/webhooks/stripe", string(body), header)
		require.Equal(t, http.StatusBadRequest, rec.Code, name)
		require.Contains(t, msg, "no Stripe-Signature header: only events Stripe signed are accepted here; nothing was started", name)
	}
	require.Zero(t, events.count())
}

func TestStripeDeliveriesHaveARateLimitToo(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.IntakeRateLimits = config.RateLimits{"stripe": {Requests: 2, Per: time.Hour}}
	events, _, h := newStripeWebhookWith(t, testStripeSecret, cfg)
	codes := []int{}
	for i := range 3 {
		body := invoiceEvent(t, "evt_"+strconv.Itoa(i), "invoice.paid", time.Now())
		rec, _ := deliver(h, body, stripeSign(body, testStripeSecret, time.Now()))
		codes = append(codes, rec.Code)
		if rec.Code == http.StatusTooManyRequests {
			require.Regexp(t, regexp.MustCompile(`^\d+$`), rec.Header().Get("Retry-After"))
		}
	}
	require.Equal(t, []int{200, 200, 429}, codes)
	require.Equal(t, 2, events.count())
}

// TestTheDocumentedSigningExampleSigns runs the shell example of
// docs/intake.md and checks its signature is the intake's.
func TestTheDocumentedSigningExampleSigns(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	doc, err := os.ReadFile("../docs/intake.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(doc), "<!-- signing example -->\n```sh\n")
	require.True(t, ok, "docs/intake.md marks its signing example")
	script, _, _ := strings.Cut(after, "```")
	// The example posts; here it prints the header instead.
	script, _, ok = strings.Cut(script, "curl ")
	require.True(t, ok, "the example ends with the curl that sends it")
	dir := t.TempDir()
	body := lead("l-1") + "\n" // a file's final newline is part of the body
	require.NoError(t, os.WriteFile(dir+"/lead.json", []byte(body), 0o600))
	cmd := exec.Command("sh", "-euc", script+"\necho \"t=$t,v1=$sig\"")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SECRET="+testSecret)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	header := strings.TrimSpace(string(out))

	hs := newHarness(t, testConfig(), nil, nil, io.Discard)
	t0, _, _ := strings.Cut(strings.TrimPrefix(header, "t="), ",")
	unix, err := strconv.ParseInt(t0, 10, 64)
	require.NoError(t, err, header)
	hs.clock.t = time.Unix(unix, 0)
	rec, msg := send(hs.h, "POST", "/v1/leads", body, map[string]string{signatureHeader: header, "Idempotency-Key": "form-42", "Content-Type": "application/json"})
	require.Equal(t, http.StatusAccepted, rec.Code, msg)
	require.Equal(t, "form-42", hs.items.starts[0].key)
}
