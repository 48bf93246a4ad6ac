package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
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
	searchAliceToken = "search-alice-token-0123456789" // sales
	searchCarolToken = "search-carol-token-0123456789" // finance
	searchOlgaToken  = "search-olga-token-0123456789"  // no team
)

var searchNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// searchFake stands in for visibility and the audit trail: it records what
// it is asked. A query naming workflow IDs gets those items only.
type searchFake struct {
	mu      sync.Mutex
	items   []api.VisibleItem
	events  []store.AuditEvent
	queries []string
	actors  []string
}

func (f *searchFake) ListItems(_ context.Context, query string, limit int) ([]api.VisibleItem, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, query)
	var out []api.VisibleItem
	for _, it := range f.items {
		if strings.Contains(query, "WorkflowId") && !strings.Contains(query, "'"+it.WorkflowID+"'") {
			continue
		}
		out = append(out, it)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func (f *searchFake) AuditByActor(_ context.Context, actor string, limit int) ([]store.AuditEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actors = append(f.actors, actor)
	var out []store.AuditEvent
	for _, e := range f.events {
		if e.Actor == actor && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *searchFake) asked() (queries, actors []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...), append([]string(nil), f.actors...)
}

// searchItem is an item as visibility lists it.
func searchItem(id, owner, team string, status api.Status, kind api.ExceptionKind) api.VisibleItem {
	integration, key, _ := api.SplitItemID(id)
	return api.VisibleItem{WorkflowID: id, Integration: integration, Owner: owner, Team: team, SourceKey: key, Status: status,
		Exception: kind, StartTime: searchNow.Add(-time.Hour), Execution: executionRunning}
}

type searchConsole struct {
	h    http.Handler
	fake *searchFake
}

// newSearchConsole is a console with alice (sales), carol (finance) and
// olga (no team) over a searchFake, its only backend.
func newSearchConsole(t *testing.T) *searchConsole {
	t.Helper()
	var tokens config.ConsoleTokens
	require.NoError(t, tokens.Decode("alice="+searchAliceToken+";carol="+searchCarolToken+";olga="+searchOlgaToken))
	var operators config.Operators
	require.NoError(t, operators.Decode("sales=alice,bob;finance=carol"))
	fake := &searchFake{}
	c, err := newConsole(consoleOptions{Search: fake, Operators: operators, Namespace: "default",
		Console: config.Console{ConsoleTokens: tokens, ConsoleSessionTTL: time.Hour, UIBaseURL: "http://localhost:8233"},
		Now:     func() time.Time { return searchNow }})
	require.NoError(t, err)
	return &searchConsole{h: c.Handler(), fake: fake}
}

func (sc *searchConsole) signIn(t *testing.T, token string) *http.Cookie {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	sc.h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	return rec.Result().Cookies()[0]
}

// get asks for /search with the query's parameters, as the page's forms do.
func (sc *searchConsole) get(t *testing.T, cookie *http.Cookie, query url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/search?"+query.Encode(), nil)
	req.RemoteAddr = "127.0.0.1:40000"
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	sc.h.ServeHTTP(rec, req)
	return rec
}

func TestSearchBuildsTheQueryThroughSignalsListsFilters(t *testing.T) {
	t.Parallel()
	sc := newSearchConsole(t)
	sc.fake.items = []api.VisibleItem{searchItem("lead-to-crm:lead-1", "sales", "", api.StatusBlocked, api.ConsentMissing)}
	alice := sc.signIn(t, searchAliceToken)

	// What signals list would ask with the same filters.
	listQuery := func(f filters) string {
		q, err := f.visibilityQuery(searchNow)
		require.NoError(t, err)
		return q
	}
	cases := []struct {
		form url.Values
		want string
	}{
		{url.Values{"key": {"lead-1"}, "field": {"integration"}, "value": {""}},
			"IntegrationName IS NOT NULL AND WorkflowId IN ('lead-to-crm:lead-1', 'invoice-to-billing:lead-1', 'customer-sync:lead-1', 'invoice-payments:lead-1')"},
		{url.Values{"key": {"lead-1"}, "field": {"integration"}, "value": {"lead-to-crm"}},
			"IntegrationName IS NOT NULL AND IntegrationName = 'lead-to-crm' AND WorkflowId = 'lead-to-crm:lead-1'"},
		{url.Values{"key": {"lead-to-crm:lead-1"}},
			"IntegrationName IS NOT NULL AND IntegrationName = 'lead-to-crm' AND WorkflowId = 'lead-to-crm:lead-1'"},
		{url.Values{"field": {"owner"}, "value": {"sales"}}, listQuery(filters{owner: "sales"})},
		{url.Values{"field": {"team"}, "value": {"sales-dach"}}, "IntegrationName IS NOT NULL AND AssignedTeam = 'sales-dach'"},
		{url.Values{"field": {"status"}, "value": {"blocked"}}, "IntegrationName IS NOT NULL AND IntegrationStatus = 'Blocked'"},
		{url.Values{"field": {"exception"}, "value": {"consentmissing"}}, listQuery(filters{exception: "ConsentMissing"})},
		{url.Values{"field": {"older-than"}, "value": {"2h"}}, "IntegrationName IS NOT NULL AND AttentionSince < '2026-11-26T10:00:00Z'"},
		{url.Values{"key": {"lead-1"}, "field": {"status"}, "value": {"Failed"}}, listQuery(filters{status: "Failed", sourceKey: "lead-1"})},
	}
	for _, tc := range cases {
		rec := sc.get(t, alice, tc.form)
		require.Equal(t, http.StatusOK, rec.Code, tc.form.Encode())
		queries, _ := sc.fake.asked()
		require.Equal(t, tc.want, queries[len(queries)-1], tc.form.Encode())
		require.Contains(t, rec.Body.String(), `<a href="/items/lead-to-crm:lead-1">lead-to-crm:lead-1</a>`, "a link to the item page")
	}

	rec := sc.get(t, alice, url.Values{"key": {"lead-1"}, "field": {"integration"}})
	body := rec.Body.String()
	require.Contains(t, body, `<a href="/search" aria-current="page">Search</a>`)
	require.Contains(t, body, `value="lead-1"`, "the form keeps what was typed")
	require.Equal(t, 1, strings.Count(body, "<main>"))
	for _, id := range regexp.MustCompile(`<(?:input|select) id="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		require.Contains(t, body, `<label for="`+id[1]+`">`, "every field has a label")
	}
	require.NotContains(t, body, "<script")
	require.NotContains(t, body, "style=")
}

func TestSearchRefusesAQuoteAndAsksNothing(t *testing.T) {
	t.Parallel()
	sc := newSearchConsole(t)
	alice := sc.signIn(t, searchAliceToken)
	cases := []struct {
		form url.Values
		says string
	}{
		{url.Values{"key": {"lead-1' OR 'a'='a"}}, "must be 1 to 200 characters of letters, digits"},
		{url.Values{"key": {"lead-to-crm:lead'1"}}, "must be 1 to 200 characters of letters, digits"},
		{url.Values{"field": {"owner"}, "value": {"sales' OR 'a'='a"}}, "a team name is letters, digits"},
		{url.Values{"field": {"team"}, "value": {"x'"}}, "a team name is letters, digits"},
		{url.Values{"field": {"integration"}, "value": {"lead-to-crm'"}}, "unknown integration"},
		{url.Values{"field": {"status"}, "value": {"Blocked'"}}, "unknown status"},
		{url.Values{"field": {"exception"}, "value": {"ConsentMissing'"}}, "unknown exception kind"},
		{url.Values{"field": {"older-than"}, "value": {"2h'"}}, "a duration is a number and a unit"},
		{url.Values{"field": {"older-than"}, "value": {"-2h"}}, "must not be negative"},
		{url.Values{"field": {"query"}, "value": {"SourceKey = 'x'"}}, "unknown field"},
		{url.Values{"key": {""}, "value": {""}}, "type a source key"},
	}
	for _, tc := range cases {
		rec := sc.get(t, alice, tc.form)
		require.Equal(t, http.StatusBadRequest, rec.Code, tc.form.Encode())
		body := rec.Body.String()
		require.Contains(t, body, `<p class="error" role="alert">Nothing was searched: `, tc.form.Encode())
		require.Contains(t, body, tc.says, tc.form.Encode())
	}
	queries, _ := sc.fake.asked()
	require.Empty(t, queries, "no query reached visibility")
}

func TestSearchHidesAnotherTeamsItems(t *testing.T) {
	t.Parallel()
	sc := newSearchConsole(t)
	sc.fake.items = []api.VisibleItem{
		searchItem("lead-to-crm:k1", "sales", "", api.StatusBlocked, api.ConsentMissing),
		searchItem("invoice-to-billing:k1", "finance", "", api.StatusBlocked, api.ApprovalRequired),
		searchItem("customer-sync:k1", "finance", "", api.StatusSynced, ""),
		// RoutingUnclear is sales-ops's, whoever owns the lead; a reassigned
		// lead is its new team's.
		searchItem("lead-to-crm:k2", "sales", "", api.StatusBlocked, api.RoutingUnclear),
		searchItem("lead-to-crm:k3", "sales", "sales-dach", api.StatusBlocked, api.ConsentMissing),
	}
	alice := sc.signIn(t, searchAliceToken)
	rec := sc.get(t, alice, url.Values{"field": {"status"}, "value": {"Blocked"}})
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, `href="/items/lead-to-crm:k1"`)
	for _, other := range []string{"invoice-to-billing:k1", "customer-sync:k1", "lead-to-crm:k2", "lead-to-crm:k3", "sales-ops", "sales-dach", "finance"} {
		require.NotContains(t, body, other, "nothing of another team's item is shown")
	}
	require.Contains(t, body, "4 more found are items that another team decides: not shown.")

	// The rule is the item page's: the team itemDeciders names must be one of the operator's.
	for _, it := range sc.fake.items {
		state := api.ItemState{Integration: it.Integration, Owner: it.Owner, Team: it.Team, Status: it.Status}
		if it.Exception != "" {
			state.Exception = &api.ExceptionState{Kind: it.Exception}
		}
		require.Equal(t, itemDeciders(state), visibleDeciders(it), it.WorkflowID)
	}

	carol := sc.signIn(t, searchCarolToken)
	body = sc.get(t, carol, url.Values{"key": {"k1"}}).Body.String()
	require.Contains(t, body, `href="/items/invoice-to-billing:k1"`)
	require.Contains(t, body, `href="/items/customer-sync:k1"`)
	require.NotContains(t, body, `href="/items/lead-to-crm:`)
	require.Contains(t, body, "1 more found is an item that another team decides: not shown.")

	olga := sc.signIn(t, searchOlgaToken)
	queries, _ := sc.fake.asked()
	rec = sc.get(t, olga, url.Values{"key": {"k1"}, "actor": {"alice"}})
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "You decide for no team")
	again, actors := sc.fake.asked()
	require.Equal(t, queries, again, "an operator of no team sees nothing: nothing is asked")
	require.Empty(t, actors)

	rec = sc.get(t, nil, url.Values{"key": {"k1"}})
	require.Equal(t, http.StatusUnauthorized, rec.Code, "signed in only")
	require.NotContains(t, rec.Body.String(), "lead-to-crm:k1")
}

func TestSearchListsAnActorsAuditEvents(t *testing.T) {
	t.Parallel()
	sc := newSearchConsole(t)
	sc.fake.items = []api.VisibleItem{
		searchItem("lead-to-crm:k1", "sales", "", api.StatusRunning, ""),
		searchItem("lead-to-crm:k2", "sales", "", api.StatusSynced, ""),
		searchItem("invoice-to-billing:k1", "finance", "", api.StatusBlocked, api.ApprovalRequired),
	}
	at := searchNow.Add(-time.Hour)
	event := func(id string, minutes int, actor, action, from, to, reason string) store.AuditEvent {
		integration, _, _ := api.SplitItemID(id)
		return store.AuditEvent{Integration: integration, WorkflowID: id, RunID: "r1", At: at.Add(time.Duration(minutes) * time.Minute),
			Actor: actor, Action: action, FromStatus: from, ToStatus: to, Reason: reason}
	}
	// Newest first, as store.AuditByActor answers.
	sc.fake.events = []store.AuditEvent{
		event("lead-to-crm:k2", 30, "alice", "reject", "Blocked", "Rejected", "spam, says alice"),
		event("invoice-to-billing:k1", 20, "alice", "approve", "Blocked", "Blocked", "finance's secret reason"),
		event("lead-to-crm:gone", 15, "alice", "approve", "Blocked", "Running", "an item long gone"),
		event("lead-to-crm:k1", 10, "bob", "retry", "Failed", "Running", "bob's reason"),
		event("lead-to-crm:k1", 5, "alice", "approve", "Blocked", "Running", "consent on file"),
	}
	sc.fake.events[0].Details = map[string]any{"identity": "verified"}
	alice := sc.signIn(t, searchAliceToken)
	rec := sc.get(t, alice, url.Values{"actor": {"alice"}})
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()

	queries, actors := sc.fake.asked()
	require.Equal(t, []string{"alice"}, actors)
	require.Equal(t, []string{"IntegrationName IS NOT NULL AND (WorkflowId IN ('invoice-to-billing:k1', 'lead-to-crm:gone', 'lead-to-crm:k1', 'lead-to-crm:k2'))"},
		queries, "one visibility query tells whose items the events are about")

	rows := regexp.MustCompile(`<tr><td>([^<]+)</td><td><a href="/items/([^"]+)">[^<]+</a></td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td class="text">([^<]*)</td></tr>`).FindAllStringSubmatch(body, -1)
	require.Len(t, rows, 2, body)
	require.Equal(t, []string{"2026-11-26 11:30:00 UTC", "lead-to-crm:k2", "alice (verified)", "reject", "Blocked → Rejected", "spam, says alice"}, rows[0][1:])
	require.Equal(t, []string{"2026-11-26 11:05:00 UTC", "lead-to-crm:k1", "alice", "approve", "Blocked → Running", "consent on file"}, rows[1][1:])
	require.NotContains(t, body, "secret reason", "an event about another team's item shows nothing")
	require.NotContains(t, body, "long gone")
	require.NotContains(t, body, "bob")
	require.Contains(t, body, "1 more event is about items that another team decides: not shown.")
	require.Contains(t, body, "1 more event is about items Temporal no longer holds")

	carol := sc.signIn(t, searchCarolToken)
	body = sc.get(t, carol, url.Values{"actor": {"alice"}}).Body.String()
	require.Contains(t, body, "finance&#39;s secret reason", "carol decides the invoice: she sees alice's event about it")
	require.NotContains(t, body, "consent on file")
	require.Contains(t, body, "2 more events are about items that another team decides")

	for _, bad := range []string{"", "ali\nce", strings.Repeat("a", maxActorLength+1)} {
		rec := sc.get(t, alice, url.Values{"actor": {bad}})
		require.Equal(t, http.StatusBadRequest, rec.Code, bad)
		require.Contains(t, rec.Body.String(), "Nothing was searched: ")
	}
	_, actors = sc.fake.asked()
	require.Equal(t, []string{"alice", "alice"}, actors, "a refused name is not looked up")
}

func TestFiltersFindASourceKeysItemByWorkflowID(t *testing.T) {
	t.Parallel()
	q, err := (&filters{sourceKey: "inv-7", integration: "invoice-to-billing"}).visibilityQuery(searchNow)
	require.NoError(t, err)
	require.Equal(t, "IntegrationName IS NOT NULL AND IntegrationName = 'invoice-to-billing' AND WorkflowId = 'invoice-to-billing:inv-7'", q)
	for _, s := range api.Specs() {
		q, err = (&filters{sourceKey: "inv-7"}).visibilityQuery(searchNow)
		require.NoError(t, err)
		require.Contains(t, q, "'"+api.ItemID(s.Name, "inv-7")+"'", "every integration's item of the key")
	}
	for _, bad := range []string{"a'b", "a b", "lead-to-crm:k", "alice@example.com", strings.Repeat("k", 201)} {
		_, err := (&filters{sourceKey: bad}).visibilityQuery(searchNow)
		require.ErrorContains(t, err, "source key", bad)
	}
}
