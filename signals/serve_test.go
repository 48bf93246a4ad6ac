package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
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
)

const (
	aliceToken = "alice-token-0123456789"
	carolToken = "carol-token-0123456789"
	salesItem  = "lead-to-crm:lead-1"
	// financeItem waits on an exception that only finance decides.
	financeItem = "invoice-to-billing:inv-1"
)

// fakeBackend stands in for Temporal and PostgreSQL: it holds items and
// records every decision sent.
type fakeBackend struct {
	mu      sync.Mutex
	items   map[string]api.ItemState
	visible []api.VisibleItem
	trail   map[string][]store.AuditEvent
	sent    []sentDecision
	queries []string
	// refusal, when set, is the item's answer to every decision.
	refusal string
	counts  map[string]int64
	// waiting are the waiting items, as waiting_items holds them; filters
	// records each filter the inbox asked with.
	waiting []store.WaitingItem
	filters []store.WaitingFilter
	// reconciles are the last reconcile runs by integration.
	reconciles map[string]store.ReconcileReport
	// gate, when set, holds each decision until it receives.
	gate chan struct{}
	// panicOn is an item whose reading panics, as a bug would.
	panicOn string
}

type sentDecision struct {
	id string
	d  api.Decision
}

func (f *fakeBackend) ListItems(_ context.Context, query string, limit int) ([]api.VisibleItem, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, query)
	var items []api.VisibleItem
	for _, it := range f.visible {
		if !strings.HasPrefix(query, "RunId IN (") || strings.Contains(query, "'"+it.RunID+"'") {
			items = append(items, it)
		}
	}
	if len(items) > limit {
		return items[:limit], true, nil
	}
	return items, false, nil
}

// WaitingItems does what store.WaitingItems does in SQL (tested in store).
func (f *fakeBackend) WaitingItems(_ context.Context, wf store.WaitingFilter) ([]store.WaitingItem, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, wf)
	var match []store.WaitingItem
	for _, it := range f.waiting {
		if slices.Contains(wf.Teams, it.Deciders) && (wf.Integration == "" || wf.Integration == it.Integration) &&
			(wf.Kind == "" || wf.Kind == it.Kind) && (wf.Before.IsZero() || it.Since.Before(wf.Before)) {
			match = append(match, it)
		}
	}
	slices.SortFunc(match, func(a, b store.WaitingItem) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.WorkflowID, b.WorkflowID))
	})
	from := min(wf.Offset, len(match))
	return match[from:min(from+wf.Limit, len(match))], len(match), nil
}

func (f *fakeBackend) WaitingByIntegration(_ context.Context, now time.Time) (map[string]store.WaitingSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]store.WaitingSummary{}
	for _, it := range f.waiting {
		w := out[it.Integration]
		w.Integration, w.Waiting = it.Integration, w.Waiting+1
		if w.Oldest.WorkflowID == "" || it.Since.Before(w.Oldest.Since) {
			w.Oldest = it
		}
		if it.SLA > 0 && now.Sub(it.Since) > it.SLA {
			w.Overdue++
		}
		out[it.Integration] = w
	}
	return out, nil
}

func (f *fakeBackend) LatestReconcile(_ context.Context, integration string) (store.ReconcileReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rep, ok := f.reconciles[integration]; ok {
		return rep, nil
	}
	return store.ReconcileReport{}, store.ErrNotFound
}

func (f *fakeBackend) CountItems(_ context.Context, query string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, query)
	return f.counts[query], nil
}

func (f *fakeBackend) ReadItem(_ context.Context, id string) (api.ItemState, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == f.panicOn {
		panic("a bug in reading " + id)
	}
	s, ok := f.items[id]
	if !ok {
		return s, false, api.ErrNoItem
	}
	return s, true, nil
}

func (f *fakeBackend) DescribeRun(context.Context, string) runInfo {
	return runInfo{execution: executionRunning}
}

func (f *fakeBackend) AuditTrail(_ context.Context, id string) ([]store.AuditEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.trail[id], nil
}

func (f *fakeBackend) Decide(_ context.Context, id string, d api.Decision) (api.DecisionOutcome, error) {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sentDecision{id, d})
	if f.refusal != "" {
		return api.DecisionOutcome{}, &refusedError{reason: f.refusal}
	}
	return api.DecisionOutcome{Status: api.StatusRunning, Message: fmt.Sprintf("%s applied; %s is Running", d.Action, id)}, nil
}

func (f *fakeBackend) decisions() []sentDecision {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentDecision(nil), f.sent...)
}

