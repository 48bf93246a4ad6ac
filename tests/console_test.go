package tests

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/stack"
)

// The console's sign-in tokens in these tests; alice decides for sales,
// carol for finance (Operators).
const (
	consoleAliceToken = "alice-console-token-e2e"
	consoleCarolToken = "carol-console-token-e2e"
)

// consoleServer is `signals serve` running against a stack.
type consoleServer struct {
	url  string
	proc *stack.Process
}

// startConsole runs `signals serve` against s with alice's and carol's
// tokens, and stops it (gracefully: it must exit 0) when the test ends.
func startConsole(t *testing.T, s *env, settings ...string) *consoleServer {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "console.log")
	var proc *stack.Process
	var addr string
	for attempt := 1; ; attempt++ {
		var err error
		addr, err = stack.FreeAddr()
		require.NoError(t, err)
		proc = &stack.Process{Name: "console", Path: filepath.Join(binDir, "signals"), Args: []string{"serve"}, LogPath: logPath,
			Env: append(append(append([]string(nil), s.Env...), "SIGNALBOX_CONSOLE_ADDR="+addr,
				"SIGNALBOX_CONSOLE_TOKENS=alice="+consoleAliceToken+";carol="+consoleCarolToken, "SIGNALBOX_CONSOLE_TRUSTED_PROXIES="), settings...),
			ReadyURL: "http://" + addr + "/healthz"}
		err = proc.Start(context.Background())
		if err == nil {
			break
		}
		// A port picked free may be taken before the console binds it.
		require.True(t, attempt < 3 && strings.Contains(err.Error(), "address already in use"), "%v", err)
	}
	t.Cleanup(func() {
		if err := proc.Stop(15 * time.Second); err != nil {
			t.Errorf("the console did not stop gracefully: %v\n%s", err, proc.Tail(20))
		}
		log, _ := os.ReadFile(logPath)
		if !strings.Contains(string(log), "console stopped") {
			t.Errorf("the console's log does not say it stopped:\n%s", log)
		}
	})
	return &consoleServer{url: "http://" + addr, proc: proc}
}

// consoleClient is one person's HTTP client: a cookie jar, redirects not followed
// (the tests check them).
type consoleClient struct {
	t       *testing.T
	base    string
	client  *http.Client
	lastURL string
	// header is sent with every request (a sign-on proxy's).
	header map[string]string
}

func (c *consoleServer) client(t *testing.T) *consoleClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar, Timeout: waitFor,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &consoleClient{t: t, base: c.url, client: client}
}

// signIn signs in with token through the sign-in form.
func (c *consoleServer) signIn(t *testing.T, token string) *consoleClient {
	t.Helper()
	b := c.client(t)
	code, body, _ := b.get("/")
	require.Equal(t, http.StatusUnauthorized, code, "no identity: the sign-in page")
	require.Contains(t, body, `action="/signin"`)
	code, _, location := b.post("/signin", url.Values{"token": {token}, "next": {"/"}})
	require.Equal(t, http.StatusSeeOther, code)
	require.Equal(t, "/", location)
	return b
}

func (b *consoleClient) do(req *http.Request) (int, string, string) {
	b.t.Helper()
	for k, v := range b.header {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		require.NotEmpty(b.t, resp.Header.Get(h), "%s %s answers without %s", req.Method, req.URL.Path, h)
	}
	return resp.StatusCode, string(raw), resp.Header.Get("Location")
}

func (b *consoleClient) get(path string) (code int, body, location string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *consoleClient) post(path string, form url.Values) (code int, body, location string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// hiddenField reads a hidden input's value from a page.
func hiddenField(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page)
	require.NotNil(t, m, "the page has no field %s", name)
	return html.UnescapeString(m[1])
}

var nextPage = regexp.MustCompile(`<a href="([^"]+)" rel="next">`)

// findInInbox pages through the inbox, oldest first, until it lists id; it
// returns that page, or "" when no page lists it.
func (b *consoleClient) findInInbox(query string, id string) string {
	b.t.Helper()
	path := "/" + query
	for range 100 {
		code, body, _ := b.get(path)
		require.Equal(b.t, http.StatusOK, code, body)
		if strings.Contains(body, `<a href="/items/`+id+`">`) {
			return body
		}
		m := nextPage.FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		path = html.UnescapeString(m[1])
	}
	b.t.Fatalf("the inbox has more than 100 pages")
	return ""
}

// blockedLead posts a lead without consent and waits until the inbox's
// visibility query can find it Blocked.
func blockedLead(t *testing.T, prefix string) string {
	t.Helper()
	key := uniqueKey(t, prefix)
	l := lead(key)
	l.Consent = false
	code, _ := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code)
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	require.Equal(t, api.ConsentMissing, shared.waitStatus(t, id, api.StatusBlocked).Exception.Kind)
	shared.waitVisible(t, fmt.Sprintf("IntegrationStatus = 'Blocked' AND ExceptionKind = 'ConsentMissing' AND SourceKey = '%s'", key), 1)
	return id
}

