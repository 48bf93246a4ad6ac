package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/chat"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
	"github.com/signalbox-dev/signalbox/sandbox/emulator"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

type world struct {
	sandbox *emulator.Server
	url     string
	pool    *pgxpool.Pool
	store   *store.Store
	crm     *CRM
	chat    *Chat
	env     *testsuite.TestActivityEnvironment
}

func newWorld(t *testing.T, plan emulator.Plan) *world {
	t.Helper()
	sb := emulator.NewServer("tok", 1, plan, slog.New(slog.DiscardHandler))
	ts := httptest.NewServer(sb.Handler())
	t.Cleanup(ts.Close)
	pool := storetest.NewPool(t)
	st := store.New(pool)
	w := &world{sandbox: sb, url: ts.URL, pool: pool, store: st,
		crm: &CRM{Client: crm.New(ts.URL, "tok", rest.HTTPClient(2*time.Second, 0)), Store: st},
		chat: &Chat{Client: chat.New(nil, ts.URL+"/services", rest.HTTPClient(2*time.Second, 0)), Store: st, UIBaseURL: "http://ui", Namespace: "default",
			Lease: time.Minute, AlertInterval: time.Hour},
	}
	var suite testsuite.WorkflowTestSuite
	w.env = suite.NewTestActivityEnvironment()
	w.env.RegisterActivity(w.crm)
	w.env.RegisterActivity(w.chat)
	return w
}

var adaProps = crm.Properties{crm.PropEmail: "ada@example.com", crm.PropFirstName: "Ada", crm.PropLastName: "Lovelace", crm.PropCompany: "Engines"}

func (w *world) find(t *testing.T, key, email string) FindContactResult {
	t.Helper()
	v, err := w.env.ExecuteActivity(w.crm.FindContact, FindContactInput{Integration: "lead-to-crm", SourceKey: key, Email: email,
		FirstName: "Ada", LastName: "Lovelace", Company: "Engines", Properties: []string{"email", "firstname"}})
	require.NoError(t, err)
	var r FindContactResult
	require.NoError(t, v.Get(&r))
	return r
}

func (w *world) create(t *testing.T, key string, props crm.Properties) (CreateContactResult, error) {
	t.Helper()
	v, err := w.env.ExecuteActivity(w.crm.CreateContact, CreateContactInput{Integration: "lead-to-crm", SourceKey: key,
		WorkflowID: "lead-to-crm:" + key, Properties: props, Hash: "h-" + key})
	var r CreateContactResult
	if err == nil {
		require.NoError(t, v.Get(&r))
	}
	return r, err
}

func (w *world) update(t *testing.T, key, contactID string, props crm.Properties) error {
	t.Helper()
	_, err := w.env.ExecuteActivity(w.crm.UpdateContact, UpdateContactInput{Integration: "lead-to-crm", SourceKey: key,
		WorkflowID: "lead-to-crm:" + key, ContactID: contactID, Properties: props, Hash: "h2-" + key})
	return err
}

func (w *world) link(t *testing.T, key string) store.Link {
	t.Helper()
	l, err := w.store.GetLink(context.Background(), "lead-to-crm", key, api.SystemCRM)
	require.NoError(t, err)
	return l
}

func TestCreateIsIdempotentThroughTheConflictAnswer(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	first, err := w.create(t, "l1", adaProps)
	require.NoError(t, err)
	require.False(t, first.Existed)
	require.Equal(t, first.ContactID, w.link(t, "l1").TargetID)
	require.Equal(t, "h-l1", w.link(t, "l1").SyncedHash)

	// A retry after a lost response creates nothing: the 409 names the contact.
	again, err := w.create(t, "l1", adaProps)
	require.NoError(t, err)
	require.True(t, again.Existed)
	require.Equal(t, first.ContactID, again.ContactID)
	require.Equal(t, 1, w.sandbox.Stats().Contacts)
}

