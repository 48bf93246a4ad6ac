package tests

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/stack"
)

// The sources of the scoped intakes these tests start beside the shared
// stack's: webform may post leads and read items, billing may sync invoices
// and read items, shop signs leads and reads items, flood may post leads,
// at most 5 a minute.
const (
	webformToken = "e2e-webform-token-0123456789"
	billingToken = "e2e-billing-token-0123456789"
	floodToken   = "e2e-flood-token-0123456789"
	shopSecret   = "e2e-shop-hmac-secret-0123456789"
	floodLimit   = 5
	floodWindow  = time.Minute
)

var scopedIntakeEnv = []string{
	"SIGNALBOX_INTAKE_TOKENS=webform=" + webformToken + ";billing=" + billingToken + ";flood=" + floodToken,
	"SIGNALBOX_INTAKE_HMAC_SECRETS=shop=" + shopSecret,
	"SIGNALBOX_INTAKE_ROUTES=webform=leads,items;billing=invoices,items;shop=lead-to-crm,items;flood=leads",
	"SIGNALBOX_INTAKE_RATE_LIMITS=flood=" + strconv.Itoa(floodLimit) + "/" + floodWindow.String(),
	"SIGNALBOX_STRIPE_WEBHOOK_SECRET=" + stripeSecret,
	"SIGNALBOX_LOG_LEVEL=info",
}

// scopedIntake starts an intake configured with scopedIntakeEnv on the
// shared stack (its Temporal and database) and returns its URL and process.
// When the test ends it is stopped, and its log must hold no token, secret
// or test lead's email.
func scopedIntake(t *testing.T) (string, *stack.Process) {
	t.Helper()
	addr, err := stack.FreeAddr()
	require.NoError(t, err)
	p := &stack.Process{Name: "intake-scoped", Path: filepath.Join(binDir, "starter"), Args: []string{"serve"},
		Env:     append(append(append([]string(nil), shared.Env...), scopedIntakeEnv...), "SIGNALBOX_INTAKE_ADDR="+addr),
		LogPath: filepath.Join(t.TempDir(), "intake-scoped.log"), ReadyURL: "http://" + addr + "/healthz"}
	require.NoError(t, p.Start(context.Background()))
	t.Cleanup(func() {
		_ = p.Stop(15 * time.Second)
		b, err := os.ReadFile(p.LogPath)
		require.NoError(t, err)
		for _, s := range []string{webformToken, billingToken, floodToken, shopSecret, "@example.com", "@acme.example"} {
			require.NotContains(t, string(b), s, "the intake's log holds a secret or personal data")
		}
		if t.Failed() {
			t.Logf("intake log:\n%s", p.Tail(40))
		}
	})
	return "http://" + addr, p
}

// intakeSignature is the Signalbox-Signature of a request, signed with
// shop's secret at time at (docs/intake.md).
func intakeSignature(at time.Time, method, target, key string, body []byte) string {
	t := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(shopSecret))
	mac.Write([]byte(t + "\n" + method + "\n" + target + "\n" + key + "\n"))
	mac.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// intakeAnswer is an answer of the intake.
type intakeAnswer struct {
	code       int
	retryAfter string
	raw        []byte
	body       map[string]any
}

func (a intakeAnswer) err() string { s, _ := a.body["error"].(string); return s }