var since = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func waitingState(id, owner string, kind api.ExceptionKind, deciders string, decisions ...api.Action) api.ItemState {
	integration, key, _ := api.SplitItemID(id)
	return api.ItemState{Integration: integration, WorkflowID: id, SourceKey: key, Owner: owner, Status: api.StatusBlocked, StartedAt: since,
		Exception: &api.ExceptionState{Kind: kind, Summary: "the lead did not consent", Decisions: decisions, Deciders: deciders,
			Since: since, SLA: 24 * time.Hour, Details: map[string]string{"form": "webinar"}}}
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testConsole struct {
	h       http.Handler
	backend *fakeBackend
	clock   *clock
}

// newTestConsole is a console with alice (sales) and carol (finance), who
// sign in with tokens, over a fake backend holding a sales item and a
// finance item.
func newTestConsole(t *testing.T, configure func(*config.Console)) *testConsole {
	t.Helper()
	return newTestConsoleWith(t, configure, nil)
}

// newTestConsoleWith is newTestConsole with its options changed by adjust.
func newTestConsoleWith(t *testing.T, configure func(*config.Console), adjust func(*consoleOptions)) *testConsole {
	t.Helper()
	var tokens config.ConsoleTokens
	require.NoError(t, tokens.Decode("alice="+aliceToken+";carol="+carolToken))
	var operators config.Operators
	require.NoError(t, operators.Decode("sales=alice,bob;finance=carol"))
	cfg := config.Console{ConsoleTokens: tokens, ConsoleSessionTTL: time.Hour, UIBaseURL: "http://localhost:8233"}
	if configure != nil {
		configure(&cfg)
	}
	b := &fakeBackend{
		items: map[string]api.ItemState{
			salesItem:   waitingState(salesItem, "sales", api.ConsentMissing, "sales", api.ActionApprove, api.ActionReject),
			financeItem: waitingState(financeItem, "finance", api.ApprovalRequired, "finance", api.ActionApprove, api.ActionReject),
		},
		trail:  map[string][]store.AuditEvent{},
		counts: map[string]int64{},
	}
	clk := &clock{t: since.Add(30 * time.Hour)}
	opts := consoleOptions{Backend: b, Console: cfg, Operators: operators, Namespace: "default", Now: clk.now}
	if adjust != nil {
		adjust(&opts)
	}
	c, err := newConsole(opts)
	require.NoError(t, err)
	return &testConsole{h: c.Handler(), backend: b, clock: clk}
}

// request is one request to the console from 127.0.0.1 (or from, with a
// port), with the cookie if any.
type request struct {
	method, path string
	form         url.Values
	cookie       *http.Cookie
	from         string
	header       map[string]string
	tls          bool
}

func (tc *testConsole) do(t *testing.T, rq request) *httptest.ResponseRecorder {
	t.Helper()
	var body *strings.Reader
	if rq.form != nil {
		body = strings.NewReader(rq.form.Encode())
	} else {
		body = strings.NewReader("")
	}
	method := rq.method
	if method == "" {
		method = http.MethodGet
	}
	req := httptest.NewRequest(method, rq.path, body)
	if rq.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.RemoteAddr = "127.0.0.1:40000"
	if rq.from != "" {
		req.RemoteAddr = rq.from
	}
	if rq.cookie != nil {
		req.AddCookie(rq.cookie)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	if rq.tls {
		req.TLS = &tls.ConnectionState{}
	}
	rec := httptest.NewRecorder()
	tc.h.ServeHTTP(rec, req)
	return rec
}

// signIn signs in with token and returns the session cookie.
func (tc *testConsole) signIn(t *testing.T, token string) *http.Cookie {
	t.Helper()
	rec := tc.do(t, request{method: http.MethodPost, path: "/signin", form: url.Values{"token": {token}}})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	cookies := rec.Result().Cookies()
	require.Len(t, cookies, 1)
	return cookies[0]
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf is the CSRF token of the page the cookie's session sees.
func (tc *testConsole) csrfOf(t *testing.T, cookie *http.Cookie) string {
	t.Helper()
	rec := tc.do(t, request{path: "/", cookie: cookie})
	require.Equal(t, http.StatusOK, rec.Code)
	m := csrfPattern.FindStringSubmatch(rec.Body.String())
	require.NotNil(t, m, "the page carries a CSRF token")
	return m[1]
}

func approveForm(csrf, reason string) url.Values {
	return url.Values{"csrf": {csrf}, "action": {"approve"}, "reason": {reason},
		"exception": {api.ExceptionRef(&api.ExceptionState{Kind: api.ConsentMissing, Since: since})}}
}

func TestConsoleWithoutIdentityShowsSignIn(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	for _, path := range []string{"/", "/items/" + salesItem, "/integrations"} {
		rec := tc.do(t, request{path: path})
		require.Equal(t, http.StatusUnauthorized, rec.Code, path)
		require.Contains(t, rec.Body.String(), `action="/signin"`, path)
		require.Contains(t, rec.Body.String(), `name="next" value="`+path+`"`, "signing in leads back to %s", path)
		require.NotContains(t, rec.Body.String(), "the lead did not consent", "nothing of the item is shown")
	}
	rec := tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", form: approveForm("x", "ok")})
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	rec = tc.do(t, request{method: http.MethodPost, path: "/decide", form: url.Values{"id": {salesItem}, "action": {"approve"}, "reason": {"ok"}}})
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Empty(t, tc.backend.decisions(), "nothing was sent")

	rec = tc.do(t, request{path: "/items/" + salesItem, cookie: &http.Cookie{Name: sessionCookie, Value: "made-up"}})
	require.Equal(t, http.StatusUnauthorized, rec.Code, "a cookie the console did not give is no session")
}

func TestConsoleTokenSignInGivesASessionCookie(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	rec := tc.do(t, request{method: http.MethodPost, path: "/signin", form: url.Values{"token": {"alice-token-wrong-0000"}}})
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Empty(t, rec.Result().Cookies())
	require.Contains(t, rec.Body.String(), "not one of the console")

	rec = tc.do(t, request{method: http.MethodPost, path: "/signin", form: url.Values{"token": {aliceToken}, "next": {"/items/" + salesItem}}})
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.Equal(t, "/items/"+salesItem, rec.Header().Get("Location"))
	cookie := rec.Result().Cookies()[0]
	require.Equal(t, sessionCookie, cookie.Name)
	require.Regexp(t, `^[A-Za-z0-9_-]{43}$`, cookie.Value, "32 random bytes, base64url")
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	require.False(t, cookie.Secure, "plain HTTP on loopback")
	require.Equal(t, "/", cookie.Path)
	header := rec.Header().Get("Set-Cookie")
	require.Contains(t, header, "HttpOnly")
	require.Contains(t, header, "SameSite=Strict")

	page := tc.do(t, request{path: "/", cookie: cookie})
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body.String(), "Signed in as <strong>alice</strong> · teams sales")

	rec = tc.do(t, request{method: http.MethodPost, path: "/signin", form: url.Values{"token": {carolToken}}, tls: true})
	require.True(t, rec.Result().Cookies()[0].Secure, "over TLS the cookie is Secure")
	rec = tc.do(t, request{method: http.MethodPost, path: "/signin", form: url.Values{"token": {carolToken}, "next": {"//evil.example/x"}}})
	require.Equal(t, "/", rec.Header().Get("Location"), "a sign-in never sends anyone to another site")

	secure := newTestConsole(t, func(c *config.Console) { c.ConsoleSecureCookies = true })
	require.True(t, secure.signIn(t, aliceToken).Secure, "SIGNALBOX_CONSOLE_SECURE_COOKIES")

	tc.clock.add(time.Hour)
	require.Equal(t, http.StatusUnauthorized, tc.do(t, request{path: "/", cookie: cookie}).Code, "the session expired")
}

func TestConsoleSignOutEndsTheSession(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	cookie := tc.signIn(t, aliceToken)
	rec := tc.do(t, request{method: http.MethodPost, path: "/signout", cookie: cookie, form: url.Values{"csrf": {tc.csrfOf(t, cookie)}}})
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.Equal(t, http.StatusUnauthorized, tc.do(t, request{path: "/", cookie: cookie}).Code)
}

func TestConsoleTrustsProxyHeadersFromTrustedPeersOnly(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, func(c *config.Console) {
		require.NoError(t, c.ConsoleTrustedProxies.Decode("10.0.0.0/24, 192.0.2.7"))
	})
	email := map[string]string{"X-Forwarded-Email": "alice@corp.example"}
	for _, peer := range []string{"127.0.0.1:40000", "10.0.1.5:40000", "192.0.2.8:40000", "[::1]:40000"} {
		rec := tc.do(t, request{path: "/", from: peer, header: email})
		require.Equal(t, http.StatusUnauthorized, rec.Code, "headers from %s are ignored", peer)
		require.Empty(t, rec.Result().Cookies(), peer)
	}
	for _, peer := range []string{"10.0.0.9:40000", "192.0.2.7:40000", "[::ffff:10.0.0.9]:40000"} {
		rec := tc.do(t, request{path: "/", from: peer, header: email})
		require.Equal(t, http.StatusOK, rec.Code, peer)
		require.Contains(t, rec.Body.String(), "Signed in as <strong>alice</strong> · teams sales", peer)
		require.NotContains(t, rec.Body.String(), `action="/signout"`, "the proxy signs out, not the console")
	}

	rec := tc.do(t, request{path: "/", from: "10.0.0.9:1", header: map[string]string{"X-Forwarded-User": "carol"}})
	require.Contains(t, rec.Body.String(), "Signed in as <strong>carol</strong> · teams finance", "the user header, without an email")
	rec = tc.do(t, request{path: "/", from: "10.0.0.9:1", header: map[string]string{"X-Forwarded-Email": "john doe@corp.example"}})
	require.Equal(t, http.StatusForbidden, rec.Code, "a name that cannot be an operator's")

	// The proxied user's forms carry the CSRF token of their session.
	rec = tc.do(t, request{path: "/items/" + salesItem, from: "10.0.0.9:1", header: email})
	cookie := rec.Result().Cookies()[0]
	require.True(t, cookie.HttpOnly)
	csrf := csrfPattern.FindStringSubmatch(rec.Body.String())[1]
	behindProxy := map[string]string{"X-Forwarded-Email": "alice@corp.example", "Origin": "https://console.corp.example", "X-Forwarded-Host": "console.corp.example"}
	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", from: "10.0.0.9:1", header: behindProxy, cookie: cookie,
		form: approveForm(csrf, "consent on file")})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Equal(t, []sentDecision{{salesItem, api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "consent on file"}}}, tc.backend.decisions())

	rec = tc.do(t, request{path: "/", from: "10.0.0.9:1", header: map[string]string{"X-Forwarded-Email": "alice@corp.example", "X-Forwarded-Proto": "https"}})
	require.True(t, rec.Result().Cookies()[0].Secure, "TLS ends at the trusted proxy")
}

