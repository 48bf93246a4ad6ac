package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/connectors/chat"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
)

func newSandbox(t *testing.T, plan Plan) (*Server, *httptest.Server) {
	t.Helper()
	s := NewServer("tok", 42, plan, slog.New(slog.DiscardHandler))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func TestCRMContactsAPI(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	ctx := context.Background()
	c := crm.New(ts.URL, "tok", rest.HTTPClient(5*time.Second, 0))

	created, err := c.Create(ctx, crm.Properties{"email": "Ada@Example.com", "firstname": "Ada", "lastname": "Lovelace", "company": "Engines"})
	require.NoError(t, err)
	require.Equal(t, "101", created.ID)
	require.Equal(t, "Ada", created.Properties["firstname"])

	_, err = c.Create(ctx, crm.Properties{"email": "ada@example.com"})
	id, ok := crm.ExistingID(err)
	require.True(t, ok, "a duplicate email is a 409 naming the existing contact: %v", err)
	require.Equal(t, "101", id)

	found, err := c.Search(ctx, []crm.FilterGroup{crm.Equals(crm.Properties{"email": "ADA@example.com"})}, []string{"email", "company"})
	require.NoError(t, err)
	require.Len(t, found, 1, "email search ignores case")
	require.Equal(t, crm.Properties{"email": "Ada@Example.com", "company": "Engines", "hs_object_id": "101",
		"createdate": formatTime(created.CreatedAt), "lastmodifieddate": formatTime(created.UpdatedAt)}, found[0].Properties)

	byName := crm.Equals(crm.Properties{"firstname": "ada", "lastname": "lovelace", "company": "engines"})
	nobody := crm.Equals(crm.Properties{"email": "nobody@example.com"})
	found, err = c.Search(ctx, []crm.FilterGroup{nobody, byName}, nil)
	require.NoError(t, err)
	require.Len(t, found, 1, "filter groups are ORed, filters within a group ANDed")

	updated, err := c.Update(ctx, "101", crm.Properties{"phone": "+44 20 7946 0000"})
	require.NoError(t, err)
	require.Equal(t, "+44 20 7946 0000", updated.Properties["phone"])
	got, err := c.Get(ctx, "101", []string{"phone", "email", "jobtitle", "shoe_size"})
	require.NoError(t, err)
	require.Equal(t, crm.Properties{"phone": "+44 20 7946 0000", "email": "Ada@Example.com", "jobtitle": "", "hs_object_id": "101",
		"createdate": formatTime(created.CreatedAt), "lastmodifieddate": formatTime(updated.UpdatedAt)}, got.Properties,
		"jobtitle, which has no value, comes as null, which the client reads as \"\"; shoe_size is no property and is left out")

	_, err = c.Get(ctx, "999", nil)
	requireStatus(t, err, http.StatusNotFound)
}

func TestCRMRefusals(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	ctx := context.Background()

	_, err := crm.New(ts.URL, "wrong", rest.HTTPClient(time.Second, 0)).Create(ctx, crm.Properties{"email": "a@b.co"})
	requireStatus(t, err, http.StatusUnauthorized)

	c := crm.New(ts.URL, "tok", rest.HTTPClient(time.Second, 0))
	_, err = c.Create(ctx, crm.Properties{"email": "ada@engines.invalid"})
	e := requireStatus(t, err, http.StatusBadRequest)
	require.Equal(t, "VALIDATION_ERROR", e.Code)
	require.Contains(t, e.Message, "INVALID_EMAIL")

	_, err = c.Create(ctx, crm.Properties{"email": "a@b.co", "shoe_size": "9"})
	e = requireStatus(t, err, http.StatusBadRequest)
	require.Contains(t, e.Message, `Property "shoe_size" does not exist`)

	// CONTAINS_TOKEN is one of HubSpot's operators now emulated; an operator
	// HubSpot lacks is refused.
	_, err = c.Search(ctx, []crm.FilterGroup{{Filters: []crm.Filter{{PropertyName: "email", Operator: "SOUNDS_LIKE", Value: "x"}}}}, nil)
	e = requireStatus(t, err, http.StatusBadRequest)
	require.Contains(t, e.Message, "Unknown filter operator")
}

func TestChatWebhook(t *testing.T) {
	t.Parallel()
	s, ts := newSandbox(t, nil)
	ctx := context.Background()
	c := chat.New(nil, ts.URL+"/services", rest.HTTPClient(time.Second, 0))
	require.NoError(t, c.Post(ctx, "sales", chat.Message{Text: "hello"}, "k1"))
	require.NoError(t, c.Post(ctx, "sales", chat.Message{Text: "hello"}, "k1"))
	err := c.Post(ctx, "sales", chat.Message{Text: "  "}, "k2")
	e := requireStatus(t, err, http.StatusBadRequest)
	require.Equal(t, "no_text", e.Message)

	var got struct{ Messages []message }
	getJSON(t, ts.URL+"/_sandbox/messages?team=sales", &got)
	require.Len(t, got.Messages, 2, "like Slack, the webhook posts a repeated message again")
	require.Equal(t, 1, s.Stats().DuplicateMessages)
}

func TestFaultsAreReproducibleFromTheSeed(t *testing.T) {
	t.Parallel()
	f := Fault{Rate429: 0.1, Rate5xx: 0.3, RateHang: 0.05, RateReset: 0.05, AfterEffect: 0.5}
	counts := map[string]int{}
	for i := range 2000 {
		id := "email:" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		a := decide(7, "crm.create", id, 1, f)
		require.Equal(t, a, decide(7, "crm.create", id, 1, f), "the same seed and request give the same fault")
		counts[a.Kind]++
	}
	require.InDelta(t, 200, counts["429"], 60)
	require.InDelta(t, 600, counts["5xx"], 90)
	require.InDelta(t, 100, counts["hang"], 45)
	require.InDelta(t, 100, counts["reset"], 45)

	differs := false
	for i := range 50 {
		id := "key:" + string(rune('a'+i))
		if decide(7, "chat.post", id, 1, f) != decide(8, "chat.post", id, 1, f) {
			differs = true
		}
	}
	require.True(t, differs, "another seed gives other faults")
}

func TestRetryAfterIsGivenAndEarlyRetriesAreCounted(t *testing.T) {
	t.Parallel()
	s, ts := newSandbox(t, Plan{"chat.post": {Rate429: 1, RetryAfter: Duration(2 * time.Second)}})
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	now := t0
	s.now = func() time.Time { return now }
	// signalbox's client would hold these back (see rest.HTTPClient); this one
	// says when it sent and never waits.
	post := func(key string, sent time.Time) *http.Response {
		req, err := http.NewRequest("POST", ts.URL+"/services/ops", strings.NewReader(`{"text":"x"}`))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", key)
		req.Header.Set(rest.SentAtHeader, sent.Format(time.RFC3339Nano))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}

	resp := post("same", now)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "2", resp.Header.Get("Retry-After"))
	require.Equal(t, map[string]int{}, s.Stats().RequestsDuringBackoff)

	now = t0.Add(time.Second)
	post("same", now)
	require.Equal(t, 1, s.Stats().EarlyRetries, "a retry one second into a two-second Retry-After is early")
	post("other", now)
	st := s.Stats()
	require.Equal(t, 1, st.EarlyRetries, "another request is not a retry")
	require.Equal(t, map[string]int{"chat": 2}, st.RequestsDuringBackoff, "but it came while the target was backing off")

	now = t0.Add(4 * time.Second)
	post("same", t0.Add(2500*time.Millisecond))
	require.Equal(t, 2, s.Stats().EarlyRetries, "judged by when it was sent (before the second Retry-After ended), not when it arrived")

	now = t0.Add(10 * time.Second)
	post("same", now)
	st = s.Stats()
	require.Equal(t, 2, st.EarlyRetries, "a retry after the wait is on time")
	require.Equal(t, 3, st.RequestsDuringBackoff["chat"])

	now = t0.Add(20 * time.Second)
	post("late", now)
	post("late", now.Add(-time.Millisecond))
	st = s.Stats()
	require.Equal(t, 2, st.EarlyRetries, "a request sent before the Retry-After was given came with it, not after it")
	require.Equal(t, 3, st.RequestsDuringBackoff["chat"])

	var log struct{ Requests []Entry }
	getJSON(t, ts.URL+"/_sandbox/requests", &log)
	require.Len(t, log.Requests, 7)
	require.Equal(t, t0.Add(2500*time.Millisecond), log.Requests[3].SentAt.UTC(), "the log keeps the send time")
	require.True(t, log.Requests[2].DuringBackoff)
}

