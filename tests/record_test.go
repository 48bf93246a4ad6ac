package tests

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows"
)

var recordHistories = flag.Bool("record-histories", false, "record the replay histories into workflows/testdata/histories (make record-histories)")

// recordedRoutes route the recorded leads: most to sales, and one lead to
// sales operations' choice.
const recordedRoutes = "sales-dach=country:DE|AT|CH;sales-enterprise=size>=1000;sales=otherwise"

// TestRecordHistories runs every path of every integration on the real stack
// and stores each item's event history, which the workflows package replays
// on every test run: a change to workflow code that would break items already
// running then fails CI. It runs only when asked (make record-histories),
// alone, because it sets sandbox faults. It overwrites the histories it
// records and leaves others: keep a history recorded before a versioned
// change under a name of its own, so the old path stays covered.
func TestRecordHistories(t *testing.T) {
	if !*recordHistories {
		t.Skip("run with -record-histories (make record-histories) to refresh workflows/testdata/histories")
	}
	s := shared
	ctx := context.Background()
	dir := filepath.Join(root, "workflows", "testdata", "histories")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	record := func(name, id string) {
		t.Helper()
		s.recordHistory(t, dir, name, id, "")
	}
	decide := func(args ...string) {
		t.Helper()
		_, stderr, code := s.signals(t, "", args...)
		require.Equal(t, 0, code, stderr)
	}
	start := func(l workflows.Lead) string {
		t.Helper()
		code, body := s.post(t, "/v1/leads", l, nil)
		require.Equal(t, http.StatusAccepted, code, body)
		return body["workflowId"].(string)
	}
	key := func(name string) string { return fmt.Sprintf("rec-%s-%d", name, time.Now().UnixNano()) }

	id := start(lead(key("happy")))
	record("lead-happy", id)

	l := lead(key("consent"))
	l.Consent = false
	id = start(l)
	s.waitStatus(t, id, api.StatusBlocked)
	s.signal(t, id, `"not a decision"`)
	decide("approve", id, "--as", "alice", "--reason", "consent form on file")
	record("lead-blocked-then-approved", id)

	first := lead(key("dup"))
	start(first)
	s.waitResult(t, api.ItemID(api.IntegrationLeadToCRM, first.ID))
	twin := lead(key("dup-twin"))
	twin.LastName = first.LastName
	id = start(twin)
	s.waitStatus(t, id, api.StatusBlocked)
	decide("approve", id, "--as", "bob", "--choice", "merge", "--reason", "same person")
	record("lead-duplicate-merged", id)

	s.setFaults(t, `{"crm.*": {"unauthorized": true}}`)
	id = start(lead(key("auth")))
	s.waitStatus(t, id, api.StatusFailed)
	s.setFaults(t, `{}`)
	decide("retry", id, "--as", "alice", "--reason", "token rotated")
	record("lead-failed-then-retried", id)

	l = lead(key("reject"))
	l.Consent = false
	id = start(l)
	s.waitStatus(t, id, api.StatusBlocked)
	decide("reject", id, "--as", "alice", "--reason", "no consent")
	record("lead-rejected", id)

	inv := key("inv")
	s.invoice(t, inv)
	record("invoice-happy", s.syncInvoice(t, inv))

	inv = key("inv-big")
	s.invoice(t, inv, store.InvoiceLine{LineNo: 1, Description: "Licence", Quantity: 1, UnitAmount: 900_000})
	id = s.syncInvoice(t, inv)
	s.waitStatus(t, id, api.StatusBlocked)
	decide("approve", id, "--as", "carol", "--reason", "contract signed")
	record("invoice-approved", id)

	s.setFaults(t, `{"stripe.*": {"unauthorized": true}}`)
	inv = key("inv-auth")
	s.invoice(t, inv)
	id = s.syncInvoice(t, inv)
	s.waitStatus(t, id, api.StatusFailed)
	s.setFaults(t, `{}`)
	decide("retry", id, "--as", "carol", "--reason", "Stripe key rotated")
	record("invoice-failed-then-retried", id)

	// The paths that change most: a reminder, a deadline, a conflict, a
	// cancellation, a billed invoice's refresh, a re-sync, and routing.
	l = lead(key("remind"))
	l.Consent = false
	id = start(l)
	s.waitStatus(t, id, api.StatusBlocked)
	require.Eventually(t, func() bool { return len(s.messagesAbout(t, "Reminder 1: "+id)) > 0 }, waitFor, 200*time.Millisecond)
	decide("approve", id, "--as", "alice", "--reason", "consent form on file")
	record("lead-reminded-then-approved", id)

	l = lead(key("deadline"))
	l.Consent = false
	record("lead-rejected-at-deadline", start(l))

	l = lead(key("conflict"))
	l.JobTitle = "Engineer"
	s.createContact(t, map[string]string{"email": l.Email, "firstname": l.FirstName, "lastname": l.LastName, "jobtitle": "CTO"})
	id = start(l)
	s.waitStatus(t, id, api.StatusBlocked)
	decide("approve", id, "--as", "bob", "--reason", "the customer says Engineer")
	record("lead-conflict-approved", id)

	l = lead(key("cancel"))
	l.Consent = false
	id = start(l)
	s.waitStatus(t, id, api.StatusBlocked)
	require.NoError(t, s.Client.CancelWorkflow(ctx, id, ""))
	record("lead-cancelled", id)

	l = lead(key("resync"))
	id = start(l)
	s.waitResult(t, id)
	l.Phone = "+44 20 7946 0000"
	record("lead-resynced", start(l))

	l = lead(key("routing"))
	l.Country, l.CompanySize = "CH", 2000
	id = start(l)
	s.waitStatus(t, id, api.StatusBlocked)
	decide("approve", id, "--as", "olga", "--choice", "sales-dach", "--reason", "DACH owns the account")
	record("lead-routing-chosen", id)

	inv = key("inv-refresh")
	s.invoice(t, inv)
	s.waitResult(t, s.syncInvoice(t, inv))
	record("invoice-billed-refresh", s.syncInvoice(t, inv))

	inv = key("inv-late")
	stored := s.invoice(t, inv)
	_, err := s.db(t).UpdateInvoiceHeader(ctx, inv, 0, store.InvoiceHeader{CustomerName: stored.CustomerName,
		CustomerEmail: stored.CustomerEmail, Currency: stored.Currency, DueDate: time.Now().AddDate(0, 0, -1)})
	require.NoError(t, err)
	id = s.syncInvoice(t, inv)
	s.waitStatus(t, id, api.StatusBlocked)
	decide("amend", id, "--as", "carol", "--set", "dueDate="+time.Now().AddDate(0, 1, 0).Format(time.DateOnly), "--reason", "agreed")
	record("invoice-rejected-by-stripe-then-amended", id)
}

