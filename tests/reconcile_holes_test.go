package tests

// Holes a review of reconciliation and payment status found, by trying them
// as users and attackers would; each test failed before its fix.

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

func TestReconcileHoles(t *testing.T) {
	s := startStack(t, "", "SIGNALBOX_CUSTOMER_SYNC_EVERY=1h", "SIGNALBOX_LEAD_ROUTES=sales-dach=country:DE|AT|CH;sales=otherwise")
	t.Run("a deleted contact resolved by hand is not raised again", func(t *testing.T) { holeLeadResolved(t, s) })
	t.Run("a missing invoice resolved by hand is not raised again", func(t *testing.T) { holeInvoiceResolved(t, s) })
	t.Run("a customer deleted in PostgreSQL does not end the walk", func(t *testing.T) { holeDeletedCustomer(t, s) })
	t.Run("a customer archived on both sides is in sync", func(t *testing.T) { holeArchivedCustomer(t, s) })
	t.Run("a routed lead's repair goes to its team", func(t *testing.T) { holeRoutedRepair(t, s) })
	t.Run("--now follows the nightly run instead of working it twice", func(t *testing.T) { holeScheduledAndNow(t, s) })
	t.Run("an integration without a reconcile run is a usage error", func(t *testing.T) { holeNoReconcile(t, s) })
}

