package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// customer stores a customer of the stack's database.
func (s *env) customer(t *testing.T, id string) store.Customer {
	t.Helper()
	c, err := s.db(t).InsertCustomer(context.Background(), store.Customer{ID: id, LegalName: "Acme " + id, Domain: "acme.test",
		BillingEmail: "ap@acme.test", PaymentTerms: "net30", CreditLimit: 50000, Phone: "+49 30 1234", AddressLine1: "Hauptstr. 1",
		City: "Berlin", PostalCode: "10115", Country: "DE"})
	require.NoError(t, err)
	return c
}

// editCustomer changes a customer as a person in the company's own systems would.
func (s *env) editCustomer(t *testing.T, id string, set map[string]string) {
	t.Helper()
	ctx := context.Background()
	c, err := s.db(t).GetCustomer(ctx, id)
	require.NoError(t, err)
	_, err = s.db(t).UpdateCustomer(ctx, id, c.Version, set)
	require.NoError(t, err)
}

func (s *env) storedCustomer(t *testing.T, id string) store.Customer {
	t.Helper()
	c, err := s.db(t).GetCustomer(context.Background(), id)
	require.NoError(t, err)
	return c
}

type company struct {
	ID         string            `json:"id"`
	Properties map[string]string `json:"properties"`
	Archived   bool              `json:"archived"`
}

// companiesOf lists the sandbox CRM's companies carrying the customer's ID.
func (s *env) companiesOf(t *testing.T, customerID string) []company {
	t.Helper()
	var out struct{ Companies []company }
	getJSON(t, s.SandboxURL()+"/_sandbox/companies", &out)
	var found []company
	for _, c := range out.Companies {
		if c.Properties["signalbox_customer_id"] == customerID {
			found = append(found, c)
		}
	}
	return found
}

func (s *env) companyOf(t *testing.T, customerID string) company {
	t.Helper()
	found := s.companiesOf(t, customerID)
	require.Len(t, found, 1, "one company per customer")
	return found[0]
}

// editCompany changes a company as a person in the CRM would.
func (s *env) editCompany(t *testing.T, id string, props map[string]string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"properties": props})
	require.NoError(t, err)
	resp, err := http.Post(s.SandboxURL()+"/_sandbox/companies/"+id+"/edit", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// startSync starts the customer's item through the intake and returns its
// workflow ID.
func (s *env) startSync(t *testing.T, id string) string {
	t.Helper()
	code, body := s.post(t, "/v1/customers/"+id+"/sync", struct{}{}, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	return body["workflowId"].(string)
}

// syncCustomer starts the customer's item and waits for it to end.
func (s *env) syncCustomer(t *testing.T, id string) api.Result {
	t.Helper()
	return s.syncedResult(t, s.startSync(t, id))
}

// syncedResult waits for the item to end, failing with its exception if it
// waits for a person instead.
func (s *env) syncedResult(t *testing.T, workflowID string) api.Result {
	t.Helper()
	state := s.waitStatusIn(t, workflowID, api.StatusSynced, api.StatusBlocked, api.StatusFailed, api.StatusRejected, api.StatusCancelled)
	require.False(t, state.Status.Waiting(), "%s waits: %+v", workflowID, state.Exception)
	return s.waitResult(t, workflowID)
}

// companyWrites counts the API writes to a company so far.
func (s *env) companyWrites(t *testing.T, id string) int {
	t.Helper()
	n := 0
	for _, r := range s.sandboxRequests(t, "crm.companies.update") {
		if r.Path == "/crm/v3/objects/companies/"+id && r.Status < 300 {
			n++
		}
	}
	return n
}

func TestCustomerSyncFollowsEachFieldsOwner(t *testing.T) {
	t.Parallel()
	id := uniqueKey(t, "CUST-own")
	shared.customer(t, id)
	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)
	co := shared.companyOf(t, id)
	require.Equal(t, "Acme "+id, co.Properties["name"])
	require.Equal(t, "50000", co.Properties["credit_limit"])
	require.Equal(t, "Berlin", co.Properties["city"])

	shared.editCustomer(t, id, map[string]string{"domain": "acme.example"})                         // finance's field, in PostgreSQL
	shared.editCompany(t, co.ID, map[string]string{"industry": "RETAIL", "payment_terms": "net90"}) // sales: its field, and finance's
	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)

	co = shared.companyOf(t, id)
	c := shared.storedCustomer(t, id)
	require.Equal(t, "acme.example", co.Properties["domain"], "PostgreSQL's edit of its field reached the CRM")
	require.Equal(t, "RETAIL", c.Industry, "the CRM's edit of its field reached PostgreSQL")
	require.Equal(t, "net30", co.Properties["payment_terms"], "finance owns payment terms: the CRM edit was written back")
	require.Equal(t, "net30", c.PaymentTerms)
	var overruled *store.AuditEvent
	for _, e := range shared.auditTrail(t, "customer-sync:"+id) {
		if e.Action == "owner_wins" {
			overruled = &e
		}
	}
	require.NotNil(t, overruled, "the write-back is audited")
	require.Equal(t, map[string]any{"edited": "net90", "written back": "net30"}, overruled.Details["paymentTerms"])
	shared.waitMessage(t, "Customer "+id+": postgres owns paymentTerms (rule owner-wins)")

	writes := shared.companyWrites(t, co.ID)
	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)
	require.Equal(t, writes, shared.companyWrites(t, co.ID), "in sync: a further sync writes nothing (our own writes are not edits)")
}

