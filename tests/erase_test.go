package tests

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// rowsHolding counts, in every text and JSON column of every table of the
// stack's database, the rows holding s in any case: a table added later is
// searched as well.
func (s *env) rowsHolding(t *testing.T, text string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	s.db(t)
	rows, err := s.pool.Query(ctx, `SELECT c.table_name, c.column_name FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
		WHERE c.table_schema = current_schema() AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')`)
	require.NoError(t, err)
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var c [2]string
		return c, r.Scan(&c[0], &c[1])
	})
	require.NoError(t, err)
	require.NotEmpty(t, cols)
	out := map[string]int64{}
	for _, c := range cols {
		var n int64
		require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{c[0]}.Sanitize()+
			` WHERE strpos(lower(`+pgx.Identifier{c[1]}.Sanitize()+`::text), lower($1)) > 0`, text).Scan(&n))
		if n > 0 {
			out[c[0]+"."+c[1]] = n
		}
	}
	return out
}

// requireGoneFromTemporal waits until Temporal no longer knows the workflow.
// Temporal deletes once its queues acknowledged the run's close, which they
// do every 30 seconds or so.
func (s *env) requireGoneFromTemporal(t *testing.T, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := s.Client.DescribeWorkflowExecution(context.Background(), id, "")
		var notFound *serviceerror.NotFound
		return errors.As(err, &notFound)
	}, 2*waitFor, 200*time.Millisecond, "%s is still in Temporal", id)
}

var erasureIDPattern = regexp.MustCompile(`erasure:[0-9a-f-]{36}`)

// TestErasePersonalData erases a person who has a synced lead and a second
// lead waiting for consent: the waiting item is cancelled first, both
// items' executions are deleted, no row of any table holds the address or
// the name any more, the erasure is audited without the address, and a
// second run finds nothing.
func TestErasePersonalData(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "erase")
	email := "Erase.Me." + key + "@Example.com"
	lower := strings.ToLower(email)

	synced := lead(key + "-a")
	synced.Email = email
	code, body := shared.post(t, "/v1/leads", synced, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	syncedID := api.ItemID(api.IntegrationLeadToCRM, synced.ID)
	r := shared.waitResult(t, syncedID)
	require.Equal(t, api.StatusSynced, r.Status)
	contactID := r.ExternalIDs[string(api.ExternalCRMContact)]
	require.NotEmpty(t, contactID)

	waiting := lead(key + "-b")
	waiting.Email, waiting.LastName, waiting.Consent = lower, synced.LastName, false
	code, body = shared.post(t, "/v1/leads", waiting, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	waitingID := api.ItemID(api.IntegrationLeadToCRM, waiting.ID)
	require.Equal(t, api.ConsentMissing, shared.waitStatus(t, waitingID, api.StatusBlocked).Exception.Kind)
	require.NotEmpty(t, shared.rowsHolding(t, email), "the synced lead's link holds the address")

	// carol decides for finance, not for sales, whose leads these are.
	_, stderr, code := shared.signals(t, "", "erase", "--email", lower, "--as", "carol", "--reason", "request #1", "--yes")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "carol is not an operator of team sales")
	// Nobody answers, and --yes was not given: nothing is erased unasked.
	_, stderr, code = shared.signals(t, "", "erase", "--email", lower, "--as", "alice", "--reason", "request #1")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "pass --yes")
	_, stderr, code = shared.signals(t, "", "erase", "--as", "alice", "--reason", "request #1")
	require.Equal(t, 2, code, "no address is bad usage: %s", stderr)

	out, stderr, code := shared.signals(t, "", "erase", "--email", email, "--as", "alice", "--dry-run")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, syncedID)
	require.Contains(t, out, waitingID)
	require.Contains(t, out, "external_links")
	require.Contains(t, out, "dry run: nothing was changed")
	require.NotContains(t, strings.ToLower(out), lower, "the address is never printed")
	require.Equal(t, api.StatusBlocked, shared.waitStatus(t, waitingID, api.StatusBlocked).Status, "a dry run changes nothing")
	require.NotEmpty(t, shared.rowsHolding(t, email), "a dry run changes nothing")

	out, stderr, code = shared.signals(t, "", "erase", "--email", lower, "--as", "alice", "--reason", "erasure request from "+email+", ticket 42", "--yes")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, stderr)
	require.Contains(t, out, "cancelled first ("+waitingID+")")
	require.Contains(t, out, "2 execution(s) deleted")
	require.Contains(t, out, "crm "+contactID, "the CRM contact is named for erasing there")
	require.NotContains(t, strings.ToLower(out+stderr), lower)

	shared.requireGoneFromTemporal(t, syncedID)
	shared.requireGoneFromTemporal(t, waitingID)
	trail := shared.auditTrail(t, waitingID)
	require.Contains(t, transitions(trail), "cancelled Blocked→Cancelled system", "the waiting item was cancelled before it was deleted")
	last := trail[len(trail)-1]
	require.Equal(t, "personal_data_erased", last.Action)
	require.Equal(t, "alice", last.Actor)

	require.Empty(t, shared.rowsHolding(t, email), "no row of any table holds the address")
	require.Empty(t, shared.rowsHolding(t, synced.LastName), "nor the person's name")

	id := erasureIDPattern.FindString(out)
	require.NotEmpty(t, id, out)
	audit := shared.auditTrail(t, id)
	require.Len(t, audit, 1)
	require.Equal(t, "alice", audit[0].Actor)
	require.Equal(t, "erasure request from [erased], ticket 42", audit[0].Reason)
	require.Equal(t, "an email address", audit[0].Details["subject"])
	require.ElementsMatch(t, []any{syncedID, waitingID}, audit[0].Details["items"])
	require.Equal(t, []any{waitingID}, audit[0].Details["cancelled"])
	require.Positive(t, audit[0].Details["rows"].(map[string]any)["external_links deleted"])

	// signals show still tells the item's story, from the audit trail.
	out, stderr, code = shared.signals(t, "", "show", syncedID)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "personal_data_erased")

	out, stderr, code = shared.signals(t, "", "erase", "--email", email, "--as", "alice", "--reason", "asked again", "--yes")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, stderr)
	require.Contains(t, out, "Nothing left to erase")
}