func TestConsoleRefusesFormsWithoutTheirCSRFToken(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	cookie := tc.signIn(t, aliceToken)
	csrf := tc.csrfOf(t, cookie)
	other := newTestConsole(t, nil)
	otherCSRF := other.csrfOf(t, other.signIn(t, aliceToken))
	for name, form := range map[string]url.Values{
		"missing":               {"action": {"approve"}, "reason": {"ok"}},
		"wrong":                 approveForm("not-the-token", "ok"),
		"another session's":     approveForm(otherCSRF, "ok"),
		"the cookie's value":    approveForm(cookie.Value, "ok"),
		"right but with spaces": approveForm(" "+csrf, "ok"),
	} {
		rec := tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: form})
		require.Equal(t, http.StatusForbidden, rec.Code, name)
		require.Contains(t, rec.Body.String(), "Nothing was changed", name)
		bulk := url.Values{"csrf": form["csrf"], "id": {salesItem}, "action": {"approve"}, "reason": {"ok"}}
		require.Equal(t, http.StatusForbidden, tc.do(t, request{method: http.MethodPost, path: "/decide", cookie: cookie, form: bulk}).Code, name)
	}
	rec := tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: approveForm(csrf, "ok"),
		header: map[string]string{"Origin": "https://evil.example"}})
	require.Equal(t, http.StatusForbidden, rec.Code, "another site's form, even with the token")
	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: approveForm(csrf, "ok"),
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Empty(t, tc.backend.decisions(), "nothing was sent")

	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: approveForm(csrf, "ok"),
		header: map[string]string{"Origin": "http://example.com"}})
	require.Equal(t, http.StatusSeeOther, rec.Code, "the console's own origin (httptest's host)")
	require.Len(t, tc.backend.decisions(), 1)
}

func TestConsoleDecidesAsTheSignedInOperator(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	cookie := tc.signIn(t, aliceToken)
	form := approveForm(tc.csrfOf(t, cookie), "consent given on the phone, call #42")
	form.Set("actor", "mallory")
	rec := tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: form})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Equal(t, "/items/"+salesItem, rec.Header().Get("Location"))
	require.Equal(t, []sentDecision{{salesItem, api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "consent given on the phone, call #42"}}},
		tc.backend.decisions(), "the actor is who signed in, never a form field")

	page := tc.do(t, request{path: "/items/" + salesItem, cookie: cookie})
	require.Contains(t, page.Body.String(), "approve applied; "+salesItem+" is Running", "the outcome, once")
	page = tc.do(t, request{path: "/items/" + salesItem, cookie: cookie})
	require.NotContains(t, page.Body.String(), "approve applied")
}

func TestConsoleShowsARefusalAndKeepsWhatWasTyped(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	cookie := tc.signIn(t, aliceToken)
	csrf := tc.csrfOf(t, cookie)
	tc.backend.refusal = `"alice" may not decide: only operators of team sales may decide ConsentMissing (set in SIGNALBOX_OPERATORS)`
	rec := tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: approveForm(csrf, "typed with care")})
	require.Equal(t, http.StatusConflict, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, "Refused, nothing changed: &#34;alice&#34; may not decide: only operators of team sales")
	require.Contains(t, body, ">typed with care</textarea>")

	tc.backend.refusal = ""
	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: approveForm(csrf, "   ")})
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	require.Contains(t, rec.Body.String(), "reason is required")

	stale := approveForm(csrf, "ok")
	stale.Set("exception", api.ExceptionRef(&api.ExceptionState{Kind: api.ConsentMissing, Since: since.Add(-time.Hour)}))
	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: stale})
	require.Equal(t, http.StatusConflict, rec.Code)
	require.Contains(t, rec.Body.String(), "changed since the page was drawn")
	require.Len(t, tc.backend.decisions(), 1, "only the decision the item refused was sent")
}