func TestACustomerConflictIsDecidedOnceAndNotRaisedAgain(t *testing.T) {
	t.Parallel()
	id := uniqueKey(t, "CUST-ask")
	shared.customer(t, id)
	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)
	co := shared.companyOf(t, id)
	shared.editCompany(t, co.ID, map[string]string{"name": "ACME Group " + id, "phone": "+49 30 6666"})
	shared.editCustomer(t, id, map[string]string{"phone": "+49 30 5555"})

	wf := shared.startSync(t, id)
	s := shared.waitStatus(t, wf, api.StatusBlocked)
	require.Equal(t, api.Conflict, s.Exception.Kind)
	require.Equal(t, "finance", s.Exception.Deciders)
	require.Contains(t, s.Exception.Details["legalName"], `CRM "ACME Group `+id+`"`)
	require.Contains(t, s.Exception.Details["phone"], `PostgreSQL "+49 30 5555", CRM "+49 30 6666"`)

	_, stderr, code2 := shared.signals(t, "", "amend", wf, "--set", "legalName=ACME Group "+id, "--set", "phone=+49 30 7777",
		"--reason", "called them", "--as", "carol")
	require.Equal(t, 0, code2, stderr)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, wf).Status)
	c, co2 := shared.storedCustomer(t, id), shared.companyOf(t, id)
	require.Equal(t, "ACME Group "+id, c.LegalName)
	require.Equal(t, "+49 30 7777", c.Phone)
	require.Equal(t, "+49 30 7777", co2.Properties["phone"], "the decision is written to both sides")

	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status, "the decided conflict is the baseline: not raised again")
}

// triggerPoll runs the customer-sync schedule now (beside any poll that
// runs already) and waits for a poll that started since.
func (s *env) triggerPoll(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	h := s.Client.ScheduleClient().GetHandle(ctx, api.ScheduleID(api.IntegrationCustomerSync))
	since := time.Now().Add(-time.Second)
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}))
	var run *client.ScheduleWorkflowExecution
	require.Eventually(t, func() bool {
		d, err := h.Describe(ctx)
		if err != nil {
			return false
		}
		for _, a := range d.Info.RecentActions {
			if a.ActualTime.After(since) && a.StartWorkflowResult != nil {
				run = a.StartWorkflowResult
				return true
			}
		}
		return false
	}, waitFor, 200*time.Millisecond, "the schedule started no poll")
	require.NoError(t, s.Client.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, nil))
}