// TestEraseKeepsTheBillingTrail erases a person with a billed invoice and
// a lead: erasing takes an operator of both owning teams; the invoice keeps
// its amounts, lines, status and Stripe references, so syncing it again
// bills nothing twice.
func TestEraseKeepsTheBillingTrail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	id := uniqueKey(t, "INV-erase")
	email := "Billing." + id + "@Acme.example"

	// The person is also a lead, synced; Temporal's retention has deleted
	// that item's execution by the time the erasure comes.
	person := lead(uniqueKey(t, "erase-billed"))
	person.Email = strings.ToLower(email)
	code, body := shared.post(t, "/v1/leads", person, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	leadID := api.ItemID(api.IntegrationLeadToCRM, person.ID)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, leadID).Status)
	_, err := shared.Client.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace: shared.Namespace(), WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: leadID}})
	require.NoError(t, err)

	inv := store.Invoice{ID: id, CustomerID: "C-" + id, CustomerName: "Acme " + id, CustomerEmail: email, Currency: "eur",
		DueDate: time.Now().UTC().AddDate(0, 0, 30).Truncate(24 * time.Hour), Status: store.InvoiceReady,
		Lines: []store.InvoiceLine{{LineNo: 1, Description: "Consulting", Quantity: 3, UnitAmount: 15000}}}
	require.NoError(t, shared.db(t).InsertInvoice(ctx, inv))
	wf := shared.syncInvoice(t, id)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, wf).Status)
	billed := shared.storedInvoice(t, id)
	require.Equal(t, store.InvoiceBilled, billed.Status)
	require.Equal(t, 1, shared.stripeCreates(t, wf))
	stripeLink, err := shared.db(t).GetLink(ctx, api.IntegrationInvoiceToBilling, "customer:"+inv.CustomerID, api.SystemStripe)
	require.NoError(t, err, "billing links the Stripe customer")
	shared.requireGoneFromTemporal(t, leadID)
	require.NotEmpty(t, shared.rowsHolding(t, person.LastName), "the lead's link outlives its execution")

	_, stderr, code := shared.signals(t, "", "erase", "--email", email, "--as", "carol", "--reason", "customer asked", "--yes")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "carol is not an operator of team sales", "the lead is sales's")
	require.Equal(t, email, shared.storedInvoice(t, id).CustomerEmail, "a refusal erases nothing")

	both := "SIGNALBOX_OPERATORS=sales=alice,bob,erin;finance=carol,erin;sales-ops=olga;sales-dach=dieter"
	out, stderr, code := shared.signalsWith(t, []string{both}, "erase", "--email", email, "--as", "erin", "--reason", "customer asked", "--yes")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, stderr)
	require.Contains(t, out, "stripe customer "+billed.StripeCustomerID, "Stripe's copy is named for erasing there")
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(leadID)+`\s+the person's record\s+0\s+no execution left \(retention\)`), out)
	shared.requireGoneFromTemporal(t, wf)
	require.Empty(t, shared.rowsHolding(t, email))
	require.Empty(t, shared.rowsHolding(t, person.LastName), "the link of the lead Temporal had forgotten is erased too")

	erased := shared.storedInvoice(t, id)
	require.Equal(t, store.Erased, erased.CustomerEmail)
	erased.CustomerEmail, erased.Version = billed.CustomerEmail, billed.Version
	require.Equal(t, billed, erased, "amounts, lines, status, billed_by/ref and the Stripe IDs are as they were")
	link, err := shared.db(t).GetLink(ctx, api.IntegrationInvoiceToBilling, "customer:"+inv.CustomerID, api.SystemStripe)
	require.NoError(t, err)
	require.Equal(t, stripeLink.TargetID, link.TargetID, "the billing link stays")

	// Synced again, the invoice (without an address to bill) waits for
	// finance instead of billing; cancelled, it stays billed, once.
	again := shared.syncInvoice(t, id)
	require.Equal(t, wf, again)
	st := shared.waitStatus(t, again, api.StatusBlocked)
	require.Equal(t, api.ValidationFailed, st.Exception.Kind)
	require.Contains(t, st.Exception.Details, "customerEmail")
	_, stderr, code = shared.signals(t, "", "cancel", again, "--as", "carol", "--reason", "the customer's data was erased")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusCancelled, shared.waitResult(t, again).Status)
	final := shared.storedInvoice(t, id)
	require.Equal(t, store.InvoiceBilled, final.Status, "a billed invoice stays billed")
	require.Equal(t, billed.BilledBy, final.BilledBy)
	require.Equal(t, billed.BilledRef, final.BilledRef)
	require.Equal(t, billed.StripeInvoiceID, final.StripeInvoiceID)
	require.Equal(t, billed.Lines, final.Lines)
	require.Equal(t, 1, shared.stripeCreates(t, wf), "one Stripe invoice, before and after the erasure")
}