func TestRetryAfterAsHTTPDate(t *testing.T) {
	t.Parallel()
	s, ts := newSandbox(t, Plan{"crm.*": {Rate429: 1, RetryAfter: Duration(3 * time.Second), RetryAfterDate: true}})
	now := time.Date(2026, 11, 26, 12, 0, 0, 400e6, time.UTC)
	s.now = func() time.Time { return now }
	resp, err := http.Post(ts.URL+"/crm/v3/objects/contacts/search", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	at, err := http.ParseTime(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 26, 12, 0, 4, 0, time.UTC), at.UTC(), "the date is never earlier than the wait")
}

func TestFaultsAfterEffectStillChangeState(t *testing.T) {
	t.Parallel()
	s, ts := newSandbox(t, Plan{"crm.create": {Rate5xx: 1, AfterEffect: 1}})
	c := crm.New(ts.URL, "tok", rest.HTTPClient(time.Second, 0))
	_, err := c.Create(context.Background(), crm.Properties{"email": "a@b.co"})
	e := requireStatus(t, err, 0)
	require.GreaterOrEqual(t, e.StatusCode, 500)
	st := s.Stats()
	require.Equal(t, 1, st.Contacts, "the contact was created although the client saw a 5xx")
	require.Equal(t, 1, st.Effects["crm.create"])
}