func TestThePollSyncsWhatChangedAndNothingElse(t *testing.T) {
	id := uniqueKey(t, "CUST-poll")
	shared.customer(t, id)
	shared.triggerPoll(t)
	item := "customer-sync:" + id
	co := shared.companyOf(t, id)
	show, _, code := shared.signals(t, "", "show", item)
	require.Equal(t, 0, code)
	require.Contains(t, show, "created_in_target", "a customer never synced gets its company from a batch; the audit trail says so")

	shared.editCompany(t, co.ID, map[string]string{"city": "Köln"})
	shared.triggerPoll(t)
	require.Eventually(t, func() bool { return shared.storedCustomer(t, id).City == "Köln" }, waitFor, 200*time.Millisecond,
		"a CRM edit is found by the poll and synced to PostgreSQL")

	desc, err := shared.Client.DescribeWorkflowExecution(context.Background(), item, "")
	require.NoError(t, err)
	lastRun := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	require.Eventually(t, func() bool {
		d, err := shared.Client.DescribeWorkflowExecution(context.Background(), item, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() != nil
	}, waitFor, 200*time.Millisecond)
	shared.triggerPoll(t)
	desc, err = shared.Client.DescribeWorkflowExecution(context.Background(), item, "")
	require.NoError(t, err)
	require.Equal(t, lastRun, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(),
		"a record that equals its baseline costs no workflow (our own write to PostgreSQL is not an edit)")
}

// A backfill runs on a stack of its own with its schedule paused: a poll,
// which the shared stack's other tests trigger at any moment, would find the
// new customers too and could hand one to an item (safely: the item finds the
// batch-created company), and this test counts what the backfill alone did.
func TestABackfillCreatesCompaniesInBatches(t *testing.T) {
	s := startStack(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, s.Client.ScheduleClient().GetHandle(ctx, api.ScheduleID(api.IntegrationCustomerSync)).
		Pause(ctx, client.SchedulePauseOptions{Note: "the backfill test counts what the backfill alone does"}))
	prefix := uniqueKey(t, "CUST-bf")
	const n = 150
	for i := range n {
		s.customer(t, fmt.Sprintf("%s-%03d", prefix, i))
	}
	before := len(s.sandboxRequests(t, "crm.companies.batch.create"))
	out, stderr, code, err := s.Command(ctx, "", "starter", "customers", "--backfill")
	require.NoError(t, err)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "done: ", "the command reports how far it came, and that it is done")
	for i := range n {
		s.companyOf(t, fmt.Sprintf("%s-%03d", prefix, i))
	}
	batches := len(s.sandboxRequests(t, "crm.companies.batch.create")) - before
	require.Equal(t, 2, batches, "150 customers are created in batches of up to 100, not one by one")

	show, _, code := s.signals(t, "", "show", "customer-sync:"+prefix+"-007")
	require.Equal(t, 0, code)
	require.Contains(t, show, "no workflow in Temporal")
	require.Contains(t, show, "created_in_target")

	out, _, code, err = s.Command(ctx, "", "starter", "customers", "--backfill")
	require.NoError(t, err)
	require.Equal(t, 0, code)
	require.Contains(t, out, "0 created in batches", "a second backfill finds every company and creates none")
}

// createCompany creates a company as a sales rep in the CRM would.
func (s *env) createCompany(t *testing.T, props map[string]string) company {
	t.Helper()
	body, err := json.Marshal(map[string]any{"properties": props})
	require.NoError(t, err)
	resp, err := http.Post(s.SandboxURL()+"/_sandbox/companies", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var c company
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	return c
}

func TestACompanyNewInTheCRMWaitsForFinanceAndIsImportedOrLeftAlone(t *testing.T) {
	name := uniqueKey(t, "Initech")
	kept := shared.createCompany(t, map[string]string{"name": name, "city": "Austin", "country": "US"})
	left := shared.createCompany(t, map[string]string{"name": name + " partner"})
	shared.triggerPoll(t)

	keep, leave := "customer-sync:crm-company-"+kept.ID, "customer-sync:crm-company-"+left.ID
	s := shared.waitStatus(t, keep, api.StatusBlocked)
	require.Equal(t, api.NewInCRM, s.Exception.Kind)
	require.Equal(t, api.NewInCRM, shared.waitStatus(t, leave, api.StatusBlocked).Exception.Kind)

	_, stderr, code := shared.signals(t, "", "approve", keep, "--as", "carol", "--reason", "a new account")
	require.Equal(t, 0, code, stderr)
	_, stderr, code = shared.signals(t, "", "reject", leave, "--as", "carol", "--reason", "a partner, not a customer")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, keep).Status)
	imported := shared.storedCustomer(t, "CRM-"+kept.ID)
	require.Equal(t, name, imported.LegalName)
	require.Equal(t, "Austin", imported.City)
	require.Equal(t, "CRM-"+kept.ID, shared.companyOf(t, "CRM-"+kept.ID).Properties["signalbox_customer_id"])

	desc, err := shared.Client.DescribeWorkflowExecution(context.Background(), leave, "")
	require.NoError(t, err)
	shared.editCompany(t, left.ID, map[string]string{"city": "Dallas"})
	shared.triggerPoll(t)
	again, err := shared.Client.DescribeWorkflowExecution(context.Background(), leave, "")
	require.NoError(t, err)
	require.Equal(t, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), again.GetWorkflowExecutionInfo().GetExecution().GetRunId(),
		"a company a person decided to leave alone is not asked about again")
}