// TestEraseFindsEscapedAddresses: the Temporal SDK's JSON encoder writes "&"
// as "\u0026", so a lead from tom&jerry2@… is stored in its history as
// tom\u0026jerry2@…. Waiting for consent, no row of PostgreSQL names it: the
// history is the only copy, and erase finds it there.
func TestEraseFindsEscapedAddresses(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "erase-amp")
	email := "tom&jerry2." + key + "@example.com"

	waiting := lead(key)
	waiting.Email, waiting.Consent = email, false
	code, body := shared.post(t, "/v1/leads", waiting, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := api.ItemID(api.IntegrationLeadToCRM, waiting.ID)
	require.Equal(t, api.ConsentMissing, shared.waitStatus(t, id, api.StatusBlocked).Exception.Kind)
	require.Empty(t, shared.rowsHolding(t, email), "no row names the address: only the history holds it")

	out, stderr, code := shared.signals(t, "", "erase", "--email", email, "--as", "alice", "--dry-run")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, stderr)
	require.NotContains(t, out, "Nothing left to erase")
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(id)+`\s+the person's record\s+1\s+Blocked \(running\)`), out)

	out, stderr, code = shared.signals(t, "", "erase", "--email", strings.ToUpper(email), "--as", "alice", "--reason", "request #43", "--yes")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, stderr)
	require.Contains(t, out, "cancelled first ("+id+")")
	shared.requireGoneFromTemporal(t, id)

	out, stderr, code = shared.signals(t, "", "erase", "--email", email, "--as", "alice", "--reason", "asked again", "--yes")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, stderr)
	require.Contains(t, out, "Nothing left to erase")
}

