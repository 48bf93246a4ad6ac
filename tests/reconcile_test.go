package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// Reconcile runs compare every record of an integration, so these tests run
// on a stack of their own: the shared stack's other tests' records would be
// found and handed to their items.
func TestReconciliation(t *testing.T) {
	s := startStack(t, "", "SIGNALBOX_CUSTOMER_SYNC_EVERY=1h")
	t.Run("a contact edited or deleted in the CRM is reported, repaired or asked about", func(t *testing.T) { reconcileLeads(t, s) })
	t.Run("a company created in the CRM is present in the target only", func(t *testing.T) { reconcileCompanies(t, s) })
	t.Run("a run stopped midway resumes where it stopped", func(t *testing.T) { reconcileResumes(t, s) })
	t.Run("a payment whose webhook never came, a changed total and a deleted invoice are found", func(t *testing.T) { reconcileInvoices(t, s) })
}

func reconcileLeads(t *testing.T, s *env) {
	edited, deleted := uniqueKey(t, "rec-edited"), uniqueKey(t, "rec-deleted")
	for _, key := range []string{edited, deleted} {
		code, body := s.post(t, "/v1/leads", lead(key), nil)
		require.Equal(t, http.StatusAccepted, code, body)
	}
	editedID, deletedID := api.ItemID(api.IntegrationLeadToCRM, edited), api.ItemID(api.IntegrationLeadToCRM, deleted)
	editedContact := s.waitResult(t, editedID).ExternalIDs["crm"]
	deletedContact := s.waitResult(t, deletedID).ExternalIDs["crm"]

	// Behind signalbox's back: the form owns the first name (owner-wins), so
	// the edit is repaired; the other contact is deleted.
	s.sandboxDo(t, http.MethodPost, "/_sandbox/contacts/"+editedContact+"/edit", `{"properties": {"firstname": "Adam"}}`)
	s.sandboxDo(t, http.MethodDelete, "/_sandbox/contacts/"+deletedContact, "")

	out, stderr, code := s.signals(t, "", "reconcile", api.IntegrationLeadToCRM, "--now")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "drifted")
	require.Contains(t, out, "missing-in-target")
	t.Logf("signals reconcile %s --now:\n%s", api.IntegrationLeadToCRM, out)

	rep := s.latestReport(t, api.IntegrationLeadToCRM)
	require.Equal(t, int64(2), rep.Run.Compared)
	require.Equal(t, map[string]int64{api.ClassInSync: 0, api.ClassDrifted: 1, api.ClassMissing: 1}, rep.Counts)
	require.Len(t, rep.Differences, 2, "the first name, and the contact missing")
	// Oldest first; within a page, by source key.
	missing, drift := rep.Differences[0], rep.Differences[1]
	require.Equal(t, edited, drift.SourceKey)
	require.Equal(t, "firstName", drift.Field)
	require.Equal(t, "web-form", drift.Owner)
	require.Equal(t, "Ada", *drift.Source)
	require.Equal(t, "Adam", *drift.Target)
	require.Equal(t, "Ada", *drift.Baseline)
	require.Equal(t, store.DiffRepair, drift.Action)
	require.Equal(t, store.Difference{Seq: missing.Seq, FoundAt: missing.FoundAt, SourceKey: deleted, TargetID: deletedContact,
		Class: api.ClassMissing, Action: store.DiffAsk}, missing)

	// The repair ran through the lead's own sync, audited with the run's ID.
	require.Eventually(t, func() bool {
		c := s.contactsWithEmail(t, lead(edited).Email)
		return len(c) == 1 && c[0].Properties["firstname"] == "Ada"
	}, waitFor, 100*time.Millisecond, "the form's first name written back")
	s.waitStatus(t, editedID, api.StatusSynced)
	var repaired bool
	for _, e := range s.auditTrail(t, editedID) {
		repaired = repaired || (e.Action == "repair" && fmt.Sprint(e.Details["reconcileRun"]) == fmt.Sprint(rep.Run.ID))
	}
	require.True(t, repaired, "the item's audit trail names the reconcile run")

	// The deleted contact waits for sales; rejecting leaves it deleted, and
	// the next run does not raise it again.
	st := s.waitStatus(t, deletedID, api.StatusBlocked)
	require.Equal(t, api.MissingInTarget, st.Exception.Kind)
	_, stderr, code = s.signals(t, "", "reject", deletedID, "--as", "alice", "--reason", "deleted on request of the person")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusRejected, s.waitResult(t, deletedID).Status)
	for _, c := range s.contactsWithEmail(t, lead(deleted).Email) {
		require.Equal(t, deletedContact, c.ID, "no contact created again (the sandbox lists the deleted one too)")
	}

	_, stderr, code = s.signals(t, "", "reconcile", api.IntegrationLeadToCRM, "--now")
	require.Equal(t, 0, code, stderr)
	again := s.latestReport(t, api.IntegrationLeadToCRM)
	require.NotEqual(t, rep.Run.ID, again.Run.ID)
	require.Equal(t, map[string]int64{api.ClassInSync: 1}, again.Counts, "repaired, and the deleted contact forgotten")

	out, stderr, code = s.signals(t, "", "reconcile", "show", "--run", fmt.Sprint(rep.Run.ID), "-o", "json")
	require.Equal(t, 0, code, stderr)
	var shown store.ReconcileReport
	require.NoError(t, json.Unmarshal([]byte(out), &shown))
	require.Equal(t, rep.Counts, shown.Counts, "reports stay")
}