// intakeRequest sends method target with body and these headers.
func intakeRequest(t *testing.T, base, method, target string, body []byte, header map[string]string) intakeAnswer {
	t.Helper()
	req, err := http.NewRequest(method, base+target, bytes.NewReader(body))
	require.NoError(t, err)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := intakeAnswer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), raw: raw, body: map[string]any{}}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func asSource(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// requireNoItem fails unless Temporal knows no item id: nothing was started.
func requireNoItem(t *testing.T, id string) {
	t.Helper()
	_, err := shared.Client.DescribeWorkflow(context.Background(), id, "")
	var notFound *serviceerror.NotFound
	require.True(t, errors.As(err, &notFound), "%s must not exist; describe answered %v", id, err)
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestIntakeSourcesUseOnlyTheirRoutes(t *testing.T) {
	t.Parallel()
	base, _ := scopedIntake(t)
	invoiceID := uniqueKey(t, "INV-SCOPE")
	shared.invoice(t, invoiceID)
	leadKey := uniqueKey(t, "scope-lead")

	a := intakeRequest(t, base, "POST", "/v1/invoices/"+invoiceID+"/sync", []byte("{}"), asSource(webformToken))
	require.Equal(t, http.StatusForbidden, a.code, string(a.raw))
	require.Contains(t, a.err(), `source "webform" may not use POST /v1/invoices/{id}/sync; nothing was started`)
	a = intakeRequest(t, base, "POST", "/v1/leads", marshal(t, lead(leadKey)), asSource(billingToken))
	require.Equal(t, http.StatusForbidden, a.code, string(a.raw))
	require.Contains(t, a.err(), `source "billing" may not use POST /v1/leads`)
	a = intakeRequest(t, base, "POST", "/v1/invoices/"+invoiceID+"/sync", []byte("{}"),
		map[string]string{"Signalbox-Signature": intakeSignature(time.Now(), "POST", "/v1/invoices/"+invoiceID+"/sync", "", []byte("{}"))})
	require.Equal(t, http.StatusForbidden, a.code, "shop may post leads only: %s", a.raw)
	a = intakeRequest(t, base, "GET", "/v1/items/lead-to-crm:"+leadKey, nil, asSource(floodToken))
	require.Equal(t, http.StatusForbidden, a.code, string(a.raw))
	require.Contains(t, a.err(), `source "flood" may not read items`)

	// The Stripe webhook takes Stripe's signature only, never an intake source's.
	stripeInvoice := uniqueKey(t, "in_scope")
	event := stripeEvent(t, uniqueKey(t, "evt_scope"), "invoice.paid", stripeInvoice, invoiceID, "paid", time.Now())
	for name, header := range map[string]map[string]string{
		"a token":     asSource(webformToken),
		"a signature": {"Signalbox-Signature": intakeSignature(time.Now(), "POST", "/v1/webhooks/stripe", "", event)},
	} {
		a = intakeRequest(t, base, "POST", "/v1/webhooks/stripe", event, header)
		require.Equal(t, http.StatusBadRequest, a.code, name)
		require.Contains(t, a.err(), "no Stripe-Signature header", name)
	}

	requireNoItem(t, api.ItemID(api.IntegrationInvoiceToBilling, invoiceID))
	requireNoItem(t, api.ItemID(api.IntegrationLeadToCRM, leadKey))
	requireNoItem(t, api.ItemID(api.IntegrationInvoicePayments, stripeInvoice))
	require.Empty(t, shared.contactsWithEmail(t, leadKey+"@example.com"))

	// Each with its own route is taken.
	a = intakeRequest(t, base, "POST", "/v1/invoices/"+invoiceID+"/sync", []byte("{}"), asSource(billingToken))
	require.Equal(t, http.StatusAccepted, a.code, string(a.raw))
	a = intakeRequest(t, base, "POST", "/v1/leads", marshal(t, lead(leadKey)), asSource(webformToken))
	require.Equal(t, http.StatusAccepted, a.code, string(a.raw))
	shared.waitStatus(t, api.ItemID(api.IntegrationLeadToCRM, leadKey), api.StatusSynced)
	require.Contains(t, transitions(shared.auditTrail(t, api.ItemID(api.IntegrationLeadToCRM, leadKey))), "accepted →Pending system")
}

func TestIntakeItemsAreReadOnlyByTheirSourceWithoutPersonalData(t *testing.T) {
	t.Parallel()
	base, _ := scopedIntake(t)
	key := uniqueKey(t, "scope-read")
	l := lead(key)
	a := intakeRequest(t, base, "POST", "/v1/leads", marshal(t, l), asSource(webformToken))
	require.Equal(t, http.StatusAccepted, a.code, string(a.raw))
	id := a.body["workflowId"].(string)
	shared.waitStatus(t, id, api.StatusSynced)

	a = intakeRequest(t, base, "GET", "/v1/items/"+id, nil, asSource(webformToken))
	require.Equal(t, http.StatusOK, a.code, string(a.raw))
	for _, personal := range []string{l.Email, l.FirstName, l.LastName, l.Company, "@"} {
		require.NotContains(t, string(a.raw), personal, "the item's answer carries no personal data")
	}
	var keys []string
	for k := range a.body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	require.Subset(t, []string{"exception", "externalIds", "integration", "sourceKey", "startedAt", "status", "step", "updatedAt", "workflowId"}, keys)
	require.Equal(t, "Synced", a.body["status"])
	require.Equal(t, id, a.body["workflowId"])
	contacts := shared.contactsWithEmail(t, l.Email)
	require.Len(t, contacts, 1)
	require.Equal(t, map[string]any{"crm": contacts[0].ID}, a.body["externalIds"], "the target's IDs are identifiers, not personal data")

	// Another source: the 404 of an item that does not exist.
	other := intakeRequest(t, base, "GET", "/v1/items/"+id, nil, asSource(billingToken))
	require.Equal(t, http.StatusNotFound, other.code, string(other.raw))
	missing := "lead-to-crm:" + uniqueKey(t, "nobody")
	none := intakeRequest(t, base, "GET", "/v1/items/"+missing, nil, asSource(billingToken))
	require.Equal(t, http.StatusNotFound, none.code)
	require.Equal(t, strings.ReplaceAll(string(none.raw), missing, id), string(other.raw), "existence does not leak")
	signed := intakeRequest(t, base, "GET", "/v1/items/"+id, nil,
		map[string]string{"Signalbox-Signature": intakeSignature(time.Now(), "GET", "/v1/items/"+id, "", nil)})
	require.Equal(t, http.StatusNotFound, signed.code, "shop did not start it either: %s", signed.raw)
}

// TestIntakeKeysBelongToTheSourceThatFirstStartedThem: webform's lead, once
// synced, cannot be overwritten, nor opened, by another source posting its key.
func TestIntakeKeysBelongToTheSourceThatFirstStartedThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, _ := scopedIntake(t)
	key := uniqueKey(t, "scope-owned")
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	mine := lead(key)
	a := intakeRequest(t, base, "POST", "/v1/leads", marshal(t, mine), asSource(webformToken))
	require.Equal(t, http.StatusAccepted, a.code, string(a.raw))
	runID := a.body["runId"].(string)
	shared.waitStatus(t, id, api.StatusSynced)
	contacts := shared.contactsWithEmail(t, mine.Email)
	require.Len(t, contacts, 1)
	link, err := shared.db(t).GetLink(ctx, api.IntegrationLeadToCRM, key, api.SystemCRM)
	require.NoError(t, err)

	// shop (leads and items, signing) and flood (leads) post other data
	// under webform's key, and shop webform's very data: each refused.
	theirs := lead(key)
	theirs.Email, theirs.FirstName, theirs.LastName = "mallory-"+key+"@example.com", "Mallory", "Overwriter"
	other := marshal(t, theirs)
	for name, send := range map[string]func() intakeAnswer{
		"shop, other data": func() intakeAnswer {
			return intakeRequest(t, base, "POST", "/v1/leads", other,
				map[string]string{"Signalbox-Signature": intakeSignature(time.Now(), "POST", "/v1/leads", "", other)})
		},
		"shop, the same data": func() intakeAnswer {
			same := marshal(t, mine)
			return intakeRequest(t, base, "POST", "/v1/leads", same,
				map[string]string{"Signalbox-Signature": intakeSignature(time.Now(), "POST", "/v1/leads", "", same)})
		},
		"flood, other data": func() intakeAnswer {
			return intakeRequest(t, base, "POST", "/v1/leads", other, asSource(floodToken))
		},
	} {
		a := send()
		require.Equal(t, http.StatusConflict, a.code, "%s: %s", name, a.raw)
		require.Contains(t, a.err(), `the item key "`+key+`" belongs to another source; nothing was started`, name)
		require.Contains(t, a.err(), "send this record under a key of your own", name)
		require.NotContains(t, a.err(), "webform", "the owner is not named")
	}
	desc, err := shared.Client.DescribeWorkflow(ctx, id, "")
	require.NoError(t, err)
	require.Equal(t, runID, desc.WorkflowExecution.RunID, "no run was started")
	after := shared.contactsWithEmail(t, mine.Email)
	require.Len(t, after, 1)
	require.Equal(t, contacts[0].Properties, after[0].Properties, "the CRM contact keeps webform's data")
	require.Empty(t, shared.contactsWithEmail(t, theirs.Email))
	linkAfter, err := shared.db(t).GetLink(ctx, api.IntegrationLeadToCRM, key, api.SystemCRM)
	require.NoError(t, err)
	require.Equal(t, link.Baseline, linkAfter.Baseline, "the link's baseline keeps webform's data")
	require.Equal(t, link.SyncedHash, linkAfter.SyncedHash)
	for _, source := range []string{"shop", "flood"} {
		recorded, err := shared.db(t).IntakeItemOf(ctx, source, id)
		require.NoError(t, err)
		require.False(t, recorded, "a refused POST records nothing for %s", source)
	}
	read := intakeRequest(t, base, "GET", "/v1/items/"+id, nil,
		map[string]string{"Signalbox-Signature": intakeSignature(time.Now(), "GET", "/v1/items/"+id, "", nil)})
	require.Equal(t, http.StatusNotFound, read.code, "nor may shop read it: %s", read.raw)

	// webform itself re-syncs its key.
	mine.Phone = "+44 20 7946 0001"
	a = intakeRequest(t, base, "POST", "/v1/leads", marshal(t, mine), asSource(webformToken))
	require.Equal(t, http.StatusAccepted, a.code, string(a.raw))
	require.NotEqual(t, runID, a.body["runId"])

	// An item an operator started belongs to no source: the first source
	// accepted for its key owns it from then on.
	cliKey := uniqueKey(t, "scope-cli")
	cliID := api.ItemID(api.IntegrationLeadToCRM, cliKey)
	file := filepath.Join(t.TempDir(), "lead.json")
	require.NoError(t, writeJSON(file, lead(cliKey)))
	_, stderr, code, err := shared.Command(ctx, "", "starter", "lead", "--file", file)
	require.NoError(t, err)
	require.Equal(t, 0, code, stderr)
	shared.waitStatus(t, cliID, api.StatusSynced)
	cliBody := marshal(t, lead(cliKey))
	a = intakeRequest(t, base, "POST", "/v1/leads", cliBody,
		map[string]string{"Signalbox-Signature": intakeSignature(time.Now(), "POST", "/v1/leads", "", cliBody)})
	require.Equal(t, http.StatusAccepted, a.code, "shop may re-sync a key no source owns: %s", a.raw)
	a = intakeRequest(t, base, "POST", "/v1/leads", cliBody, asSource(floodToken))
	require.Equal(t, http.StatusConflict, a.code, "now it is shop's: %s", a.raw)
	shared.waitStatus(t, id, api.StatusSynced)
}

func TestSignedIntakeRequestsAreNeitherReplayedNorReused(t *testing.T) {
	t.Parallel()
	replicaA, processA := scopedIntake(t)
	replicaB, _ := scopedIntake(t)

	key := uniqueKey(t, "scope-replay")
	body := marshal(t, lead(key))
	header := map[string]string{"Idempotency-Key": key, "Signalbox-Signature": intakeSignature(time.Now(), "POST", "/v1/leads", key, body)}
	a := intakeRequest(t, replicaA, "POST", "/v1/leads", body, header)
	require.Equal(t, http.StatusAccepted, a.code, string(a.raw))
	id, runID := a.body["workflowId"].(string), a.body["runId"].(string)
	// Once the item has ended, a request taken again would start a new run
	// (a re-sync): its run must stay the only one.
	shared.waitStatus(t, id, api.StatusSynced)

	a = intakeRequest(t, replicaB, "POST", "/v1/leads", body, header)
	require.Equal(t, http.StatusUnauthorized, a.code, "another replica has seen it: %s", a.raw)
	require.Contains(t, a.err(), "this signed request was received before: a replay is refused and starts nothing")
	require.NoError(t, processA.Stop(15*time.Second))
	require.NoError(t, processA.Start(context.Background()))
	a = intakeRequest(t, replicaA, "POST", "/v1/leads", body, header)
	require.Equal(t, http.StatusUnauthorized, a.code, "a restarted intake has seen it: %s", a.raw)
	desc, err := shared.Client.DescribeWorkflow(context.Background(), id, "")
	require.NoError(t, err)
	require.Equal(t, runID, desc.WorkflowExecution.RunID, "the replays started no run")

	// A signature 6 minutes old.
	stale := uniqueKey(t, "scope-stale")
	staleBody := marshal(t, lead(stale))
	a = intakeRequest(t, replicaB, "POST", "/v1/leads", staleBody,
		map[string]string{"Signalbox-Signature": intakeSignature(time.Now().Add(-6*time.Minute), "POST", "/v1/leads", "", staleBody)})
	require.Equal(t, http.StatusUnauthorized, a.code, string(a.raw))
	require.Contains(t, a.err(), "more than the 5m0s allowed")
	requireNoItem(t, api.ItemID(api.IntegrationLeadToCRM, stale))

	// A signature over another Idempotency-Key.
	signedKey, sentKey := uniqueKey(t, "scope-k1"), uniqueKey(t, "scope-k2")
	own := uniqueKey(t, "scope-own")
	ownBody := marshal(t, lead(own))
	a = intakeRequest(t, replicaB, "POST", "/v1/leads", ownBody,
		map[string]string{"Idempotency-Key": sentKey, "Signalbox-Signature": intakeSignature(time.Now(), "POST", "/v1/leads", signedKey, ownBody)})
	require.Equal(t, http.StatusUnauthorized, a.code, string(a.raw))
	require.Contains(t, a.err(), "the signature does not match this request")
	for _, k := range []string{signedKey, sentKey, own} {
		requireNoItem(t, api.ItemID(api.IntegrationLeadToCRM, k))
	}

	// The scheme that signed the body alone is refused, saying so.
	a = intakeRequest(t, replicaB, "POST", "/v1/leads", ownBody, map[string]string{"X-Signature-256": "sha256=" + strings.Repeat("ab", 32)})
	require.Equal(t, http.StatusUnauthorized, a.code)
	require.Contains(t, a.err(), "no longer accepted: sign the request with Signalbox-Signature")
	requireNoItem(t, api.ItemID(api.IntegrationLeadToCRM, own))

	// A signed read opens its item, once; reused for another item, nothing.
	second := uniqueKey(t, "scope-second")
	secondBody := marshal(t, lead(second))
	a = intakeRequest(t, replicaB, "POST", "/v1/leads", secondBody,
		map[string]string{"Signalbox-Signature": intakeSignature(time.Now(), "POST", "/v1/leads", "", secondBody)})
	require.Equal(t, http.StatusAccepted, a.code, string(a.raw))
	read := map[string]string{"Signalbox-Signature": intakeSignature(time.Now(), "GET", "/v1/items/"+id, "", nil)}
	a = intakeRequest(t, replicaB, "GET", "/v1/items/lead-to-crm:"+second, nil, read)
	require.Equal(t, http.StatusUnauthorized, a.code, "a read signed for one item opens no other: %s", a.raw)
	a = intakeRequest(t, replicaB, "GET", "/v1/items/"+id, nil, read)
	require.Equal(t, http.StatusOK, a.code, string(a.raw))
	require.Equal(t, "Synced", a.body["status"])
	a = intakeRequest(t, replicaA, "GET", "/v1/items/"+id, nil, read)
	require.Equal(t, http.StatusUnauthorized, a.code, "nor twice: %s", a.raw)
}

func TestAnIntakeFloodIsRefusedBySource(t *testing.T) {
	t.Parallel()
	base, _ := scopedIntake(t)
	prefix := uniqueKey(t, "flood")
	const sent = 3 * floodLimit
	var accepted, refused []string
	var waits []int
	began := time.Now()
	for i := range sent {
		key := prefix + "-" + strconv.Itoa(i)
		a := intakeRequest(t, base, "POST", "/v1/leads", marshal(t, lead(key)), asSource(floodToken))
		switch a.code {
		case http.StatusAccepted:
			accepted = append(accepted, key)
		case http.StatusTooManyRequests:
			refused = append(refused, key)
			require.Contains(t, a.err(), `source "flood" sent more than its limit of 5 per 1m0s; nothing was started: send it again after Retry-After seconds`)
			wait, err := strconv.Atoi(a.retryAfter)
			require.NoError(t, err, "Retry-After is whole seconds: %q", a.retryAfter)
			waits = append(waits, wait)
		default:
			t.Fatalf("%s: HTTP %d %s", key, a.code, a.raw)
		}
	}
	took := time.Since(began)
	// Judged by what the sender did: a burst of the limit, then one more per
	// window/limit of the time the sender spent sending.
	allowed := floodLimit + int(took/(floodWindow/floodLimit))
	t.Logf("%d sent in %s: %d accepted (at most %d allowed), %d refused, Retry-After %v", sent, took.Round(time.Millisecond), len(accepted), allowed, len(refused), waits)
	require.GreaterOrEqual(t, len(accepted), floodLimit, "the burst is taken")
	require.LessOrEqual(t, len(accepted), allowed, "no more than the limit")
	require.NotEmpty(t, refused, "a flood is refused")
	for _, w := range waits {
		require.GreaterOrEqual(t, w, 1)
		require.LessOrEqual(t, w, int((floodWindow / floodLimit).Seconds()), "the next request is taken within window/limit")
	}
	for _, key := range refused {
		requireNoItem(t, api.ItemID(api.IntegrationLeadToCRM, key))
	}
	for _, key := range accepted {
		_, err := shared.Client.DescribeWorkflow(context.Background(), api.ItemID(api.IntegrationLeadToCRM, key), "")
		require.NoError(t, err, "%s was started", key)
	}

	other := uniqueKey(t, "not-flood")
	a := intakeRequest(t, base, "POST", "/v1/leads", marshal(t, lead(other)), asSource(webformToken))
	require.Equal(t, http.StatusAccepted, a.code, "one source's flood does not hold back another: %s", a.raw)
}

func TestTheIntakeStopsAtStartWhenASourceHasNoRoutes(t *testing.T) {
	t.Parallel()
	serve := func(env ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		addr, err := stack.FreeAddr()
		require.NoError(t, err)
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "starter"), "serve")
		cmd.Env = append(append(append([]string(nil), shared.Env...), "SIGNALBOX_INTAKE_ADDR="+addr), env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err = cmd.Run()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "the intake must not start: %s", stderr.String())
		return exit.ExitCode(), stderr.String()
	}
	tokens := "SIGNALBOX_INTAKE_TOKENS=webform=" + webformToken + ";billing=" + billingToken
	code, stderr := serve(tokens, "SIGNALBOX_INTAKE_ROUTES=billing=invoices")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `starter: config: SIGNALBOX_INTAKE_ROUTES gives no routes to source "webform", which holds a token or secret: `+
		`every request it sends would be refused. Set SIGNALBOX_INTAKE_ROUTES="webform=<routes>"`)
	code, stderr = serve(tokens, "SIGNALBOX_INTAKE_ROUTES=billing=invoices;webform=lead")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `starter: config: SIGNALBOX_INTAKE_ROUTES: source "webform": unknown route "lead"; the routes are `+
		`customer-sync, customers, invoice-to-billing, invoices, items, lead-to-crm, leads or * (every route)`)
	require.NotContains(t, stderr, webformToken)
}