func TestHangOutlastsTheClientTimeoutAndResetDropsTheConnection(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, Plan{"crm.search": {RateHang: 1}, "crm.get": {RateReset: 1}})
	c := crm.New(ts.URL, "tok", rest.HTTPClient(200*time.Millisecond, 0))
	_, err := c.Search(context.Background(), nil, nil)
	var e *rest.Error
	require.ErrorAs(t, err, &e)
	require.True(t, e.Timeout(), "a hung request ends in the client's timeout: %v", err)
	require.Zero(t, e.StatusCode)

	_, err = c.Get(context.Background(), "1", nil)
	require.ErrorAs(t, err, &e)
	require.Zero(t, e.StatusCode)
	require.False(t, e.Timeout())
}

func TestUnauthorizedAndDownFaults(t *testing.T) {
	t.Parallel()
	s, ts := newSandbox(t, Plan{"crm.*": {Unauthorized: true}})
	c := crm.New(ts.URL, "tok", rest.HTTPClient(time.Second, 0))
	_, err := c.Create(context.Background(), crm.Properties{"email": "a@b.co"})
	requireStatus(t, err, http.StatusUnauthorized)

	postJSON(t, ts.URL+"/_sandbox/faults", `{"*": {"down": true}}`, http.StatusOK)
	_, err = c.Create(context.Background(), crm.Properties{"email": "a@b.co"})
	requireStatus(t, err, http.StatusServiceUnavailable)
	postJSON(t, ts.URL+"/_sandbox/faults", `{}`, http.StatusOK)
	_, err = c.Create(context.Background(), crm.Properties{"email": "a@b.co"})
	require.NoError(t, err)
	require.Equal(t, 1, s.Stats().Contacts)
}

func TestFaultPlanValidation(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	for body, want := range map[string]string{
		`{"crm.create": {"rate5xx": 1.5}}`:                 "rate5xx must be between 0 and 1",
		`{"crm.create": {"rate5xx": 0.6, "rate429": 0.6}}`: "must not exceed 1",
		`{"billing.x": {}}`:                                `matches no endpoint`,
		`{"crm.create": {"rate": 0.1}}`:                    `unknown field "rate"`,
		`{"crm.create": {"latency": "soon"}}`:              "is not a duration",
		`[1,2]`:                                            "fault plan",
	} {
		resp := postJSON(t, ts.URL+"/_sandbox/faults", body, http.StatusBadRequest)
		require.Contains(t, resp["error"], want, body)
	}
	require.Equal(t, Fault{Rate5xx: 0.2}, Plan{"crm.*": {Rate5xx: 0.2}, "*": {Down: true}}.For("crm.get"))
	require.Equal(t, Fault{Rate429: 1}, Plan{"crm.*": {Rate5xx: 0.2}, "crm.get": {Rate429: 1}}.For("crm.get"))
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	c := crm.New(ts.URL, "tok", rest.HTTPClient(time.Second, 0))
	_, err := c.Create(context.Background(), crm.Properties{"email": "a@b.co"})
	require.NoError(t, err)
	_, _ = c.Create(context.Background(), crm.Properties{"email": "A@b.co"})
	var log struct{ Requests []Entry }
	getJSON(t, ts.URL+"/_sandbox/requests?endpoint=crm.create", &log)
	require.Len(t, log.Requests, 2)
	require.Equal(t, "email:a@b.co", log.Requests[0].Identity)
	require.Equal(t, 2, log.Requests[1].Attempt, "a create for the same email counts as a repeat")
	require.True(t, log.Requests[0].Effect)
	require.Equal(t, http.StatusConflict, log.Requests[1].Status)
	require.False(t, log.Requests[1].Effect)

	postJSON(t, ts.URL+"/_sandbox/reset", `{}`, http.StatusOK)
	getJSON(t, ts.URL+"/_sandbox/requests", &log)
	require.Empty(t, log.Requests)
}