func TestConsoleApprovesALeadAsTheSignedInOperator(t *testing.T) {
	t.Parallel()
	id := blockedLead(t, "e2e-console")
	con := startConsole(t, shared)

	anonymous := con.client(t)
	code, body, _ := anonymous.get("/items/" + id)
	require.Equal(t, http.StatusUnauthorized, code)
	require.NotContains(t, body, "did not consent")

	// Carol decides for finance: the sales item is not hers.
	carol := con.signIn(t, consoleCarolToken)
	require.Empty(t, carol.findInInbox("", id), "carol's inbox holds finance's items only")
	code, body, _ = carol.get("/items/" + id)
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, body, "decided by team sales")
	require.NotContains(t, body, "did not consent")
	_, carolsPage, _ := carol.get("/")
	carolCSRF := hiddenField(t, carolsPage, "csrf")
	code, _, _ = carol.post("/items/"+id+"/decide", url.Values{"csrf": {carolCSRF}, "action": {"approve"}, "reason": {"forged"}, "actor": {"alice"}})
	require.Equal(t, http.StatusForbidden, code, "a forged POST is refused")
	code, body, _ = carol.post("/decide", url.Values{"csrf": {carolCSRF}, "id": {id}, "action": {"approve"}, "reason": {"forged in bulk"}})
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "approve: 0 applied, 1 refused, 0 failed")
	require.Contains(t, body, "decided by team sales, not one of yours")

	// Alice decides for sales: she finds the lead in her inbox and approves it.
	alice := con.signIn(t, consoleAliceToken)
	inbox := alice.findInInbox("?integration=lead-to-crm&exception=ConsentMissing&team=sales", id)
	require.NotEmpty(t, inbox, "alice's inbox lists the blocked lead")
	require.Regexp(t, regexp.QuoteMeta(id)+`</a></td>\s*<td>lead-to-crm</td>\s*<td>ConsentMissing <span class="muted">\(Blocked\)</span></td>`, inbox)
	code, page, _ := alice.get("/items/" + id)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, "ConsentMissing: the lead did not consent to be contacted")
	require.Contains(t, page, "Allowed decisions: approve, reject.")
	require.Contains(t, page, "Running → Blocked", "the audit trail, from PostgreSQL")
	require.Contains(t, page, "/namespaces/"+shared.Namespace()+"/workflows/"+id, "a link to the item in the Temporal UI")

	state := shared.waitStatus(t, id, api.StatusBlocked)
	require.Empty(t, state.Decisions, "carol's forged decisions never reached the item")
	for _, e := range shared.auditTrail(t, id) {
		require.NotEqual(t, "carol", e.Actor, "nothing of carol's is in the audit trail")
	}

	form := url.Values{"csrf": {hiddenField(t, page, "csrf")}, "exception": {hiddenField(t, page, "exception")}, "action": {"approve"},
		"reason": {"consent given on the phone, call #42"}, "actor": {"mallory"}}
	code, body, location := alice.post("/items/"+id+"/decide", form)
	require.Equal(t, http.StatusSeeOther, code, body)
	require.Equal(t, "/items/"+id, location)
	_, page, _ = alice.get(location)
	require.Contains(t, page, "approve applied")

	require.Equal(t, api.StatusSynced, shared.waitResult(t, id).Status)
	require.Len(t, shared.contactsWithEmail(t, lead(strings.TrimPrefix(id, "lead-to-crm:")).Email), 1)
	trail := shared.auditTrail(t, id)
	require.Equal(t, []string{
		"accepted →Pending system", "started Pending→Running system", "raised Running→Blocked system",
		"approve Blocked→Running alice", "synced Running→Synced system",
	}, transitions(trail), "the decision is alice's: who signed in, never a form field")
	require.Equal(t, "consent given on the phone, call #42", trail[3].Reason)

	require.Empty(t, alice.findInInbox("", id), "decided: gone from alice's inbox")
	_, page, _ = alice.get("/items/" + id)
	require.Contains(t, page, "The item is Synced: it waits for no decision.")
	code, _, _ = carol.get("/items/" + id)
	require.Equal(t, http.StatusForbidden, code, "a synced item stays its team's")
}

func TestConsoleBulkRejectsTickedLeads(t *testing.T) {
	t.Parallel()
	ids := []string{blockedLead(t, "e2e-console-bulk"), blockedLead(t, "e2e-console-bulk")}
	con := startConsole(t, shared)
	alice := con.signIn(t, consoleAliceToken)
	_, page, _ := alice.get("/")
	form := url.Values{"csrf": {hiddenField(t, page, "csrf")}, "id": {ids[0], ids[1], "lead-to-crm:never-was"}, "action": {"reject"},
		"reason": {"no consent on file"}}
	code, body, _ := alice.post("/decide", form)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "reject: 2 applied, 1 refused, 0 failed")
	require.Contains(t, body, "no such item in Temporal")
	for _, id := range ids {
		require.Equal(t, api.StatusRejected, shared.waitResult(t, id).Status)
		trail := shared.auditTrail(t, id)
		last := trail[len(trail)-1]
		require.Equal(t, "reject Blocked→Rejected alice", transitions(trail)[len(trail)-1])
		require.Equal(t, "no consent on file", last.Reason)
	}

	code, body, _ = alice.get("/integrations")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "lead-to-crm — ")
	require.NotContains(t, body, "did not answer every count")

	code, _, _ = alice.post("/signout", url.Values{"csrf": {hiddenField(t, page, "csrf")}})
	require.Equal(t, http.StatusSeeOther, code)
	code, _, _ = alice.get("/")
	require.Equal(t, http.StatusUnauthorized, code, "signed out")
}