func TestConsoleRefusesAnotherTeamsItem(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	tc := newTestConsoleWith(t, nil, func(o *consoleOptions) { o.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	carol := tc.signIn(t, carolToken)
	csrf := tc.csrfOf(t, carol)
	rec := tc.do(t, request{path: "/items/" + salesItem, cookie: carol})
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Contains(t, rec.Body.String(), "decided by team sales, and you are an operator of finance")
	require.NotContains(t, rec.Body.String(), "the lead did not consent")

	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: carol, form: approveForm(csrf, "forged")})
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Empty(t, tc.backend.decisions(), "a forged POST sends nothing")
	tc.do(t, request{method: http.MethodPost, path: "/decide", cookie: carol, form: url.Values{"csrf": {csrf}, "action": {"approve"}, "reason": {"forged"}, "id": {salesItem}}})
	require.Empty(t, tc.backend.decisions(), "nor a forged bulk decision")
	refusals := regexp.MustCompile(`msg="console: refused" operator=carol method=(GET|POST) what=/items/lead-to-crm:lead-1(/decide)? `).FindAllString(log.String(), -1)
	require.Len(t, refusals, 3, "each refusal is logged, with who asked for what:\n%s", log.String())

	// A team the spec names decides whatever the item's owner or team.
	tc.backend.items[financeItem] = api.ItemState{Integration: "invoice-to-billing", WorkflowID: financeItem, Owner: "sales", Team: "sales",
		Status: api.StatusBlocked, Exception: &api.ExceptionState{Kind: api.ApprovalRequired}}
	alice := tc.signIn(t, aliceToken)
	require.Equal(t, http.StatusForbidden, tc.do(t, request{path: "/items/" + financeItem, cookie: alice}).Code)
	require.Equal(t, http.StatusOK, tc.do(t, request{path: "/items/" + financeItem, cookie: carol}).Code)

	require.Equal(t, http.StatusNotFound, tc.do(t, request{path: "/items/lead-to-crm:nope", cookie: carol}).Code)
	require.Equal(t, http.StatusBadRequest, tc.do(t, request{path: "/items/not-an-id", cookie: carol}).Code)
}

func TestConsoleEscapesWhatItShows(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	s := tc.backend.items[salesItem]
	s.Exception.Summary = `<script>alert("summary")</script>`
	s.Exception.Details = map[string]string{"<b>field</b>": `"><script>alert("detail")</script>`}
	s.Decisions = []api.DecisionRecord{{Decision: api.Decision{Action: api.ActionApprove, Actor: "bob", Reason: "<script>alert('decision')</script>"}, Refusal: "<img src=x onerror=alert(1)>"}}
	tc.backend.items[salesItem] = s
	tc.backend.trail[salesItem] = []store.AuditEvent{{WorkflowID: salesItem, Actor: "<i>bob</i>", Action: "decision_refused", Reason: "</textarea><script>alert('trail')</script>"}}
	cookie := tc.signIn(t, aliceToken)
	body := tc.do(t, request{path: "/items/" + salesItem, cookie: cookie}).Body.String()
	require.NotContains(t, body, "<script")
	require.NotContains(t, body, "<img")
	require.NotContains(t, body, "<b>field")
	require.NotContains(t, body, "<i>bob")
	require.Contains(t, body, "&lt;script&gt;alert(&#34;summary&#34;)&lt;/script&gt;")
	require.Contains(t, body, "&lt;/textarea&gt;&lt;script&gt;alert(&#39;trail&#39;)&lt;/script&gt;")

	tc.backend.refusal = "<script>alert('refusal')</script>"
	csrf := csrfPattern.FindStringSubmatch(body)[1]
	form := approveForm(csrf, "</textarea><script>alert('reason')</script>")
	body = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: cookie, form: form}).Body.String()
	require.NotContains(t, body, "<script")
	require.Contains(t, body, "&lt;script&gt;alert(&#39;refusal&#39;)")
}

func TestConsoleSetsSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	cookie := tc.signIn(t, aliceToken)
	for _, rq := range []request{
		{path: "/"}, {path: "/signin"}, {path: "/healthz"}, {path: "/static/console.css"}, {path: "/no-such-page"},
		{path: "/", cookie: cookie}, {path: "/items/" + salesItem, cookie: cookie}, {path: "/items/" + financeItem, cookie: cookie},
		{path: "/integrations", cookie: cookie}, {method: http.MethodPost, path: "/decide", cookie: cookie, form: url.Values{}},
		{method: http.MethodPost, path: "/signin", form: url.Values{"token": {aliceToken}}},
	} {
		rec := tc.do(t, rq)
		h := rec.Header()
		where := rq.method + " " + rq.path
		require.Equal(t, "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'", h.Get("Content-Security-Policy"), where)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), where)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), where)
		require.Equal(t, "same-origin", h.Get("Referrer-Policy"), where)
		require.NotContains(t, rec.Body.String(), "<script", where)
		require.NotContains(t, rec.Body.String(), "style=", "no inline styles: the CSP forbids them (%s)", where)
	}
	css := tc.do(t, request{path: "/static/console.css"})
	require.Equal(t, http.StatusOK, css.Code)
	require.Contains(t, css.Header().Get("Content-Type"), "text/css")
}

// waitingItems are n items waiting for the sales team since since+i
// minutes, each run visible in Temporal.
func waitingItems(n int) ([]store.WaitingItem, []api.VisibleItem) {
	var waiting []store.WaitingItem
	var visible []api.VisibleItem
	for i := n - 1; i >= 0; i-- {
		id, run := fmt.Sprintf("lead-to-crm:lead-%03d", i), fmt.Sprintf("run-%03d", i)
		waiting = append(waiting, store.WaitingItem{WorkflowID: id, RunID: run, Integration: "lead-to-crm", Kind: "ConsentMissing",
			Status: "Blocked", Deciders: "sales", Since: since.Add(time.Duration(i) * time.Minute), SLA: 24 * time.Hour,
			Summary: "lead " + strconv.Itoa(i) + " did not consent"})
		visible = append(visible, api.VisibleItem{WorkflowID: id, RunID: run, Integration: "lead-to-crm", Owner: "sales",
			Status: api.StatusBlocked, Exception: api.ConsentMissing, StartTime: since, Execution: executionRunning})
	}
	return waiting, visible
}