func requireStatus(t *testing.T, err error, status int) *rest.Error {
	t.Helper()
	var e *rest.Error
	require.True(t, errors.As(err, &e), "want *rest.Error, got %v", err)
	if status != 0 {
		require.Equal(t, status, e.StatusCode, "%v", err)
	}
	return e
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

func postJSON(t *testing.T, url, body string, status int) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, status, resp.StatusCode, string(raw))
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return out
}

func TestStripeProxyForwardsWithFaultsAndTheDueDateRule(t *testing.T) {
	t.Parallel()
	var seen []*http.Request
	var bodies []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, r)
		bodies = append(bodies, string(b))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"in_1","object":"invoice"}`))
	}))
	defer upstream.Close()
	s, sandbox := newSandbox(t, Plan{"stripe.invoiceitems.create": {Rate5xx: 1}})
	s.SetStripeURL(upstream.URL)
	ts := httptest.NewServer(s.StripeHandler())
	defer ts.Close()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }

	post := func(path, form, key string) (int, string) {
		req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer sk_test_1")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	future := fmt.Sprint(now.Add(24 * time.Hour).Unix())
	code, body := post("/v1/invoices", "customer=cus_1&due_date="+future, "wf/invoice")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"in_1"`)
	require.Equal(t, "/v1/invoices", seen[0].URL.Path)
	require.Equal(t, "wf/invoice", seen[0].Header.Get("Idempotency-Key"))
	require.Equal(t, "Bearer sk_test_1", seen[0].Header.Get("Authorization"))
	require.Contains(t, bodies[0], "customer=cus_1")

	past := fmt.Sprint(now.Add(-24 * time.Hour).Unix())
	code, body = post("/v1/invoices", "customer=cus_1&due_date="+past, "wf/invoice2")
	require.Equal(t, 400, code)
	require.Contains(t, body, `"param":"due_date"`)
	require.Contains(t, body, "invalid_request_error")
	require.Len(t, seen, 1, "refused before reaching stripe-mock")

	code, body = post("/v1/invoiceitems", "invoice=in_1", "wf/item/1")
	require.GreaterOrEqual(t, code, 500)
	require.Contains(t, body, `"api_error"`)

	var log struct{ Requests []Entry }
	getJSON(t, sandbox.URL+"/_sandbox/requests?endpoint=stripe.*", &log)
	require.Len(t, log.Requests, 3)
	require.Equal(t, "stripe.invoices.create", log.Requests[0].Endpoint)
	require.Equal(t, "key:wf/invoice", log.Requests[0].Identity)
	require.True(t, log.Requests[0].Effect)
	require.Equal(t, "stripe.invoiceitems.create", log.Requests[2].Endpoint)
	require.Equal(t, "5xx", log.Requests[2].Fault)
}

func TestStripeProxyWithoutStripeMock(t *testing.T) {
	t.Parallel()
	s, _ := newSandbox(t, nil)
	ts := httptest.NewServer(s.StripeHandler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/v1/customers/search?query=x")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Contains(t, string(b), "SIGNALBOX_SANDBOX_STRIPE_URL")
}

func FuzzParsePlan(f *testing.F) {
	for _, seed := range []string{`{}`, `{"crm.*":{"rate5xx":0.3}}`, `{"*":{"down":true}}`, `{"[":{}}`, `{"crm.create":{"rate429":1e400}}`, `[]`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		plan, err := ParsePlan(raw)
		if err != nil {
			return
		}
		for pattern, fault := range plan {
			if fault.validate() != nil {
				t.Fatalf("accepted an invalid fault for %s: %+v", pattern, fault)
			}
			_ = decide(1, "crm.create", "x", 1, fault)
		}
	})
}