// TestABackfillSurvivesAWorkerKilledMidwayAndLostAnswers kills the worker
// while a backfill creates companies, and loses the answers of half the
// batch creates after they took effect: every customer still ends with
// exactly one company.
func TestABackfillSurvivesAWorkerKilledMidwayAndLostAnswers(t *testing.T) {
	t.Parallel()
	// Each batch create takes a second, so the kill lands while they run.
	s := startStack(t, `{"crm.companies.batch.create": {"rate5xx": 0.5, "afterEffect": 1, "latency": "1s"}}`, "SIGNALBOX_CRM_RATE=20")
	const n = 300
	prefix := uniqueKey(t, "CUST-kill")
	for i := range n {
		s.customer(t, fmt.Sprintf("%s-%03d", prefix, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitFor)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, stderr, code, err := s.Command(ctx, "", "starter", "customers", "--backfill")
		if err == nil && code != 0 {
			err = fmt.Errorf("starter customers --backfill: exit %d: %s", code, stderr)
		}
		done <- err
	}()
	require.Eventually(t, func() bool {
		var all struct{ Companies []company }
		getJSON(t, s.SandboxURL()+"/_sandbox/companies", &all)
		return len(all.Companies) > 0 && len(all.Companies) < n
	}, waitFor, 50*time.Millisecond, "the backfill did not start creating")
	require.NoError(t, s.Worker.Kill())
	time.Sleep(time.Second)
	require.NoError(t, s.Worker.Start(ctx))
	if err := <-done; err != nil {
		desc, derr := s.Client.DescribeWorkflowExecution(context.Background(), api.ScheduleID(api.IntegrationCustomerSync)+"-backfill", "")
		if derr == nil {
			for _, a := range desc.GetPendingActivities() {
				t.Logf("pending %s: attempt %d, last failure %v", a.GetActivityType().GetName(), a.GetAttempt(), a.GetLastFailure().GetMessage())
			}
			t.Logf("backfill: %v", desc.GetWorkflowExecutionInfo().GetStatus())
		}
		t.Fatal(err)
	}

	require.Eventually(t, func() bool {
		var all struct{ Companies []company }
		getJSON(t, s.SandboxURL()+"/_sandbox/companies", &all)
		return len(all.Companies) >= n
	}, waitFor, 200*time.Millisecond, "items hand the rest")
	var all struct{ Companies []company }
	getJSON(t, s.SandboxURL()+"/_sandbox/companies", &all)
	per := map[string]int{}
	for _, c := range all.Companies {
		per[c.Properties["signalbox_customer_id"]]++
	}
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		require.Equal(t, 1, per[id], "companies of %s", id)
	}
	lost := 0
	for _, r := range s.sandboxRequests(t, "crm.companies.batch.create") {
		if r.Status >= 500 {
			lost++
		}
	}
	t.Logf("%d customers, %d batch creates whose answer was lost after they took effect, one company each", n, lost)
}

// archiveCompany archives a company as a person in the CRM would.
func (s *env) archiveCompany(t *testing.T, id string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, s.SandboxURL()+"/_sandbox/companies/"+id, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestArchivingOnEitherSide(t *testing.T) {
	ours, theirs := uniqueKey(t, "CUST-arch-pg"), uniqueKey(t, "CUST-arch-crm")
	for _, id := range []string{ours, theirs} {
		shared.customer(t, id)
		require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)
	}

	// Archived in PostgreSQL: its company is archived.
	c := shared.storedCustomer(t, ours)
	_, err := shared.db(t).SetCustomerArchived(context.Background(), ours, c.Version, true)
	require.NoError(t, err)
	shared.triggerPoll(t)
	require.Eventually(t, func() bool { return shared.companyOf(t, ours).Archived }, waitFor, 200*time.Millisecond,
		"the poll finds the archived customer and its item archives the company")

	// Archived in the CRM: the poll lists archived companies, and the owner team decides.
	shared.archiveCompany(t, shared.companyOf(t, theirs).ID)
	shared.triggerPoll(t)
	item := "customer-sync:" + theirs
	s := shared.waitStatus(t, item, api.StatusBlocked)
	require.Equal(t, api.ArchivedInCRM, s.Exception.Kind)
	_, stderr, code := shared.signals(t, "", "approve", item, "--as", "carol", "--choice", api.ChoiceArchiveCustomer, "--reason", "closed down")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, shared.syncedResult(t, item).Status)
	require.True(t, shared.storedCustomer(t, theirs).Archived)

	// The customer's archiving is a change the next poll syncs; the archived
	// company, decided, is not asked about again.
	shared.triggerPoll(t)
	require.Equal(t, api.StatusSynced, shared.syncedResult(t, item).Status, "decided: not asked about again")
}