func TestConsoleInboxListsTheOldestFirstAPageAtATime(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	tc.backend.waiting, tc.backend.visible = waitingItems(120)
	tc.backend.visible[0].Execution = "Terminated" // the newest: stranded
	tc.backend.waiting = append(tc.backend.waiting, store.WaitingItem{WorkflowID: financeItem, RunID: "run-f", Integration: "invoice-to-billing",
		Kind: "ApprovalRequired", Status: "Blocked", Deciders: "finance", Since: since.Add(-time.Hour)})
	cookie := tc.signIn(t, aliceToken)
	tc.clock.set(since.Add(24*time.Hour + 30*time.Minute)) // the first 30 items are past their SLA of 24h

	body := tc.do(t, request{path: "/", cookie: cookie}).Body.String()
	require.Contains(t, body, "Items 1–50 of 120")
	rows := regexp.MustCompile(`<a href="/items/(lead-to-crm:lead-\d+)">`).FindAllStringSubmatch(body, -1)
	require.Len(t, rows, 50)
	require.Equal(t, "lead-to-crm:lead-000", rows[0][1], "the oldest first")
	require.Equal(t, "lead-to-crm:lead-049", rows[49][1])
	require.Contains(t, body, "<td>lead 0 did not consent</td>", "the summary")
	require.NotContains(t, body, financeItem, "finance's item is not alice's")
	require.Equal(t, 30, strings.Count(body, `<tr class="overdue">`), "waited past the SLA")
	require.Contains(t, body, `href="/?page=2" rel="next"`)
	require.Equal(t, []string{"sales"}, tc.backend.filters[0].Teams, "only the operator's teams' items")
	require.Equal(t, 50, tc.backend.filters[0].Limit)

	body = tc.do(t, request{path: "/?page=3", cookie: cookie}).Body.String()
	require.Contains(t, body, "Items 101–120 of 120")
	require.Contains(t, body, `rel="prev"`)
	require.NotContains(t, body, `rel="next"`)
	require.Contains(t, body, "Blocked (terminated)", "a stranded item is marked")
	require.Equal(t, 19, strings.Count(body, `type="checkbox"`), "and cannot be ticked")
	last := tc.backend.queries[len(tc.backend.queries)-1]
	require.True(t, strings.HasPrefix(last, "RunId IN ('run-100', "), "one visibility query for the page's runs: %s", last)

	tc.clock.set(since.Add(2 * time.Hour))
	body = tc.do(t, request{path: "/?integration=lead-to-crm&exception=ConsentMissing&team=sales&older=40m&page=2", cookie: cookie}).Body.String()
	require.Contains(t, body, "Items 51–80 of 80", "80 items waited longer than 40 minutes")
	require.Contains(t, body, `href="/?exception=ConsentMissing&amp;integration=lead-to-crm&amp;older=40m&amp;team=sales" rel="prev"`, "the filters stay on paging")
	wf := tc.backend.filters[len(tc.backend.filters)-1]
	require.Equal(t, store.WaitingFilter{Teams: []string{"sales"}, Integration: "lead-to-crm", Kind: "ConsentMissing",
		Before: since.Add(80 * time.Minute), Offset: 50, Limit: 50}, wf)
	body = tc.do(t, request{path: "/?older=90m&page=2", cookie: cookie}).Body.String()
	require.Contains(t, body, `Nothing waits for your teams with these filters on page 2 (<a href="/?older=90m">the first page</a>)`)

	for _, bad := range []string{"/?team=finance", "/?exception=Nope", "/?integration=fax", "/?page=0", "/?older=soon", "/?older=-1h",
		"/?team=sales'%20OR%20'a'='a"} {
		n := len(tc.backend.filters)
		rec := tc.do(t, request{path: bad, cookie: cookie})
		require.Equal(t, http.StatusBadRequest, rec.Code, bad)
		require.Len(t, tc.backend.filters, n, "nothing asked: %s", bad)
	}
}

func TestConsoleDecidingTeamIsTheWorkflows(t *testing.T) {
	t.Parallel()
	require.Equal(t, "sales-ops", itemDeciders(api.ItemState{Integration: "lead-to-crm", Owner: "sales", Exception: &api.ExceptionState{Kind: api.RoutingUnclear}}))
	require.Equal(t, "sales-dach", itemDeciders(api.ItemState{Integration: "lead-to-crm", Owner: "sales", Team: "sales-dach", Exception: &api.ExceptionState{Kind: api.ConsentMissing}}))
	require.Equal(t, "sales", itemDeciders(api.ItemState{Integration: "lead-to-crm", Owner: "sales", Status: api.StatusSynced}))
	require.Equal(t, "olga-team", itemDeciders(api.ItemState{Integration: "lead-to-crm", Owner: "sales", Exception: &api.ExceptionState{Kind: api.RoutingUnclear, Deciders: "olga-team"}}),
		"the status query's word is final")
}