// TestRecordCustomerHistories records customer sync's paths, and a poll.
func TestRecordCustomerHistories(t *testing.T) {
	if !*recordHistories {
		t.Skip("run with -record-histories (make record-histories) to refresh workflows/testdata/histories")
	}
	s := shared
	ctx := context.Background()
	dir := filepath.Join(root, "workflows", "testdata", "histories")
	record := func(name, id, runID string) {
		t.Helper()
		s.recordHistory(t, dir, name, id, runID)
	}
	key := func(name string) string { return fmt.Sprintf("rec-%s-%d", name, time.Now().UnixNano()) }
	start := func(id string) (string, string) {
		t.Helper()
		code, body := s.post(t, "/v1/customers/"+id+"/sync", struct{}{}, nil)
		require.Equal(t, http.StatusAccepted, code, body)
		return body["workflowId"].(string), body["runId"].(string)
	}

	id := key("cust-new")
	s.customer(t, id)
	wf, run := start(id)
	record("customer-created", wf, run)

	co := s.companyOf(t, id)
	s.editCustomer(t, id, map[string]string{"domain": "acme.example"})
	s.editCompany(t, co.ID, map[string]string{"industry": "RETAIL", "payment_terms": "net90", "city": "Köln"})
	wf, run = start(id)
	record("customer-edits-by-owner", wf, run)

	s.editCompany(t, co.ID, map[string]string{"name": "ACME Group", "phone": "+49 30 6666"})
	s.editCustomer(t, id, map[string]string{"phone": "+49 30 5555"})
	wf, run = start(id)
	s.waitStatus(t, wf, api.StatusBlocked)
	_, stderr, code := s.signals(t, "", "amend", wf, "--as", "carol", "--set", "legalName=ACME Group", "--set", "phone=+49 30 7777", "--reason", "called them")
	require.Equal(t, 0, code, stderr)
	record("customer-conflict-amended", wf, run)

	s.editCustomer(t, id, map[string]string{"city": "Bonn"})
	s.triggerPoll(t)
	d, err := s.Client.ScheduleClient().GetHandle(ctx, api.ScheduleID(api.IntegrationCustomerSync)).Describe(ctx)
	require.NoError(t, err)
	last := d.Info.RecentActions[len(d.Info.RecentActions)-1].StartWorkflowResult
	record("customer-poll", last.WorkflowID, last.FirstExecutionRunID)
}