func reconcileCompanies(t *testing.T, s *env) {
	name := uniqueKey(t, "Globex")
	c := s.createCompany(t, map[string]string{"name": name})
	cid := uniqueKey(t, "CUST-dup")
	s.customer(t, cid)
	s.syncCustomer(t, cid)
	linked := s.companyOf(t, cid)
	dup := s.createCompany(t, map[string]string{"name": "Acme again", "signalbox_customer_id": cid})
	// A customer never synced (its poll has not run yet).
	unsynced := uniqueKey(t, "CUST-new")
	s.customer(t, unsynced)

	out, stderr, code := s.signals(t, "", "reconcile", api.IntegrationCustomerSync, "--now")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "target-only")
	require.Contains(t, out, "duplicate-in-target")
	rep := s.latestReport(t, api.IntegrationCustomerSync)
	byTarget := map[string]store.Difference{}
	for _, d := range rep.Differences {
		byTarget[d.TargetID] = d
	}
	require.Equal(t, api.ClassTargetOnly, byTarget[c.ID].Class)
	require.Equal(t, name, *byTarget[c.ID].Target)
	require.Equal(t, api.ClassDuplicate, byTarget[dup.ID].Class)
	require.Equal(t, cid, byTarget[dup.ID].SourceKey)
	require.Equal(t, linked.ID, *byTarget[dup.ID].Source)
	require.NotContains(t, byTarget, linked.ID, "the linked company is in sync")
	var notSynced []store.Difference
	for _, d := range rep.Differences {
		if d.SourceKey == unsynced {
			notSynced = append(notSynced, d)
		}
	}
	require.Len(t, notSynced, 1)
	require.Equal(t, api.ClassNotSynced, notSynced[0].Class)
	// Handed to its sync, which creates its company.
	require.Equal(t, api.StatusSynced, s.waitResult(t, api.ItemID(api.IntegrationCustomerSync, unsynced)).Status)
	require.Len(t, s.companiesOf(t, unsynced), 1)

	// The company made in the CRM waits for finance as any new one does.
	st := s.waitStatus(t, api.ItemID(api.IntegrationCustomerSync, api.NewCompanyKey(c.ID)), api.StatusBlocked)
	require.Equal(t, api.NewInCRM, st.Exception.Kind)
	// The duplicate waits too; approving archives it, the linked one stays.
	dupItem := api.ItemID(api.IntegrationCustomerSync, api.NewCompanyKey(dup.ID))
	st = s.waitStatus(t, dupItem, api.StatusBlocked)
	require.Equal(t, api.DuplicateInTarget, st.Exception.Kind)
	_, stderr, code = s.signals(t, "", "approve", dupItem, "--as", "carol", "--reason", "merged its notes into the customer's company")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, s.waitResult(t, dupItem).Status)
	for _, co := range s.companiesOf(t, cid) {
		require.Equal(t, co.ID != linked.ID, co.Archived, "company %s", co.ID)
	}
}