func TestConsoleBulkDecidesEachItemOnItsOwn(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	tc.backend.items["lead-to-crm:lead-2"] = waitingState("lead-to-crm:lead-2", "sales", api.ConsentMissing, "sales", api.ActionApprove)
	cookie := tc.signIn(t, aliceToken)
	csrf := tc.csrfOf(t, cookie)
	form := url.Values{"csrf": {csrf}, "action": {"reject"}, "reason": {"no consent on file"}, "actor": {"mallory"},
		"id": {salesItem, "lead-to-crm:lead-2", financeItem, "lead-to-crm:gone", "not-an-id", salesItem}}
	rec := tc.do(t, request{method: http.MethodPost, path: "/decide", cookie: cookie, form: form})
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, "reject: 2 applied, 3 refused, 0 failed")
	require.Regexp(t, `invoice-to-billing:inv-1</a></td><td>refused</td><td class="text">decided by team finance, not one of yours`, body)
	require.Contains(t, body, "no such item in Temporal")
	require.Contains(t, body, "not an item ID")
	sent := tc.backend.decisions()
	require.Len(t, sent, 2, "only alice's team's items, each once")
	for _, s := range sent {
		require.Equal(t, api.Decision{Action: api.ActionReject, Actor: "alice", Reason: "no consent on file"}, s.d)
		require.Contains(t, []string{salesItem, "lead-to-crm:lead-2"}, s.id)
	}

	tc.backend.refusal = "lead-to-crm:lead-1 is Rejected, not waiting for a decision"
	body = tc.do(t, request{method: http.MethodPost, path: "/decide", cookie: cookie, form: url.Values{"csrf": {csrf}, "action": {"approve"}, "reason": {"ok"}, "id": {salesItem}}}).Body.String()
	require.Contains(t, body, "approve: 0 applied, 1 refused, 0 failed")
	require.Contains(t, body, "is Rejected, not waiting for a decision")

	for name, bad := range map[string]url.Values{
		"no items":       {"csrf": {csrf}, "action": {"approve"}, "reason": {"ok"}},
		"amend in bulk":  {"csrf": {csrf}, "action": {"amend"}, "reason": {"ok"}, "id": {salesItem}},
		"without reason": {"csrf": {csrf}, "action": {"approve"}, "id": {salesItem}},
	} {
		rec := tc.do(t, request{method: http.MethodPost, path: "/decide", cookie: cookie, form: bad})
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, name)
		require.Contains(t, rec.Body.String(), "Nothing was sent", name)
	}
	require.Len(t, tc.backend.decisions(), 3)
}

func TestConsoleItemPageOffersTheAllowedDecisions(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	id := "lead-to-crm:dup-1"
	s := waitingState(id, "sales", api.DuplicateSuspected, "sales", api.ActionApprove, api.ActionReject)
	s.Exception.Choices = []api.Choice{{Name: "merge", Description: "link to the existing contact"}, {Name: "create", Description: "a new contact"}}
	tc.backend.items[id] = s
	id2 := "lead-to-crm:bad-1"
	tc.backend.items[id2] = waitingState(id2, "sales", api.ValidationFailed, "sales", api.ActionAmend, api.ActionResolve, api.ActionCancel)
	tc.backend.trail[id] = []store.AuditEvent{{WorkflowID: id, Actor: "system", Action: "raised", FromStatus: "Running", ToStatus: "Blocked", Reason: "same name"}}
	cookie := tc.signIn(t, aliceToken)

	body := tc.do(t, request{path: "/items/" + id, cookie: cookie}).Body.String()
	require.Contains(t, body, `name="choice" value="merge" required`)
	require.Contains(t, body, `<input type="hidden" name="action" value="reject">`)
	require.Contains(t, body, `<input type="hidden" name="action" value="reassign">`, "sales may hand it to another team")
	require.Contains(t, body, "<option>finance</option>")
	require.Contains(t, body, `href="http://localhost:8233/namespaces/default/workflows/lead-to-crm:dup-1"`)
	require.Contains(t, body, "Running → Blocked")
	require.Contains(t, body, "<dt>form</dt><dd>webinar</dd>")

	body = tc.do(t, request{path: "/items/" + id2, cookie: cookie}).Body.String()
	require.Equal(t, amendRows, strings.Count(body, `name="set-field"`))
	require.Contains(t, body, "<option>email</option>", "the fields the spec lets operators amend")
	require.Contains(t, body, `name="externalRef" required`)

	csrf := csrfPattern.FindStringSubmatch(body)[1]
	ref := api.ExceptionRef(tc.backend.items[id2].Exception)
	form := url.Values{"csrf": {csrf}, "action": {"amend"}, "reason": {"typo"}, "exception": {ref},
		"set-field": {"email", "", "phone"}, "set-value": {"ada@example.com", "", "+49 170 1234567"}}
	rec := tc.do(t, request{method: http.MethodPost, path: "/items/" + id2 + "/decide", cookie: cookie, form: form})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	form = url.Values{"csrf": {csrf}, "action": {"resolve"}, "reason": {"by hand"}, "exception": {ref}, "externalRef": {"CRM 42"}}
	require.Equal(t, http.StatusSeeOther, tc.do(t, request{method: http.MethodPost, path: "/items/" + id2 + "/decide", cookie: cookie, form: form}).Code)
	form = url.Values{"csrf": {csrf}, "action": {"reassign"}, "reason": {"theirs"}, "exception": {ref}, "team": {"finance"}}
	require.Equal(t, http.StatusSeeOther, tc.do(t, request{method: http.MethodPost, path: "/items/" + id2 + "/decide", cookie: cookie, form: form}).Code)
	require.Equal(t, []sentDecision{
		{id2, api.Decision{Action: api.ActionAmend, Actor: "alice", Reason: "typo", Set: map[string]string{"email": "ada@example.com", "phone": "+49 170 1234567"}}},
		{id2, api.Decision{Action: api.ActionResolve, Actor: "alice", Reason: "by hand", ExternalRef: "CRM 42"}},
		{id2, api.Decision{Action: api.ActionReassign, Actor: "alice", Reason: "theirs", Choice: "finance"}},
	}, tc.backend.decisions())

	form = url.Values{"csrf": {csrf}, "action": {"amend"}, "reason": {"typo"}, "exception": {ref}, "set-field": {"email", "email"}, "set-value": {"a", "b"}}
	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + id2 + "/decide", cookie: cookie, form: form})
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	require.Contains(t, rec.Body.String(), "field email is set twice")

	synced := api.ItemState{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:done", Owner: "sales", Status: api.StatusSynced, StartedAt: since}
	tc.backend.items[synced.WorkflowID] = synced
	body = tc.do(t, request{path: "/items/lead-to-crm:done", cookie: cookie}).Body.String()
	require.Contains(t, body, "The item is Synced: it waits for no decision.")
	require.NotContains(t, body, `name="action"`)
}