// recordHistory waits for a run to end and writes its history to dir/name.json.
func (s *env) recordHistory(t *testing.T, dir, name, id, runID string) {
	t.Helper()
	ctx := context.Background()
	wctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	_ = s.Client.GetWorkflow(wctx, id, runID).Get(wctx, nil) // cancelled items end with an error
	require.NoError(t, wctx.Err(), "%s did not end", id)
	iter := s.Client.GetWorkflowHistory(ctx, id, runID, false, 0)
	h := &historypb.History{}
	for iter.HasNext() {
		e, err := iter.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644))
	// Its workflow ID, which the replay test replays it under.
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".id"), []byte(id+"\n"), 0o644))
	t.Logf("recorded %s: %d events", name, len(h.Events))
}

// TestRecordReconcileHistories records reconcile runs and the item runs they
// start: a lead repaired, a missed payment applied, a total accepted.
func TestRecordReconcileHistories(t *testing.T) {
	if !*recordHistories {
		t.Skip("run with -record-histories (make record-histories) to refresh workflows/testdata/histories")
	}
	s := shared
	dir := filepath.Join(root, "workflows", "testdata", "histories")
	key := func(name string) string { return fmt.Sprintf("rec-%s-%d", name, time.Now().UnixNano()) }
	reconcile := func(integration string) {
		t.Helper()
		_, stderr, code := s.signals(t, "", "reconcile", integration, "--now")
		require.Equal(t, 0, code, stderr)
	}

	leadKey := key("lead-drifted")
	code, body := s.post(t, "/v1/leads", lead(leadKey), nil)
	require.Equal(t, http.StatusAccepted, code, body)
	leadID := api.ItemID(api.IntegrationLeadToCRM, leadKey)
	contact := s.waitResult(t, leadID).ExternalIDs["crm"]
	s.sandboxDo(t, http.MethodPost, "/_sandbox/contacts/"+contact+"/edit", `{"properties": {"firstname": "Adam"}}`)
	reconcile(api.IntegrationLeadToCRM)
	s.recordHistory(t, dir, "reconcile-run", api.ReconcileID(api.IntegrationLeadToCRM), "")
	s.waitStatus(t, leadID, api.StatusSynced)
	s.recordHistory(t, dir, "lead-repaired", leadID, "")

	paid, changed := key("inv-paid"), key("inv-changed")
	for _, id := range []string{paid, changed} {
		s.invoice(t, id)
		s.waitResult(t, s.syncInvoice(t, id))
	}
	paidStripe := s.storedInvoice(t, paid).StripeInvoiceID
	s.setStripeInvoice(t, paidStripe, "paid", time.Time{})
	s.setStripeInvoiceTotal(t, s.storedInvoice(t, changed).StripeInvoiceID, 51000)
	reconcile(api.IntegrationInvoiceToBilling)
	paymentID := api.ItemID(api.IntegrationInvoicePayments, paidStripe)
	s.waitStatus(t, paymentID, api.StatusSynced)
	s.recordHistory(t, dir, "payment-reconciled", paymentID, "")
	changedID := api.ItemID(api.IntegrationInvoiceToBilling, changed)
	s.waitStatus(t, changedID, api.StatusBlocked)
	_, stderr, code := s.signals(t, "", "approve", changedID, "--as", "carol", "--reason", "credit note")
	require.Equal(t, 0, code, stderr)
	s.recordHistory(t, dir, "invoice-amount-accepted", changedID, "")
}