// TestEditsMadeWhileACustomerSyncsAreNotLost edits both systems while the
// item's write to the CRM is in flight: both edits end up on both sides.
func TestEditsMadeWhileACustomerSyncsAreNotLost(t *testing.T) {
	t.Parallel()
	s := startStack(t, `{"crm.companies.update": {"latency": "2s"}}`)
	id := uniqueKey(t, "CUST-race")
	s.customer(t, id)
	require.Equal(t, api.StatusSynced, s.syncCustomer(t, id).Status)
	co := s.companyOf(t, id)

	s.editCustomer(t, id, map[string]string{"domain": "acme.example"}) // to be written to the CRM
	wf := s.startSync(t, id)
	s.waitInFlight(t, "crm.companies.update")
	s.editCompany(t, co.ID, map[string]string{"industry": "RETAIL"})         // a rep, while signalbox writes
	s.editCustomer(t, id, map[string]string{"billingEmail": "ar@acme.test"}) // finance, meanwhile

	require.Equal(t, api.StatusSynced, s.syncedResult(t, wf).Status)
	cust, company := s.storedCustomer(t, id), s.companyOf(t, id)
	require.Equal(t, "acme.example", company.Properties["domain"])
	require.Equal(t, "RETAIL", cust.Industry, "the CRM edit made during the write reached PostgreSQL")
	require.Equal(t, "ar@acme.test", company.Properties["billing_email"], "the PostgreSQL edit made meanwhile reached the CRM")
	require.Equal(t, "RETAIL", company.Properties["industry"], "and was not overwritten")
}

// The holes a review found, each tried as its user would.

func TestAnImportedCompanyKeepsItsValuesAndItsAmendment(t *testing.T) {
	name := uniqueKey(t, "Globex")
	co := shared.createCompany(t, map[string]string{"name": name, "domain": "globex.test", "billing_email": "ap@globex.test",
		"city": "Munich", "country": "Germany", "payment_terms": "net45"})
	shared.triggerPoll(t)
	item := "customer-sync:crm-company-" + co.ID
	s := shared.waitStatus(t, item, api.StatusBlocked)
	require.Contains(t, s.Exception.Details["problem: country"], "alpha-2", "the value PostgreSQL cannot hold is named")
	_, stderr, code := shared.signals(t, "", "amend", item, "--set", "country=DE", "--as", "carol", "--reason", "fix the country")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, shared.syncedResult(t, item).Status, "imported, and not asked again")
	c := shared.storedCustomer(t, "CRM-"+co.ID)
	require.Equal(t, name, c.LegalName, "the company's other values come along")
	require.Equal(t, "globex.test", c.Domain)
	require.Equal(t, "net45", c.PaymentTerms)
	require.Equal(t, "DE", c.Country)
	require.Equal(t, "DE", shared.companyOf(t, "CRM-"+co.ID).Properties["country"], "the amendment is written to the CRM too")
}

func TestACompanyLinkedWhileItsImportWaitedIsNotImported(t *testing.T) {
	co := shared.createCompany(t, map[string]string{"name": uniqueKey(t, "Hooli"), "city": "Palo Alto", "country": "US"})
	shared.triggerPoll(t)
	item := "customer-sync:crm-company-" + co.ID
	require.Equal(t, api.NewInCRM, shared.waitStatus(t, item, api.StatusBlocked).Exception.Kind)
	p := uniqueKey(t, "CUST-hooli")
	shared.customer(t, p)
	shared.editCompany(t, co.ID, map[string]string{"signalbox_customer_id": p}) // sales links it meanwhile

	_, stderr, code := shared.signals(t, "", "approve", item, "--as", "carol", "--reason", "a new account")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, shared.syncedResult(t, item).Status)
	_, err := shared.db(t).GetCustomer(context.Background(), "CRM-"+co.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "no second customer for a company that belongs to one")
	require.Equal(t, p, shared.companyOf(t, p).Properties["signalbox_customer_id"], "the company stays the customer's")
}