func TestConsoleIntegrationsPageShowsCardsAndCounts(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	tc.backend.counts["IntegrationName = 'lead-to-crm' AND IntegrationStatus = 'Blocked'"] = 7
	tc.backend.counts["IntegrationName = 'invoice-to-billing' AND IntegrationStatus = 'Synced'"] = 1234
	body := tc.do(t, request{path: "/integrations", cookie: tc.signIn(t, carolToken)}).Body.String()
	for _, s := range api.Specs() {
		require.Contains(t, body, `id="card-`+s.Name+`"`)
		require.Contains(t, body, s.Title)
	}
	require.Contains(t, body, `<a href="/?integration=lead-to-crm">7</a>`, "waiting items link to the inbox")
	require.Contains(t, body, "<td>1234</td>")
	require.Contains(t, body, "RoutingUnclear")
	require.Contains(t, body, "sales-ops")
	require.Equal(t, len(api.Specs()), strings.Count(body, "Nothing waits for a decision."))
	require.NotContains(t, body, "Last reconcile run", "none ran")

	tc.backend.waiting, _ = waitingItems(3)
	finished := since.Add(time.Hour)
	tc.backend.reconciles = map[string]store.ReconcileReport{"lead-to-crm": {
		Run:    store.ReconcileRun{ID: 12, Integration: "lead-to-crm", StartedBy: "schedule", StartedAt: since, FinishedAt: &finished, Compared: 40, Requests: 3},
		Counts: map[string]int64{"in-sync": 37, "drifted": 2, "missing-in-target": 1}}}
	tc.clock.set(since.Add(24*time.Hour + time.Minute + 30*time.Second)) // lead-000 and -001 past their SLA of a day
	body = tc.do(t, request{path: "/integrations", cookie: tc.signIn(t, carolToken)}).Body.String()
	require.Contains(t, body, `3 waiting for a decision, <strong class="tag overdue-tag">2 past their SLA</strong>; the oldest, `+
		`<a href="/items/lead-to-crm:lead-000">lead-to-crm:lead-000</a> (ConsentMissing), has waited 1d0h (overdue).`)
	require.Equal(t, len(api.Specs())-1, strings.Count(body, "Nothing waits for a decision."))
	require.Contains(t, body, "Run 12, started")
	require.Contains(t, body, "40 records compared, 3 requests to the target")
	require.Regexp(t, `<tr><td>in-sync</td><td>37</td>`, body)
	require.Regexp(t, `<tr><td>drifted</td><td>2</td>`, body)
	require.Regexp(t, `<tr><td>missing-in-target</td><td>1</td>`, body)
	require.Equal(t, 1, strings.Count(body, "Last reconcile run"), "only lead-to-crm's ran")
}

func TestConsoleTokensAreKeptAsDigests(t *testing.T) {
	t.Parallel()
	var tokens config.ConsoleTokens
	require.NoError(t, tokens.Decode(" alice = "+aliceToken+" ; bob="+carolToken+";"))
	require.Equal(t, []string{"alice", "bob"}, tokens.Operators())
	name, ok := tokens.Operator(aliceToken)
	require.True(t, ok)
	require.Equal(t, "alice", name)
	_, ok = tokens.Operator(aliceToken + "x")
	require.False(t, ok)
	_, ok = tokens.Operator("")
	require.False(t, ok)
	require.NotContains(t, fmt.Sprint(tokens), aliceToken, "only digests are kept")

	for value, want := range map[string]string{
		"alice=short":          `the token of "alice" must be at least 16 characters`,
		"alice":                "entry 1 must be operator=token",
		"al ice=" + aliceToken: "must be a single word",
		"alice=" + aliceToken + ";alice=" + carolToken: `operator "alice" appears twice`,
		"alice=" + aliceToken + ";bob=" + aliceToken:   "have the same token",
	} {
		err := tokens.Decode(value)
		require.ErrorContains(t, err, want, value)
		require.NotContains(t, err.Error(), aliceToken)
	}
}

func TestConsoleSettingsNameTheVariable(t *testing.T) {
	t.Parallel()
	var proxies config.TrustedProxies
	require.NoError(t, proxies.Decode("10.0.0.0/8, 192.0.2.7,::1"))
	require.Equal(t, "10.0.0.0/8,192.0.2.7/32,::1/128", proxies.String())
	require.ErrorContains(t, proxies.Decode("10.0.0.0/33"), `"10.0.0.0/33" is not an IP or CIDR`)
	require.ErrorContains(t, proxies.Decode("proxy.internal"), `"proxy.internal" is not an IP or CIDR`)

	ok := config.Console{ConsoleAddr: "127.0.0.1:8088", UIBaseURL: "http://localhost:8233", ConsoleSessionTTL: time.Hour, ConsoleTrustedProxies: proxies}
	require.NoError(t, ok.Validate())
	for want, c := range map[string]config.Console{
		"the console needs a way to sign in: set SIGNALBOX_CONSOLE_TOKENS": {ConsoleAddr: ok.ConsoleAddr, UIBaseURL: ok.UIBaseURL, ConsoleSessionTTL: time.Hour},
		`SIGNALBOX_CONSOLE_ADDR="8088" must be host:port`:                  {ConsoleAddr: "8088", UIBaseURL: ok.UIBaseURL, ConsoleSessionTTL: time.Hour, ConsoleTrustedProxies: proxies},
		`SIGNALBOX_UI_BASE_URL="localhost" must be an absolute URL`:        {ConsoleAddr: ok.ConsoleAddr, UIBaseURL: "localhost", ConsoleSessionTTL: time.Hour, ConsoleTrustedProxies: proxies},
		`SIGNALBOX_CONSOLE_SESSION_TTL="1s" must be from 1m to 720h`:       {ConsoleAddr: ok.ConsoleAddr, UIBaseURL: ok.UIBaseURL, ConsoleSessionTTL: time.Second, ConsoleTrustedProxies: proxies},
	} {
		require.ErrorContains(t, c.Validate(), want)
	}
}

func TestServeRefusesToStartWithoutAWayToSignIn(t *testing.T) {
	t.Setenv("SIGNALBOX_CONSOLE_TOKENS", "")
	t.Setenv("SIGNALBOX_CONSOLE_TRUSTED_PROXIES", "")
	var stdout, stderr strings.Builder
	a := &app{stdout: &stdout, stderr: &stderr, now: time.Now}
	err := a.run(context.Background(), []string{"serve"})
	require.ErrorContains(t, err, "the console needs a way to sign in")

	t.Setenv("SIGNALBOX_CONSOLE_TOKENS", "alice=short")
	err = a.run(context.Background(), []string{"serve"})
	require.ErrorContains(t, err, "SIGNALBOX_CONSOLE_TOKENS (value hidden)")
	require.NotContains(t, err.Error(), "short")

	t.Setenv("SIGNALBOX_CONSOLE_TOKENS", "")
	require.NoError(t, (&app{stdout: &stdout, stderr: &stderr}).run(context.Background(), []string{"serve", "--help"}))
	require.Contains(t, stdout.String(), "SIGNALBOX_CONSOLE_TRUSTED_PROXIES")
}