func TestCreateAfterAResponseLostPastTheEffect(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Plan{"crm.create": {Rate5xx: 1, AfterEffect: 1}})
	_, err := w.create(t, "l1", adaProps)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, string(api.ErrorTargetUnavailable), appErr.Type())
	require.Equal(t, 1, w.sandbox.Stats().Contacts, "the CRM created the contact although the answer was lost")
	_, err = w.store.GetLink(context.Background(), "lead-to-crm", "l1", api.SystemCRM)
	require.ErrorIs(t, err, store.ErrNotFound, "not linked until an attempt succeeds")

	require.NoError(t, postPlan(w.url, `{}`))
	r, err := w.create(t, "l1", adaProps)
	require.NoError(t, err)
	require.True(t, r.Existed)
	require.NoError(t, w.update(t, "l1", r.ContactID, adaProps))
	require.Equal(t, 1, w.sandbox.Stats().Contacts, "the retry found it instead of duplicating it")
	require.Equal(t, r.ContactID, w.link(t, "l1").TargetID)
}

func TestFindContactByLinkEmailAndName(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	require.Nil(t, w.find(t, "l1", "ada@example.com").Contact)

	created, err := w.create(t, "l1", adaProps)
	require.NoError(t, err)
	byLink := w.find(t, "l1", "whatever@example.com")
	require.Equal(t, "link", byLink.Via)
	require.Equal(t, created.ContactID, byLink.Contact.ID)
	require.Equal(t, "h-l1", byLink.SyncedHash)

	byEmail := w.find(t, "l2", "ADA@example.com")
	require.Equal(t, "email", byEmail.Via)
	require.Equal(t, created.ContactID, byEmail.Contact.ID)
	require.Empty(t, byEmail.SyncedHash)

	similar := w.find(t, "l3", "countess@example.com")
	require.Nil(t, similar.Contact)
	require.Len(t, similar.Similar, 1, "same name and company, other email")
	require.Equal(t, created.ContactID, similar.Similar[0].ID)
}

func TestFindContactSearchesAgainWhenTheLinkedContactIsGone(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	require.NoError(t, w.store.SaveLink(context.Background(), store.Link{Integration: "lead-to-crm", SourceKey: "l1",
		TargetSystem: api.SystemCRM, TargetID: "999", WorkflowID: "x", SyncedAt: time.Now()}))
	r := w.find(t, "l1", "ada@example.com")
	require.Nil(t, r.Contact)
	require.Empty(t, r.Via)
}

func TestUpdateWritesAndRelinks(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	created, err := w.create(t, "l1", adaProps)
	require.NoError(t, err)
	changed := crm.Properties{crm.PropEmail: "ada@example.com", crm.PropPhone: "+1 555 0100"}
	require.NoError(t, w.update(t, "l9", created.ContactID, changed))
	require.NoError(t, w.update(t, "l9", created.ContactID, changed), "a repeat writes the same values")
	c, err := w.crm.Client.Get(context.Background(), created.ContactID, []string{"phone"})
	require.NoError(t, err)
	require.Equal(t, "+1 555 0100", c.Properties["phone"])
	require.Equal(t, created.ContactID, w.link(t, "l9").TargetID)
	require.Equal(t, "h2-l9", w.link(t, "l9").SyncedHash)
	require.Equal(t, 1, w.sandbox.Stats().Effects["crm.update"], "the repeat changed nothing")
}

func TestUpdateOfAVanishedContactIsRejected(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	err := w.update(t, "l1", "999", adaProps)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, string(api.ErrorTargetRejected), appErr.Type())
}

func TestNotifyPostsOncePerKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Plan{"chat.post": {Rate5xx: 1}})
	in := NotifyInput{Team: "sales", Key: "lead-to-crm:l1/synced/abc", WorkflowID: "lead-to-crm:l1", Text: "Lead l1 synced."}
	_, err := w.env.ExecuteActivity(w.chat.Notify, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, string(api.ErrorTargetUnavailable), appErr.Type(), "a 5xx is retried")
	require.Zero(t, w.sandbox.Stats().Messages)

	require.NoError(t, postPlan(w.url, `{}`))
	v, err := w.env.ExecuteActivity(w.chat.Notify, in)
	require.NoError(t, err)
	var r NotifyResult
	require.NoError(t, v.Get(&r))
	require.True(t, r.Posted)

	v, err = w.env.ExecuteActivity(w.chat.Notify, in)
	require.NoError(t, err)
	require.NoError(t, v.Get(&r))
	require.False(t, r.Posted, "a re-run finds the message delivered")
	st := w.sandbox.Stats()
	require.Equal(t, 1, st.Messages)
	require.Zero(t, st.DuplicateMessages)
}

func TestNotifyLinksToTheItemInTheUI(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	_, err := w.env.ExecuteActivity(w.chat.Notify, NotifyInput{Team: "sales", Key: "k", WorkflowID: "lead-to-crm:a b", Text: "hi"})
	require.NoError(t, err)
	msgs := w.messages(t)
	require.Len(t, msgs, 1)
	require.Equal(t, "hi\n<http://ui/namespaces/default/workflows/lead-to-crm:a%20b|Open in Temporal UI>", msgs[0].Text,
		"the message links to the item in the Temporal UI")
}

// messages reads the chat messages the sandbox accepted.
func (w *world) messages(t *testing.T) []struct{ Team, Text string } {
	t.Helper()
	resp, err := http.Get(w.url + "/_sandbox/messages")
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct{ Messages []struct{ Team, Text string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Messages
}

func TestAlertsOfOneTeamAndKindPostAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	since := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	alert := func(n int) NotifyResult {
		t.Helper()
		in := NotifyInput{Team: "sales", Key: fmt.Sprintf("lead-to-crm:l%d/r/raised", n), WorkflowID: fmt.Sprintf("lead-to-crm:l%d", n),
			Text: fmt.Sprintf("lead-to-crm:l%d waits", n), Digest: &Digest{Kind: "TargetUnavailable", Since: since.Add(time.Duration(n) * time.Minute),
				List: "signals list --exception TargetUnavailable --status Failed"}}
		v, err := w.env.ExecuteActivity(w.chat.Notify, in)
		require.NoError(t, err)
		var r NotifyResult
		require.NoError(t, v.Get(&r))
		return r
	}
	require.True(t, alert(1).Posted, "the first alert goes out at once")
	for n := 2; n <= 50; n++ {
		r := alert(n)
		require.False(t, r.Posted, "an outage storm: alert %d waits for the next message", n)
		require.WithinDuration(t, time.Now().Add(time.Hour), r.DeferredUntil, time.Minute)
	}
	require.Len(t, w.messages(t), 1, "one message for 50 alerts within the interval")

	// An hour later, the first alert asked again carries all the others.
	_, err := w.pool.Exec(context.Background(), `UPDATE notification_digests SET last_posted_at = last_posted_at - interval '61 minutes'`)
	require.NoError(t, err)
	r := alert(2)
	require.True(t, r.Posted)
	msgs := w.messages(t)
	require.Len(t, msgs, 2)
	require.Contains(t, msgs[1].Text, "lead-to-crm:l2 waits\n…and 48 more waiting on TargetUnavailable for team sales, the oldest since 2026-11-27T09:03:00Z: `signals list --exception TargetUnavailable --status Failed`")
	for n := 3; n <= 50; n++ {
		r := alert(n)
		require.False(t, r.Posted, "alert %d was covered by that message", n)
		require.True(t, r.DeferredUntil.IsZero())
	}
	require.Len(t, w.messages(t), 2)

	// Another kind, or another team, is not held back.
	in := NotifyInput{Team: "sales", Key: "other-kind", WorkflowID: "lead-to-crm:x", Text: "x", Digest: &Digest{Kind: "ConsentMissing", Since: since}}
	v, err := w.env.ExecuteActivity(w.chat.Notify, in)
	require.NoError(t, err)
	var other NotifyResult
	require.NoError(t, v.Get(&other))
	require.True(t, other.Posted)
}

func TestAFailedAlertDoesNotHoldTheNextBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Plan{"chat.post": {Down: true}})
	in := NotifyInput{Team: "finance", Key: "a1", WorkflowID: "invoice-to-billing:1", Text: "waits", Digest: &Digest{Kind: "ApprovalRequired", Since: time.Now()}}
	_, err := w.env.ExecuteActivity(w.chat.Notify, in)
	require.Error(t, err)
	require.NoError(t, postPlan(w.url, `{}`))
	v, err := w.env.ExecuteActivity(w.chat.Notify, in)
	require.NoError(t, err)
	var r NotifyResult
	require.NoError(t, v.Get(&r))
	require.True(t, r.Posted, "the slot the failed post took was given back")
}

