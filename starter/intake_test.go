package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
	"github.com/signalbox-dev/signalbox/workflows"
)

// fakeItems records starts instead of talking to Temporal.
type fakeItems struct {
	mu      sync.Mutex
	starts  []fakeStart
	failing bool
	// running answers a start of this workflow ID: it runs with other input.
	running string
	states  map[string]api.ItemState
	// startedBy is the startedBy of items' first runs.
	startedBy map[string]string
	// lookups counts the questions about items (Status, StartedBy), each a
	// round trip to Temporal.
	lookups int
}

type fakeStart struct {
	spec  string
	key   string
	input any
}

func (f *fakeItems) Start(_ context.Context, spec api.Spec, key string, input any) (started, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return started{}, errors.New("connection refused")
	}
	if id := api.ItemID(spec.Name, key); id == f.running {
		return started{}, &errRunningOther{started{WorkflowID: id, RunID: "run-0"}}
	}
	f.starts = append(f.starts, fakeStart{spec.Name, key, input})
	return started{WorkflowID: api.ItemID(spec.Name, key), RunID: "run-1"}, nil
}

func (f *fakeItems) Status(_ context.Context, id string) (api.ItemState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	s, ok := f.states[id]
	if !ok {
		return s, api.ErrNoItem
	}
	return s, nil
}

func (f *fakeItems) StartedBy(_ context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	if by, ok := f.startedBy[id]; ok {
		return by, nil
	}
	if _, ok := f.states[id]; ok {
		return "", nil
	}
	return "", api.ErrNoItem
}

func (f *fakeItems) lookupCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups
}

func (f *fakeItems) startCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts)
}

const (
	testToken  = "webform-token-0123456789"
	testSecret = "shop-hmac-secret-0123456789"
)

// testNow is the intake's clock in tests that do not move it.
var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// memLedger keeps the intake's ledger in memory; down makes it fail as
// PostgreSQL down would.
type memLedger struct {
	mu   sync.Mutex
	seen map[string]bool
	// items lists, by workflow ID, the sources recorded, first (the owner) first.
	items map[string][]string
	down  bool
}

func newMemLedger() *memLedger {
	return &memLedger{seen: map[string]bool{}, items: map[string][]string{}}
}

var errDown = errors.New("connection refused")

func (m *memLedger) ClaimIntakeSignature(_ context.Context, sig store.IntakeSignature) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return false, errDown
	}
	if m.seen[sig.Digest] {
		return false, nil
	}
	m.seen[sig.Digest] = true
	return true, nil
}

func (m *memLedger) ReleaseIntakeSignature(_ context.Context, digest string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	delete(m.seen, digest)
	return nil
}

func (m *memLedger) IntakeItemOwner(_ context.Context, workflowID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return "", errDown
	}
	if sources := m.items[workflowID]; len(sources) > 0 {
		return sources[0], nil
	}
	return "", nil
}

func (m *memLedger) ClaimIntakeItem(_ context.Context, source, workflowID string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return "", false, errDown
	}
	sources := m.items[workflowID]
	switch {
	case len(sources) == 0:
		m.items[workflowID] = []string{source}
		return source, true, nil
	case sources[0] != source:
		return sources[0], false, nil
	}
	return source, false, nil
}

func (m *memLedger) ReleaseIntakeItem(_ context.Context, source, workflowID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	m.items[workflowID] = slices.DeleteFunc(m.items[workflowID], func(s string) bool { return s == source })
	return nil
}

func (m *memLedger) IntakeItemOf(_ context.Context, source, workflowID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return false, errDown
	}
	return slices.Contains(m.items[workflowID], source), nil
}

func (m *memLedger) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// fakeClock is a clock a test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testConfig configures source webform with a token and shop signing with
// a secret, both granted every route.
func testConfig() config.Intake {
	return config.Intake{IntakeTokens: config.TeamMap{"webform": testToken}, IntakeHMACSecrets: config.TeamMap{"shop": testSecret},
		IntakeRoutes: config.SourceRoutes{"webform": {"*"}, "shop": {"*"}}}
}

// harness is an intake configured by cfg over fake items, a ledger and a
// clock the test holds.
type harness struct {
	items  *fakeItems
	ledger ledger
	clock  *fakeClock
	h      http.Handler
}