func TestARequiredFieldCannotBeAmendedToABlank(t *testing.T) {
	id := uniqueKey(t, "CUST-blank")
	shared.customer(t, id)
	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)
	shared.editCompany(t, shared.companyOf(t, id).ID, map[string]string{"name": "Other " + id})
	wf := shared.startSync(t, id)
	require.Equal(t, api.Conflict, shared.waitStatus(t, wf, api.StatusBlocked).Exception.Kind)
	_, stderr, code2 := shared.signals(t, "", "amend", wf, "--set", "legalName=", "--as", "carol", "--reason", "oops")
	require.NotEqual(t, 0, code2)
	require.Contains(t, stderr, "legalName is required")
	require.Equal(t, "Acme "+id, shared.storedCustomer(t, id).LegalName, "nothing changed")
}

func TestACustomerDeletedWhileItsItemWaitedWaitsForAPerson(t *testing.T) {
	id := uniqueKey(t, "CUST-del")
	shared.customer(t, id)
	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)
	shared.editCompany(t, shared.companyOf(t, id).ID, map[string]string{"name": "Other " + id})
	wf := shared.startSync(t, id)
	require.Equal(t, api.Conflict, shared.waitStatus(t, wf, api.StatusBlocked).Exception.Kind)
	shared.db(t) // opens the pool
	_, err := shared.pool.Exec(context.Background(), `DELETE FROM customers WHERE id = $1`, id)
	require.NoError(t, err)
	_, stderr, code2 := shared.signals(t, "", "approve", wf, "--choice", "crm", "--as", "carol", "--reason", "crm is right")
	require.Equal(t, 0, code2, stderr)
	s := shared.waitStatusIn(t, wf, api.StatusBlocked, api.StatusFailed, api.StatusSynced)
	require.Equal(t, api.ValidationFailed, s.Exception.Kind, "a missing customer waits for a person to restore it, not a retry that cannot help")
}

func TestTwoCompaniesWithOneCustomerIDWaitForAPerson(t *testing.T) {
	id := uniqueKey(t, "CUST-twin")
	shared.customer(t, id)
	shared.createCompany(t, map[string]string{"name": "A " + id, "signalbox_customer_id": id})
	shared.createCompany(t, map[string]string{"name": "B " + id, "signalbox_customer_id": id})
	s := shared.waitStatus(t, shared.startSync(t, id), api.StatusBlocked)
	require.Equal(t, api.TargetRejected, s.Exception.Kind)
	require.Contains(t, s.Exception.Summary, "both carry customer ID "+id)
}

func TestACompanyWhoseCustomerIDIsEditedInTheCRMStaysItsCustomers(t *testing.T) {
	a, b := uniqueKey(t, "CUST-ptA"), uniqueKey(t, "CUST-ptB")
	for _, id := range []string{a, b} {
		shared.customer(t, id)
		require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)
	}
	coB := shared.companyOf(t, b)
	shared.editCompany(t, coB.ID, map[string]string{"signalbox_customer_id": a, "city": "Hamburg", "industry": "RETAIL"})
	shared.triggerPoll(t)
	require.Eventually(t, func() bool { return shared.storedCustomer(t, b).City == "Hamburg" }, waitFor, 200*time.Millisecond,
		"the rep's edit of company B reaches customer B, whose link names the company")
	require.Equal(t, "RETAIL", shared.storedCustomer(t, b).Industry)
	require.Eventually(t, func() bool { return len(shared.companiesOf(t, b)) == 1 }, waitFor, 200*time.Millisecond,
		"company B carries customer B's ID again")
	require.Len(t, shared.companiesOf(t, a), 1, "customer A keeps exactly its own company")
	var restored bool
	for _, e := range shared.auditTrail(t, "customer-sync:"+b) {
		restored = restored || (e.Action == "owner_wins" && e.Details["signalbox_customer_id"] != nil)
	}
	require.True(t, restored, "the write-back of the ID is audited")
}

func TestACustomerWhoseIDLooksLikeANewCompanysKeyIsSyncedAsACustomer(t *testing.T) {
	id := uniqueKey(t, "crm-company-x")
	shared.customer(t, id)
	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, id).Status)
	require.Equal(t, "Acme "+id, shared.companyOf(t, id).Properties["name"], "its company is created, as for any customer")
}