func reconcileResumes(t *testing.T, s *env) {
	ctx := context.Background()
	db := s.db(t)
	const companies = 250 // three pages of the CRM's company list
	for i := range companies {
		c := s.createCompany(t, map[string]string{"name": fmt.Sprintf("Resume %03d", i)})
		require.NoError(t, db.IgnoreRecord(ctx, api.IntegrationCustomerSync, api.SystemCRM, c.ID, "test", "not a customer"))
	}
	before := len(s.sandboxRequests(t, "crm.companies.list"))
	s.setFaults(t, `{"crm.companies.list": {"latency": "2s"}}`)
	defer s.setFaults(t, `{}`)

	_, stderr, code := s.signals(t, "", "reconcile", api.IntegrationCustomerSync, "--now", "--no-wait")
	require.Equal(t, 0, code, stderr)
	var stopped store.ReconcileRun
	require.Eventually(t, func() bool {
		r, err := db.LatestReconcileRun(ctx, api.IntegrationCustomerSync)
		stopped = r
		return err == nil && r.FinishedAt == nil && r.Phase == store.PhaseTarget && r.Cursor != ""
	}, waitFor, 50*time.Millisecond, "a page of companies recorded")
	require.NoError(t, s.Client.TerminateWorkflow(ctx, api.ReconcileID(api.IntegrationCustomerSync), "", "stopped midway by the test"))

	_, stderr, code = s.signals(t, "", "reconcile", api.IntegrationCustomerSync, "--now")
	require.Equal(t, 0, code, stderr)
	run, err := db.GetReconcileRun(ctx, stopped.ID)
	require.NoError(t, err)
	require.NotNil(t, run.FinishedAt, "the same run finished")
	rep, err := db.GetReconcileReport(ctx, run.ID)
	require.NoError(t, err)
	require.GreaterOrEqual(t, run.Compared, int64(companies))
	// Every record compared once: in sync, or with its differences.
	differing := map[[2]string]bool{}
	for _, d := range rep.Differences {
		differing[[2]string{d.SourceKey, d.TargetID}] = true
	}
	require.Equal(t, run.Compared, run.InSync+int64(len(differing)), "each record counted once")
	lists := s.sandboxRequests(t, "crm.companies.list")[before:]
	// The stopped run's last step may still read its pages until its
	// heartbeat finds the workflow gone; each page is recorded once.
	require.LessOrEqual(t, len(lists), 2*3, "list pages read: three, and at most again those of the step in flight when it stopped")
	// Each page recorded once: a batch read per hundred links, a list
	// request per hundred live companies.
	links, err := db.LinksAfter(ctx, api.IntegrationCustomerSync, api.SystemCRM, "", 10_000)
	require.NoError(t, err)
	var all struct{ Companies []company }
	getJSON(t, s.SandboxURL()+"/_sandbox/companies", &all)
	live := 0
	for _, c := range all.Companies {
		if !c.Archived {
			live++
		}
	}
	pages := func(n int) int64 { return int64((n + 99) / 100) }
	require.Equal(t, pages(len(links))+pages(live), run.Requests, "each page recorded once (%d links, %d live companies)", len(links), live)
}