// newHarness builds the intake as serve does, from cfg; st (nil: routes
// that read records must not be called) holds the records, led the ledger
// (nil: a new one in memory).
func newHarness(t testing.TB, cfg config.Intake, st *store.Store, led ledger, logs io.Writer) *harness {
	t.Helper()
	integrations, err := workflows.Integrations()
	require.NoError(t, err)
	require.NoError(t, cfg.CheckIntakeAuth())
	sc, err := newScopes(cfg, integrations)
	require.NoError(t, err)
	if led == nil {
		led = newMemLedger()
	}
	f := &fakeItems{states: map[string]api.ItemState{}, startedBy: map[string]string{}}
	clock := &fakeClock{t: testNow}
	in := &intake{items: f, records: st, integrations: integrations, auth: newAuthenticator(cfg.IntakeTokens, cfg.IntakeHMACSecrets),
		scopes: sc, limits: newLimiter(cfg.RateLimitOf), ledger: led, now: clock.now, logger: slog.New(slog.NewTextHandler(logs, nil))}
	return &harness{items: f, ledger: led, clock: clock, h: in.routes()}
}

// newIntakeOn is an intake that starts fake items and reads records from st
// (nil: routes that read records must not be called).
func newIntakeOn(t testing.TB, st *store.Store, logs io.Writer) (*fakeItems, http.Handler) {
	h := newHarness(t, testConfig(), st, nil, logs)
	return h.items, h.h
}

func newIntakeLogging(t testing.TB, logs io.Writer) (*fakeItems, http.Handler) {
	return newIntakeOn(t, nil, logs)
}

func newIntake(t testing.TB) (*fakeItems, http.Handler) { return newIntakeLogging(t, io.Discard) }

func do(h http.Handler, method, path, contentType, body string, header map[string]string) (*httptest.ResponseRecorder, map[string]any) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out := map[string]any{}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec, out
}

const goodLead = `{"id":"lead-1","email":"ada@example.com","firstName":"Ada","lastName":"Lovelace","consent":true}`

func TestPostLeadStartsAnItem(t *testing.T) {
	t.Parallel()
	f, h := newIntake(t)
	rec, body := do(h, "POST", "/v1/leads", "application/json; charset=utf-8", goodLead, nil)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Equal(t, "lead-to-crm:lead-1", body["workflowId"])
	require.Equal(t, "run-1", body["runId"])
	require.Equal(t, "/v1/items/lead-to-crm:lead-1", rec.Header().Get("Location"))
	require.Len(t, f.starts, 1)
	in := f.starts[0].input.(workflows.LeadInput)
	require.Equal(t, "intake:webform", in.StartedBy, "the audit trail names the source")
	require.Equal(t, "ada@example.com", in.Lead.Email)
}

func TestIdempotencyKeyHeaderNamesTheItem(t *testing.T) {
	t.Parallel()
	f, h := newIntake(t)
	rec, body := do(h, "POST", "/v1/leads", "application/json", goodLead, map[string]string{"Idempotency-Key": "form-42"})
	require.Equal(t, http.StatusAccepted, rec.Code)
	require.Equal(t, "lead-to-crm:form-42", body["workflowId"])
	require.Equal(t, "form-42", f.starts[0].key)
}

func TestANewerSubmissionForARunningItemIsRefusedNotDropped(t *testing.T) {
	t.Parallel()
	f, h := newIntake(t)
	f.running = "lead-to-crm:lead-1"
	rec, body := do(h, "POST", "/v1/leads", "application/json", goodLead, nil)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	require.Contains(t, body["error"], "lead-to-crm:lead-1 is running with another submission; this one was not taken")
	require.Equal(t, "/v1/items/lead-to-crm:lead-1", rec.Header().Get("Location"))
	require.Empty(t, f.starts)
}

func TestBadLeadsAreRefusedWithEveryProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, contentType, body string
		header                  map[string]string
		status                  int
		err                     string
		fields                  []string
	}{
		{"wrong content type", "text/plain", goodLead, nil, 415, "send Content-Type: application/json", nil},
		{"empty", "application/json", "", nil, 400, "the body is empty", nil},
		{"malformed", "application/json", `{"email":`, nil, 400, "the JSON ends too early", nil},
		{"syntax", "application/json", `{"email" "x"}`, nil, 400, "malformed JSON at byte", nil},
		{"array", "application/json", `[1,2]`, nil, 400, "expected a JSON object, not a JSON array", nil},
		{"wrong type", "application/json", `{"consent":"yes"}`, nil, 400, "field consent must be a bool, not a JSON string", nil},
		{"unknown field", "application/json", `{"id":"a","shoeSize":9}`, nil, 400, `unknown field "shoeSize"`, nil},
		{"two values", "application/json", goodLead + goodLead, nil, 400, "more than one JSON value", nil},
		{"not utf-8", "application/json", "{\"id\":\"a\xff\"}", nil, 400, "not valid UTF-8", nil},
		{"invalid fields", "application/json", `{"id":"a","email":"nope","lastName":"` + strings.Repeat("x", 101) + `","phone":"call me"}`, nil, 400, "the lead is invalid",
			[]string{"email", "firstName", "lastName", "phone"}},
		{"no key", "application/json", `{"email":"a@b.co","firstName":"A","lastName":"B"}`, nil, 400, "needs a key", []string{"id"}},
		{"bad header key", "application/json", goodLead, map[string]string{"Idempotency-Key": "a b/c"}, 400, "key is invalid", []string{"Idempotency-Key"}},
		{"too large", "application/json", `{"id":"` + strings.Repeat("a", maxBody) + `"}`, nil, 413, "exceeds", nil},
		{"deeply nested", "application/json", `{"id":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000) + `}`, nil, 400, "field id must be a string, not a JSON object", nil},
		{"truncated UTF-8", "application/json", "{\"id\":\"a\xe2\x82\"}", nil, 400, "not valid UTF-8", nil},
		{"null body", "application/json", `null`, nil, 400, "the lead is invalid", []string{"email", "firstName", "lastName"}},
		// encoding/json would keep the last: consent the form never gave.
		{"key twice", "application/json", `{"id":"a","email":"a@b.co","firstName":"A","lastName":"B","consent":false,"consent":true}`, nil, 400,
			`the key "consent" appears twice in the object at $`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, h := newIntake(t)
			rec, body := do(h, "POST", "/v1/leads", tc.contentType, tc.body, tc.header)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			require.Contains(t, body["error"], tc.err)
			var fields []string
			if list, ok := body["fields"].([]any); ok {
				for _, fe := range list {
					fields = append(fields, fe.(map[string]any)["field"].(string))
				}
			}
			require.Equal(t, tc.fields, fields)
			require.Empty(t, f.starts, "nothing is started")
		})
	}
}

func TestTemporalDownAnswers503(t *testing.T) {
	t.Parallel()
	f, h := newIntake(t)
	f.failing = true
	rec, body := do(h, "POST", "/v1/leads", "application/json", goodLead, nil)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "5", rec.Header().Get("Retry-After"))
	require.Contains(t, body["error"], "retry with the same key")
}

func TestGetItem(t *testing.T) {
	t.Parallel()
	f, h := newIntake(t)
	rec, _ := do(h, "POST", "/v1/leads", "application/json", goodLead, map[string]string{"Idempotency-Key": "a"})
	require.Equal(t, http.StatusAccepted, rec.Code)
	f.states["lead-to-crm:a"] = api.ItemState{WorkflowID: "lead-to-crm:a", Status: api.StatusBlocked}
	rec, body := do(h, "GET", "/v1/items/lead-to-crm:a", "", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "Blocked", body["status"])
	rec, _ = do(h, "GET", "/v1/items/lead-to-crm:b", "", "", nil)
	require.Equal(t, http.StatusNotFound, rec.Code)
	rec, _ = do(h, "GET", "/v1/items/nonsense", "", "", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
}

func TestStarterUsage(t *testing.T) {
	var out, errOut strings.Builder
	require.ErrorIs(t, run(context.Background(), nil, strings.NewReader(""), &out, &errOut), errUsage)
	require.Contains(t, out.String(), "starter serve")
	require.ErrorIs(t, run(context.Background(), []string{"fly"}, strings.NewReader(""), &out, &errOut), errUsage)
	require.Contains(t, errOut.String(), `unknown command "fly"`)
	require.ErrorIs(t, run(context.Background(), []string{"lead"}, strings.NewReader(""), &out, &errOut), errUsage)

	err := run(context.Background(), []string{"lead", "--file", "-"}, strings.NewReader(`{"id":"x","email":"bad"}`), &out, &errOut)
	require.ErrorContains(t, err, "the lead is invalid\n  email: must be an address")
}

func TestSyncInvoice(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id     string
		status int
		err    string
	}{
		{"INV-1", http.StatusAccepted, ""},
		{"INV-2", http.StatusAccepted, ""},
		{"INV-3", http.StatusConflict, "invoice INV-3 is draft; only ready invoices are billed"},
		{"INV-404", http.StatusNotFound, "no invoice INV-404"},
		{"INV-DB-DOWN", http.StatusServiceUnavailable, "PostgreSQL is unavailable"},
		{"bad%20id", http.StatusBadRequest, "the item key is invalid"},
	}
	ctx := context.Background()
	st := store.New(storetest.NewPool(t))
	for id, status := range map[string]string{"INV-1": store.InvoiceReady, "INV-2": store.InvoiceBilled, "INV-3": store.InvoiceDraft} {
		require.NoError(t, st.InsertInvoice(ctx, store.Invoice{ID: id, CustomerID: "C-1", CustomerName: "Acme", CustomerEmail: "ap@acme.test",
			Currency: "eur", DueDate: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), Status: status,
			Lines: []store.InvoiceLine{{LineNo: 1, Description: "Licence", Quantity: 1, UnitAmount: 100}}}))
	}
	closed, err := store.Open(ctx, storetest.NewDatabaseURL(t))
	require.NoError(t, err)
	closed.Close()
	for _, tc := range cases {
		on := st
		if tc.id == "INV-DB-DOWN" {
			on = store.New(closed)
		}
		f, h := newIntakeOn(t, on, io.Discard)
		rec, body := do(h, "POST", "/v1/invoices/"+tc.id+"/sync", "", "", nil)
		require.Equal(t, tc.status, rec.Code, tc.id)
		if tc.err != "" {
			require.Contains(t, body["error"], tc.err)
			require.Empty(t, f.starts)
			continue
		}
		require.Equal(t, "invoice-to-billing:"+tc.id, body["workflowId"])
		require.Equal(t, workflows.InvoiceInput{ItemInput: api.ItemInput{StartedBy: "intake:webform"}}, f.starts[0].input)
	}
}

// sign is the Signalbox-Signature of a request as a sender computes it,
// at time at.
func sign(secret string, at time.Time, method, target, idempotencyKey, body string) string {
	t := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(t + "\n" + method + "\n" + target + "\n" + idempotencyKey + "\n" + body))
	return "t=" + t + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// signLead signs a POST of body to /v1/leads, without Idempotency-Key, now.
func signLead(secret, body string) string {
	return sign(secret, testNow, "POST", "/v1/leads", "", body)
}

func TestRequestsMustProveTheirSource(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	f, h := newIntakeLogging(t, &logs)
	send := func(header map[string]string, body string) int {
		req := httptest.NewRequest("POST", "/v1/leads", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.NotContains(t, rec.Body.String(), testToken)
		return rec.Code
	}
	require.Equal(t, http.StatusUnauthorized, send(nil, goodLead))
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{"Authorization": "Bearer wrong-token-0123456789"}, goodLead))
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{"Authorization": "Bearer " + testToken[:10]}, goodLead), "a prefix is not the token")
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{"Authorization": testToken}, goodLead), "the Bearer scheme is required")
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{signatureHeader: signLead("other-secret-0123456789", goodLead)}, goodLead))
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{signatureHeader: signLead(testSecret, goodLead+" ")}, goodLead), "the signature covers the exact body")
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{signatureHeader: "t=1,v1=zz"}, goodLead))
	require.Empty(t, f.starts, "nothing starts without a proven source")

	require.Equal(t, http.StatusAccepted, send(map[string]string{signatureHeader: signLead(testSecret, goodLead)}, goodLead))
	require.Equal(t, "intake:shop", f.starts[0].input.(workflows.LeadInput).StartedBy)
	// The scheme's name is case-insensitive (RFC 9110); the token is not.
	for _, scheme := range []string{"Bearer ", "bearer ", "BEARER ", "bEaReR   "} {
		require.Equal(t, http.StatusAccepted, send(map[string]string{"Authorization": scheme + testToken, "Idempotency-Key": "web-1"}, goodLead), "%q", scheme)
	}
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{"Authorization": "bearer " + strings.ToUpper(testToken)}, goodLead))
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{"Authorization": "Basic " + testToken}, goodLead), "another scheme")
	require.Equal(t, http.StatusUnauthorized, send(map[string]string{"Authorization": "Bearer" + testToken}, goodLead), "no space after the scheme")
	require.Equal(t, 5, len(f.starts))
	require.Equal(t, "intake:webform", f.starts[4].input.(workflows.LeadInput).StartedBy)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code, "health needs no credentials")

	require.NotContains(t, logs.String(), testToken)
	require.NotContains(t, logs.String(), testSecret)
	require.NotContains(t, logs.String(), "ada@example.com", "no personal data in the logs")
	require.Contains(t, logs.String(), "source=shop")
}

func TestUnauthenticatedBodiesAreStillBounded(t *testing.T) {
	t.Parallel()
	_, h := newIntake(t)
	req := httptest.NewRequest("POST", "/v1/leads", strings.NewReader(strings.Repeat("a", maxBody+1)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
}