func holeLeadResolved(t *testing.T, s *env) {
	key := uniqueKey(t, "hole-lead")
	code, body := s.post(t, "/v1/leads", lead(key), nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	contact := s.waitResult(t, id).ExternalIDs["crm"]
	s.sandboxDo(t, http.MethodDelete, "/_sandbox/contacts/"+contact, "")

	_, stderr, c := s.signals(t, "", "reconcile", api.IntegrationLeadToCRM, "--now")
	require.Equal(t, 0, c, stderr)
	require.Equal(t, api.MissingInTarget, s.waitStatus(t, id, api.StatusBlocked).Exception.Kind)
	_, stderr, c = s.signals(t, "", "resolve", id, "--as", "alice", "--external-ref", "merged into contact 42 by hand", "--reason", "merged it by hand")
	require.Equal(t, 0, c, stderr)
	require.Equal(t, api.StatusManuallyResolved, s.waitResult(t, id).Status)

	_, stderr, c = s.signals(t, "", "reconcile", api.IntegrationLeadToCRM, "--now")
	require.Equal(t, 0, c, stderr)
	again := s.latestReport(t, api.IntegrationLeadToCRM)
	for _, d := range again.Differences {
		if d.SourceKey == key {
			require.Equal(t, store.DiffAccepted, d.Action, "a contact sales resolved as missing is asked about again: %+v", d)
		}
	}
	require.Zero(t, s.handoffs(t, again.Run.ID, key), "nothing handed to the lead's item")
	require.Equal(t, api.StatusManuallyResolved, s.waitResult(t, id).Status)
}

// handoffs counts what run handed to the item of key.
func (s *env) handoffs(t *testing.T, run int64, key string) int {
	t.Helper()
	var n int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM reconcile_handoffs WHERE run_id = $1 AND source_key = $2`, run, key).Scan(&n))
	return n
}

func holeInvoiceResolved(t *testing.T, s *env) {
	id := uniqueKey(t, "INV-hole")
	s.invoice(t, id)
	require.Equal(t, api.StatusSynced, s.waitResult(t, s.syncInvoice(t, id)).Status)
	s.deleteStripeInvoice(t, s.storedInvoice(t, id).StripeInvoiceID)

	_, stderr, c := s.signals(t, "", "reconcile", api.IntegrationInvoiceToBilling, "--now")
	require.Equal(t, 0, c, stderr)
	item := api.ItemID(api.IntegrationInvoiceToBilling, id)
	require.Equal(t, api.MissingInTarget, s.waitStatus(t, item, api.StatusBlocked).Exception.Kind)
	_, stderr, c = s.signals(t, "", "resolve", item, "--as", "carol", "--external-ref", "in_manual_hole", "--reason", "billed again by hand")
	require.Equal(t, 0, c, stderr)
	require.Equal(t, api.StatusManuallyResolved, s.waitResult(t, item).Status)

	_, stderr, c = s.signals(t, "", "reconcile", api.IntegrationInvoiceToBilling, "--now")
	require.Equal(t, 0, c, stderr)
	again := s.latestReport(t, api.IntegrationInvoiceToBilling)
	for _, d := range again.Differences {
		if d.SourceKey == id {
			require.Equal(t, store.DiffAccepted, d.Action, "a missing invoice finance resolved is asked about again: %+v", d)
		}
	}
	require.Zero(t, s.handoffs(t, again.Run.ID, id), "nothing handed to the invoice's item")
	require.Equal(t, api.StatusManuallyResolved, s.waitResult(t, item).Status)
}

func holeDeletedCustomer(t *testing.T, s *env) {
	prefix := uniqueKey(t, "CUST-hole-del")
	for i := range 105 {
		s.customer(t, fmt.Sprintf("%s-%03d", prefix, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	_, stderr, code, err := s.Command(ctx, "", "starter", "customers", "--backfill")
	require.NoError(t, err)
	require.Equal(t, 0, code, stderr)
	links, err := s.db(t).LinksAfter(ctx, api.IntegrationCustomerSync, api.SystemCRM, "", 10_000)
	require.NoError(t, err)
	require.Greater(t, len(links), 100)
	// Finance deletes one customer of the first page; its link stays.
	_, err = s.pool.Exec(ctx, `DELETE FROM customers WHERE id = $1`, links[0].SourceKey)
	require.NoError(t, err)
	// Sales edits the company of the last linked customer.
	last := links[len(links)-1]
	s.editCompany(t, last.TargetID, map[string]string{"industry": "RETAIL"})

	_, stderr, code = s.signals(t, "", "reconcile", api.IntegrationCustomerSync, "--now")
	require.Equal(t, 0, code, stderr)
	rep := s.latestReport(t, api.IntegrationCustomerSync)
	var found bool
	for _, d := range rep.Differences {
		found = found || d.SourceKey == last.SourceKey
	}
	require.True(t, found, "%d linked customers, one deleted: the run compared %d records and never reached %s, whose company was edited",
		len(links), rep.Run.Compared, last.SourceKey)
}

func holeArchivedCustomer(t *testing.T, s *env) {
	id := uniqueKey(t, "CUST-hole-arch")
	s.customer(t, id)
	require.Equal(t, api.StatusSynced, s.syncCustomer(t, id).Status)
	c := s.storedCustomer(t, id)
	_, err := s.db(t).SetCustomerArchived(context.Background(), id, c.Version, true)
	require.NoError(t, err)
	require.Equal(t, api.StatusSynced, s.syncCustomer(t, id).Status)
	require.True(t, s.companyOf(t, id).Archived, "signalbox archived the company, as the README says")

	for range 2 {
		_, stderr, code := s.signals(t, "", "reconcile", api.IntegrationCustomerSync, "--now")
		require.Equal(t, 0, code, stderr)
		for _, d := range s.latestReport(t, api.IntegrationCustomerSync).Differences {
			require.False(t, d.SourceKey == id, "a customer archived on both sides, as signalbox meant, is reported: %+v", d)
		}
	}
}

func holeRoutedRepair(t *testing.T, s *env) {
	key := uniqueKey(t, "hole-dach")
	l := lead(key)
	l.Country = "DE"
	code, body := s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	contact := s.waitResult(t, id).ExternalIDs["crm"]
	synced := s.messagesAbout(t, "Lead "+key+" synced")
	require.Len(t, synced, 1)
	require.Equal(t, "sales-dach", synced[0].Team)
	s.sandboxDo(t, http.MethodPost, "/_sandbox/contacts/"+contact+"/edit", `{"properties": {"firstname": "Adam"}}`)
	_, stderr, c := s.signals(t, "", "reconcile", api.IntegrationLeadToCRM, "--now")
	require.Equal(t, 0, c, stderr)
	s.waitMessage(t, "repaired CRM contact "+contact)
	m := s.messagesAbout(t, "repaired CRM contact "+contact)
	require.Equal(t, "sales-dach", m[0].Team, "the repair of a lead routed to sales-dach is told to %s", m[0].Team)
}

func holeScheduledAndNow(t *testing.T, s *env) {
	key := uniqueKey(t, "hole-sched")
	code, body := s.post(t, "/v1/leads", lead(key), nil)
	require.Equal(t, http.StatusAccepted, code, body)
	contact := s.waitResult(t, api.ItemID(api.IntegrationLeadToCRM, key)).ExternalIDs["crm"]
	s.sandboxDo(t, http.MethodPost, "/_sandbox/contacts/"+contact+"/edit", `{"properties": {"lastname": "Byron"}}`)

	before := len(s.sandboxRequests(t, "crm.batch.read"))
	s.setFaults(t, `{"crm.batch.read": {"latency": "3s"}}`)
	defer s.setFaults(t, `{}`)
	ctx := context.Background()
	triggered := time.Now()
	h := s.Client.ScheduleClient().GetHandle(ctx, api.ReconcileScheduleID(api.IntegrationLeadToCRM))
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var started string
	require.Eventually(t, func() bool {
		d, err := h.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 || d.Info.RecentActions[0].StartWorkflowResult == nil {
			return false
		}
		started = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		return true
	}, waitFor, 100*time.Millisecond)
	// The nightly run is going (its page waits on the CRM): --now follows it.
	require.Eventually(t, func() bool {
		r, err := s.db(t).LatestReconcileRun(ctx, api.IntegrationLeadToCRM)
		return err == nil && r.FinishedAt == nil && r.WorkflowID == started
	}, waitFor, 50*time.Millisecond)
	_, stderr, c := s.signals(t, "", "reconcile", api.IntegrationLeadToCRM, "--now")
	require.Equal(t, 0, c, stderr)
	require.Contains(t, stderr, "following it")
	// --now started no workflow of its own.
	if d, err := s.Client.DescribeWorkflowExecution(ctx, api.ReconcileID(api.IntegrationLeadToCRM), ""); err == nil {
		require.True(t, d.GetWorkflowExecutionInfo().GetStartTime().AsTime().Before(triggered), "--now started workflow %s beside %s", api.ReconcileID(api.IntegrationLeadToCRM), started)
	}
	rep := s.latestReport(t, api.IntegrationLeadToCRM)
	reads := len(s.sandboxRequests(t, "crm.batch.read")) - before
	require.Equal(t, rep.Run.Requests, int64(reads), "run %d records %d requests; the CRM served %d", rep.Run.ID, rep.Run.Requests, reads)
}

func holeNoReconcile(t *testing.T, s *env) {
	_, stderr, code := s.signals(t, "", "reconcile", api.IntegrationInvoicePayments, "--now")
	require.Equal(t, 2, code, "an integration without a reconcile run is a usage error, like an unknown one; got: %s", stderr)
	require.NotContains(t, stderr, "resumes it", "it tells to resume a run that cannot exist: %s", stderr)
}

// A billing re-sync writes "paid" over a webhook's "open" but keeps that
// event's time: a delayed, older payment_failed event then takes the paid
// invoice back to open and tells finance a payment failed.
func TestABillingResyncOfAPaidInvoiceIsNotUndoneByADelayedEvent(t *testing.T) {
	url := webhookIntake(t)
	ctx := context.Background()
	inv := billedInvoice(t, "INV-hole-paid")
	t1 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	fin := stripeEvent(t, "evt_fin_"+inv.ID, "invoice.finalized", inv.StripeInvoiceID, inv.ID, "open", t1)
	code, answer := deliver(t, url, fin, signed(fin, time.Now()))
	handed(t, code, answer, inv.StripeInvoiceID)

	// Paid in Stripe at t3; its webhook is late. A re-sync reads Stripe's status.
	t3 := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	shared.setStripeInvoice(t, inv.StripeInvoiceID, "paid", t3)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, shared.syncInvoice(t, inv.ID)).Status)
	st, err := shared.db(t).InvoicePaymentStatus(ctx, inv.ID)
	require.NoError(t, err)
	require.Equal(t, store.PaymentStatus{Status: "paid"}, st, "paid, as billing read it: no event's time")

	// Stripe's retried delivery of a failed attempt made before the payment.
	failed := stripeEvent(t, "evt_failed_"+inv.ID, "invoice.payment_failed", inv.StripeInvoiceID, inv.ID, "open", t3.Add(-20*time.Minute))
	code, answer = deliver(t, url, failed, signed(failed, time.Now()))
	handed(t, code, answer, inv.StripeInvoiceID)
	st, err = shared.db(t).InvoicePaymentStatus(ctx, inv.ID)
	require.NoError(t, err)
	require.Equal(t, "paid", st.Status, "a paid invoice went back to %s", st.Status)
	require.Empty(t, shared.messagesAbout(t, "A payment of invoice "+inv.ID), "finance is told a paid invoice's payment failed")
}