func reconcileInvoices(t *testing.T, s *env) {
	paid, changed, deleted := uniqueKey(t, "INV-paid"), uniqueKey(t, "INV-changed"), uniqueKey(t, "INV-deleted")
	stripeIDs := map[string]string{}
	for _, id := range []string{paid, changed, deleted} {
		s.invoice(t, id)
		require.Equal(t, api.StatusSynced, s.waitResult(t, s.syncInvoice(t, id)).Status)
		inv := s.storedInvoice(t, id)
		require.Equal(t, "open", inv.StripeStatus)
		stripeIDs[id] = inv.StripeInvoiceID
	}
	// In Stripe: paid (its webhook never arrives), the total changed by hand,
	// and one invoice gone.
	paidAt := time.Now().Add(-time.Hour).Truncate(time.Second)
	s.setStripeInvoice(t, stripeIDs[paid], "paid", paidAt)
	s.setStripeInvoiceTotal(t, stripeIDs[changed], 51000)
	s.deleteStripeInvoice(t, stripeIDs[deleted])

	_, stderr, code := s.signals(t, "", "reconcile", api.IntegrationInvoiceToBilling, "--now")
	require.Equal(t, 0, code, stderr)
	rep := s.latestReport(t, api.IntegrationInvoiceToBilling)
	byKey := map[string]store.Difference{}
	for _, d := range rep.Differences {
		byKey[d.SourceKey] = d
	}
	require.Equal(t, api.ClassStatusDiffers, byKey[paid].Class)
	require.Equal(t, "open", *byKey[paid].Source)
	require.Equal(t, "paid", *byKey[paid].Target)
	require.Equal(t, store.DiffRepair, byKey[paid].Action)
	require.Equal(t, api.ClassAmountDiffers, byKey[changed].Class)
	require.Equal(t, "49200", *byKey[changed].Source)
	require.Equal(t, "51000", *byKey[changed].Target)
	require.Equal(t, api.ClassMissing, byKey[deleted].Class)

	// The missed payment reaches PostgreSQL through the invoice's payment item.
	require.Eventually(t, func() bool { return s.storedInvoice(t, paid).StripeStatus == "paid" }, waitFor, 100*time.Millisecond)
	// The rest waits for finance; accepting the total is remembered.
	changedID, deletedID := api.ItemID(api.IntegrationInvoiceToBilling, changed), api.ItemID(api.IntegrationInvoiceToBilling, deleted)
	require.Equal(t, api.AmountMismatch, s.waitStatus(t, changedID, api.StatusBlocked).Exception.Kind)
	require.Equal(t, api.MissingInTarget, s.waitStatus(t, deletedID, api.StatusBlocked).Exception.Kind)
	_, stderr, code = s.signals(t, "", "approve", changedID, "--as", "carol", "--reason", "credit note CN-4 covers the difference")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, s.waitResult(t, changedID).Status)
	require.Equal(t, store.InvoiceBilled, s.storedInvoice(t, changed).Status, "nothing billed again")

	_, stderr, code = s.signals(t, "", "reconcile", api.IntegrationInvoiceToBilling, "--now")
	require.Equal(t, 0, code, stderr)
	again := s.latestReport(t, api.IntegrationInvoiceToBilling)
	for _, d := range again.Differences {
		require.NotEqual(t, paid, d.SourceKey, "the payment is in sync now")
		if d.SourceKey == changed {
			require.Equal(t, store.DiffAccepted, d.Action, "an accepted total is not raised again")
		}
	}
}

// latestReport reads the latest reconcile report of an integration.
func (s *env) latestReport(t *testing.T, integration string) store.ReconcileReport {
	t.Helper()
	ctx := context.Background()
	run, err := s.db(t).LatestReconcileRun(ctx, integration)
	require.NoError(t, err)
	rep, err := s.db(t).GetReconcileReport(ctx, run.ID)
	require.NoError(t, err)
	return rep
}

// sandboxDo sends a person's action to the sandbox.
func (s *env) sandboxDo(t *testing.T, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, s.SandboxURL()+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s", method, path)
}