func TestSpineBeginRecordsAndReturnsThePolicy(t *testing.T) {
	t.Parallel()
	st := store.New(storetest.NewPool(t))
	policy := Policy{Operators: map[string][]string{"sales": {"alice"}}, Targets: map[string]TargetPolicy{"crm": {Timeout: time.Second, RetryWindow: time.Minute}}}
	s := &Spine{Store: st, Policy: policy}
	ev := store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:l1", RunID: "r", Seq: 1, At: time.Now().UTC(), Actor: "system", Action: "accepted", ToStatus: "Pending"}
	r, err := s.Begin(context.Background(), BeginInput{Events: []store.AuditEvent{ev}})
	require.NoError(t, err)
	require.Equal(t, policy, r.Policy)
	require.NoError(t, s.RecordAudit(context.Background(), RecordAuditInput{Events: []store.AuditEvent{ev}}), "a repeat is harmless")
	trail, err := st.AuditTrail(context.Background(), "lead-to-crm:l1")
	require.NoError(t, err)
	require.Len(t, trail, 1)
}

func postPlan(url, plan string) error {
	resp, err := http.Post(url+"/_sandbox/faults", "application/json", strings.NewReader(plan))
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func TestNotifyWhileAnotherAttemptSendsIsRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	in := NotifyInput{Team: "sales", Key: "lead-to-crm:l1/synced/x", WorkflowID: "lead-to-crm:l1", Text: "hi"}
	c, err := w.store.ClaimNotification(context.Background(), in.Key, in.Team, in.WorkflowID, time.Minute)
	require.NoError(t, err)
	require.Equal(t, store.Claimed, c, "another attempt holds it")
	_, err = w.env.ExecuteActivity(w.chat.Notify, in)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.False(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), "another attempt is sending")
	require.Zero(t, w.sandbox.Stats().Messages, "nothing was posted twice")
}

func TestConcurrentMergesIntoOneContactKeepEveryEmail(t *testing.T) {
	t.Parallel()
	w := newWorld(t, emulator.Plan{"crm.get": {Latency: emulator.Duration(30 * time.Millisecond)}})
	created, err := w.create(t, "l1", adaProps)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			errs[i] = w.crm.MergeContact(context.Background(), UpdateContactInput{Integration: "lead-to-crm",
				SourceKey: fmt.Sprintf("twin-%d", i), WorkflowID: "wf", ContactID: created.ContactID, Properties: adaProps,
				Hash: "h", AddEmail: fmt.Sprintf("twin%d@example.com", i)})
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	c, err := w.crm.Client.Get(context.Background(), created.ContactID, []string{crm.PropEmail, crm.PropAdditionalEmails})
	require.NoError(t, err)
	require.Equal(t, "ada@example.com", c.Properties[crm.PropEmail], "the contact keeps its primary email")
	for i := range errs {
		require.Contains(t, c.Properties[crm.PropAdditionalEmails], fmt.Sprintf("twin%d@example.com", i), "no merge lost another's email")
	}
}