func TestDecisionFromFormNeverTakesTheActorFromTheForm(t *testing.T) {
	t.Parallel()
	d, err := decisionFromForm(url.Values{"action": {"approve"}, "actor": {"mallory"}, "reason": {" why "}, "choice": {"merge"}}, "alice")
	require.NoError(t, err)
	require.Equal(t, api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "why", Choice: "merge"}, d)
	_, err = decisionFromForm(url.Values{"action": {"launch"}}, "alice")
	require.ErrorContains(t, err, `action "launch" is not one of`)
	_, err = decisionFromForm(url.Values{"action": {"amend"}, "set-field": {""}, "set-value": {"x"}}, "alice")
	require.ErrorContains(t, err, "has no field")
}

func TestLocalPathStaysOnTheConsole(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/items/lead-to-crm:a": "/items/lead-to-crm:a", "/?page=2": "/?page=2", "": "/", "https://evil.example": "/",
		"//evil.example": "/", "/\\evil.example": "/", "items": "/",
	} {
		require.Equal(t, want, localPath(in), in)
	}
}

func TestConsoleAnswersAPanicWithA500(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	tc.backend.panicOn = salesItem
	rec := tc.do(t, request{path: "/items/" + salesItem, cookie: tc.signIn(t, aliceToken)})
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Contains(t, rec.Body.String(), "internal error")
	require.NotContains(t, rec.Body.String(), "a bug in reading", "the panic stays in the log")
	require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
}

// With a key, the console signs the decisions of operators its sign-on proxy
// authenticated — one by one and in bulk — for the exception the item waits
// on, as console NAME; a token sign-in's decisions go unsigned.
func TestConsoleSignsWhatItsSignOnProxyVouchesFor(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	tc := newTestConsoleWith(t, func(c *config.Console) {
		require.NoError(t, c.ConsoleTrustedProxies.Decode("10.0.0.9"))
	}, func(o *consoleOptions) { o.Key = &operatorKey{console: "console-1", key: priv} })
	tc.backend.items["lead-to-crm:lead-2"] = waitingState("lead-to-crm:lead-2", "sales", api.ConsentMissing, "sales", api.ActionApprove)

	proxied := map[string]string{"X-Forwarded-Email": "alice@corp.example", "Origin": "http://example.com"}
	rec := tc.do(t, request{path: "/items/" + salesItem, from: "10.0.0.9:1", header: proxied})
	cookie, csrf := rec.Result().Cookies()[0], csrfPattern.FindStringSubmatch(rec.Body.String())[1]
	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", from: "10.0.0.9:1", header: proxied, cookie: cookie,
		form: approveForm(csrf, "consent on file")})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	rec = tc.do(t, request{method: http.MethodPost, path: "/decide", from: "10.0.0.9:1", header: proxied, cookie: cookie,
		form: url.Values{"csrf": {csrf}, "action": {"approve"}, "reason": {"consent on file"}, "id": {"lead-to-crm:lead-2"}}})
	require.Contains(t, rec.Body.String(), "approve: 1 applied")

	tokenCookie := tc.signIn(t, aliceToken)
	rec = tc.do(t, request{method: http.MethodPost, path: "/items/" + salesItem + "/decide", cookie: tokenCookie,
		form: approveForm(tc.csrfOf(t, tokenCookie), "consent on file")})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())

	sent := tc.backend.decisions()
	require.Len(t, sent, 3)
	for _, s := range sent[:2] {
		require.Equal(t, "console-1", s.d.Signer, s.id)
		require.Equal(t, "alice", s.d.Actor)
		ref := api.ExceptionRef(tc.backend.items[s.id].Exception)
		require.NoError(t, api.VerifyDecision(pub, s.id, ref, s.d, tc.clock.now()), "signed for the item and the exception it waits on: %s", s.id)
		other := s.d
		other.Actor = "bob"
		require.Error(t, api.VerifyDecision(pub, s.id, ref, other, tc.clock.now()), "the signature binds the actor")
	}
	require.Equal(t, api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "consent on file"}, sent[2].d, "a token sign-in's decision is not signed")
}

// A bulk decision's answer shows each item's outcome as it comes: the page's
// head before any item answers, a row per item that answered, the counts
// after the last.
func TestConsoleBulkShowsEachOutcomeAsItComes(t *testing.T) {
	t.Parallel()
	tc := newTestConsole(t, nil)
	tc.backend.gate = make(chan struct{})
	tc.backend.items["lead-to-crm:lead-2"] = waitingState("lead-to-crm:lead-2", "sales", api.ConsentMissing, "sales", api.ActionApprove)
	cookie := tc.signIn(t, aliceToken)
	srv := httptest.NewServer(tc.h)
	defer srv.Close()
	defer close(tc.backend.gate) // let every decision through, whatever happened
	form := url.Values{"csrf": {tc.csrfOf(t, cookie)}, "action": {"approve"}, "reason": {"consent on file"}, "id": {salesItem, "lead-to-crm:lead-2"}}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/decide", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	client := srv.Client()
	client.Timeout = 10 * time.Second // a page that waits for every item never begins: the items wait on the test
	resp, err := client.Do(req)
	require.NoError(t, err, "the answer begins before any item answered")
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var page strings.Builder
	readUntil := func(s string) {
		t.Helper()
		buf := make([]byte, 4096)
		for !strings.Contains(page.String(), s) {
			n, err := resp.Body.Read(buf)
			page.Write(buf[:n])
			if err != nil {
				require.Contains(t, page.String(), s, "the page ended (%v) without it: %s", err, page.String())
			}
		}
	}
	readUntil("<tbody>")
	require.Contains(t, page.String(), "approve: 2 items")
	require.NotContains(t, page.String(), `<tr class="applied">`, "no item answered yet")
	tc.backend.gate <- struct{}{}
	readUntil(`<tr class="applied">`)
	require.Equal(t, 1, strings.Count(page.String(), `<tr class="applied">`), "one row per item that answered")
	require.NotContains(t, page.String(), "applied, ", "the counts come after the last")
	tc.backend.gate <- struct{}{}
	readUntil("</html>")
	require.Equal(t, 2, strings.Count(page.String(), `<tr class="applied">`))
	require.Contains(t, page.String(), "approve: 2 applied, 0 refused, 0 failed")
}