// TestEraseLeavesOtherPeoplesItemsAlone: grace's lead waits on
// DuplicateSuspected because the CRM contact it found, same name and
// company, is ada's: its history holds ada's address. Erasing ada cancels
// and deletes nothing of grace's: it is refused, changing nothing, until
// grace's lead is decided; then ada's items are erased, and grace's ended
// item only loses its execution (its history holds ada's address), never
// cancelled, its link kept.
func TestEraseLeavesOtherPeoplesItemsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := uniqueKey(t, "erase-mention")

	ada := lead(key + "-ada")
	code, body := shared.post(t, "/v1/leads", ada, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	adaID := api.ItemID(api.IntegrationLeadToCRM, ada.ID)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, adaID).Status)

	grace := lead(key + "-grace")
	grace.LastName = ada.LastName // same name and company, another email
	code, body = shared.post(t, "/v1/leads", grace, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	graceID := api.ItemID(api.IntegrationLeadToCRM, grace.ID)
	require.Equal(t, api.DuplicateSuspected, shared.waitStatus(t, graceID, api.StatusBlocked).Exception.Kind)

	out, stderr, code := shared.signals(t, "", "erase", "--email", ada.Email, "--as", "alice", "--reason", "request #44", "--yes")
	require.Equal(t, 1, code, "stdout: %s\nstderr: %s", out, stderr)
	require.Contains(t, out, "mention this person — decide them first (signals show "+graceID+"), then run erase again")
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(adaID)+`\s+the person's record`), out)
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(graceID)+`\s+mentions the person\s+1\s+Blocked \(running\)\s+not cancelled, not deleted`), out)
	require.Contains(t, stderr, "refused, nothing was changed")
	// Nothing changed anywhere.
	require.Equal(t, api.DuplicateSuspected, shared.waitStatus(t, graceID, api.StatusBlocked).Exception.Kind)
	_, err := shared.Client.DescribeWorkflowExecution(ctx, adaID, "")
	require.NoError(t, err, "ada's execution is still there")
	_, err = shared.db(t).GetLink(ctx, api.IntegrationLeadToCRM, ada.ID, api.SystemCRM)
	require.NoError(t, err, "ada's link is still there")
	require.NotContains(t, transitions(shared.auditTrail(t, graceID)), "cancelled Blocked→Cancelled system")

	// grace's lead is decided: another person; it creates its own contact.
	_, stderr, code = shared.signals(t, "", "approve", graceID, "--as", "alice", "--choice", "create", "--reason", "two people")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, graceID).Status)

	out, stderr, code = shared.signals(t, "", "erase", "--email", ada.Email, "--as", "alice", "--reason", "request #44", "--yes")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, stderr)
	require.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(graceID)+`\s+mentions the person\s+1\s+closed\s+another person's item, ended`), out)
	require.Contains(t, out, "0 item(s) cancelled first")
	shared.requireGoneFromTemporal(t, adaID)
	shared.requireGoneFromTemporal(t, graceID)
	require.Empty(t, shared.rowsHolding(t, ada.Email))

	trail := shared.auditTrail(t, graceID)
	for _, tr := range transitions(trail) {
		require.NotContains(t, tr, "Cancelled", "grace's lead was never cancelled")
	}
	last := trail[len(trail)-1]
	require.Equal(t, "personal_data_erased", last.Action)
	require.Equal(t, "mentions the person", last.Details["holds"])
	require.Equal(t, false, last.Details["cancelled"])
	link, err := shared.db(t).GetLink(ctx, api.IntegrationLeadToCRM, grace.ID, api.SystemCRM)
	require.NoError(t, err, "grace's link stays")
	require.Equal(t, grace.Email, link.Baseline["email"].Source)
}