func TestTwoLeadsForOnePersonAtOnceMakeOneContactAndADuplicate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	// The first lead claims the person and finds nothing.
	first := w.find(t, "twin-1", "ada@example.com")
	require.Nil(t, first.Contact)
	require.Empty(t, first.Similar)

	// The second, a moment later and before the first created its contact, waits.
	_, err := w.env.ExecuteActivity(w.crm.FindContact, FindContactInput{Integration: "lead-to-crm", SourceKey: "twin-2", Email: "countess@example.com",
		FirstName: "Ada", LastName: "Lovelace", Company: "Engines", Properties: []string{"email", "firstname"}})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, string(api.ErrorBusy), appErr.Type())
	require.False(t, appErr.NonRetryable(), "it looks again")

	// Once the first created its contact, the second finds it as a likely duplicate.
	created, err := w.create(t, "twin-1", adaProps)
	require.NoError(t, err)
	second := w.find(t, "twin-2", "countess@example.com")
	require.Nil(t, second.Contact)
	require.Len(t, second.Similar, 1)
	require.Equal(t, created.ContactID, second.Similar[0].ID)
	require.Equal(t, 1, w.sandbox.Stats().Contacts)
}

func TestAnUpdateWhoseReadFailedOnlyReadsAgain(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	companies := &Companies{Client: crm.New(w.url, "tok", rest.HTTPClient(2*time.Second, 0)), Store: w.store}
	created, err := companies.Client.CreateCompany(context.Background(), crm.Properties{"name": "Acme"})
	require.NoError(t, err)
	update := func(env *testsuite.TestActivityEnvironment) crm.Company {
		env.RegisterActivity(companies)
		v, err := env.ExecuteActivity(companies.UpdateCompany, UpdateCompanyInput{CompanyID: created.ID,
			Properties: crm.Properties{"name": "Acme GmbH"}, Read: []string{"name"}})
		require.NoError(t, err)
		var c crm.Company
		require.NoError(t, v.Get(&c))
		return c
	}
	writes := func() int { return w.sandbox.Stats().Requests["crm.companies.update"] }

	var suite testsuite.WorkflowTestSuite
	require.Equal(t, "Acme GmbH", update(suite.NewTestActivityEnvironment()).Properties["name"])
	require.Equal(t, 1, writes())

	retry := suite.NewTestActivityEnvironment()
	retry.SetHeartbeatDetails(writtenMarker) // an attempt whose write took effect, then its read failed
	require.Equal(t, "Acme GmbH", update(retry).Properties["name"])
	require.Equal(t, 1, writes(), "the write is not sent again")
}

func TestTriageCompaniesReadsSeveralPagesPerCall(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	polls := &CompanyPolls{Client: crm.New(w.url, "tok", rest.HTTPClient(2*time.Second, 0)), Store: w.store}
	for i := range 25 {
		_, err := polls.Client.CreateCompany(context.Background(), crm.Properties{"name": fmt.Sprint("Co ", i), crm.PropCustomerID: fmt.Sprintf("C-%02d", i)})
		require.NoError(t, err)
	}
	in := TriageCompaniesInput{Integration: "customer-sync", Properties: map[string]string{"legalName": "name"}, Limit: 10, Pages: 2}
	first, err := polls.TriageCompanies(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, 20, first.Seen, "two pages in one call")
	require.Len(t, first.Keys, 20, "never synced: every one needs its item")
	require.False(t, first.Done)
	in.After = first.Next
	remaining, err := polls.TriageCompanies(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, 5, remaining.Seen)
	require.True(t, remaining.Done)

	in.After, in.Paged = "", crm.MaxSearchResults-15
	capped, err := polls.TriageCompanies(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, 10, capped.Seen, "a call stops before the query would page past HubSpot's cap")
}
