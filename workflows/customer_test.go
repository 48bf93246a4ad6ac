package workflows

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/fieldrules"
	"github.com/signalbox-dev/signalbox/store"
)

// customerSides is PostgreSQL and the CRM as one customer sync sees them:
// the customer, its company, and the link's baseline.
type customerSides struct {
	customer store.Customer
	company  *crm.Company
	linked   bool
	baseline store.Baseline
	// staleOnce makes the next customer write fail as Stale after applying
	// edit to the customer (someone edited it meanwhile).
	staleOnce map[string]string
	// editDuringUpdate is applied to the company right after the next update
	// (someone edited it in the CRM meanwhile).
	editDuringUpdate crm.Properties

	created, archivedCompany, archivedCustomer bool
	inserted                                   []store.Customer
	ignored                                    []activities.IgnoreRecordInput
	companyWrites                              []crm.Properties
	customerWrites                             []map[string]string
}

func acme() store.Customer {
	return store.Customer{ID: "CUST-1", LegalName: "Acme GmbH", Domain: "acme.test", BillingEmail: "ap@acme.test",
		PaymentTerms: "net30", CreditLimit: 50000, Industry: "manufacturing", LifecycleStage: "customer", AccountOwner: "101",
		Phone: "+49 30 1234", AddressLine1: "Hauptstr. 1", City: "Berlin", PostalCode: "10115", Country: "DE", Version: 1}
}

// companyOf is the company as a previous sync left it: every synced field
// equal to the customer's, and the baseline that says so.
func companyOf(c store.Customer) (*crm.Company, store.Baseline) {
	spec := api.CustomerSyncSpec()
	props := crm.Properties{crm.PropCustomerID: c.ID}
	base := store.Baseline{}
	for _, f := range spec.SyncedFields() {
		v := c.Values()[f.Name]
		props[f.TargetName] = v
		base[f.Name] = store.Settled{Target: v, Source: v}
	}
	return &crm.Company{ID: "900", Properties: props}, base
}

func syncedSides() *customerSides {
	company, base := companyOf(acme())
	return &customerSides{customer: acme(), company: company, linked: true, baseline: base}
}

func (c *customerSides) install(f *fixture) {
	f.env.OnActivity(customerActivities.LoadCustomer, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.LoadCustomerInput) (store.Customer, error) {
		if c.customer.ID == "" {
			return store.Customer{}, appError("no such customer", api.ErrorNotFound, true)
		}
		return c.customer, nil
	}).Maybe()
	f.env.OnActivity(customerActivities.WriteCustomer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WriteCustomerInput) (store.Customer, error) {
		if c.staleOnce != nil {
			next, err := c.customer.With(c.staleOnce)
			require.NoError(f.t, err)
			c.customer, c.staleOnce = next, nil
			c.customer.Version++
		}
		if in.IfVersion != c.customer.Version {
			return store.Customer{}, appError("changed", api.ErrorStale, true)
		}
		next, err := c.customer.With(in.Set)
		require.NoError(f.t, err)
		next.Version++
		c.customer = next
		c.customerWrites = append(c.customerWrites, in.Set)
		return next, nil
	}).Maybe()
	f.env.OnActivity(customerActivities.ArchiveCustomer, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.ArchiveCustomerInput) (store.Customer, error) {
		c.archivedCustomer = true
		c.customer.Archived = true
		return c.customer, nil
	}).Maybe()
	f.env.OnActivity(companyActivities.FindCompany, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.FindCompanyInput) (activities.FindCompanyResult, error) {
		r := activities.FindCompanyResult{Linked: c.linked, Baseline: c.baseline}
		if c.company != nil {
			co := *c.company
			co.Properties = maps.Clone(co.Properties)
			r.Company, r.Via = &co, "link"
		}
		return r, nil
	}).Maybe()
	f.env.OnActivity(companyActivities.CreateCompany, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CreateCompanyInput) (crm.Company, error) {
		c.created, c.linked = true, true
		props := maps.Clone(in.Properties)
		props[crm.PropCustomerID] = in.CustomerID
		c.company = &crm.Company{ID: "901", Properties: props}
		return *c.company, nil
	}).Maybe()
	f.env.OnActivity(companyActivities.UpdateCompany, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateCompanyInput) (crm.Company, error) {
		maps.Copy(c.company.Properties, in.Properties)
		c.companyWrites = append(c.companyWrites, in.Properties)
		if c.editDuringUpdate != nil {
			maps.Copy(c.company.Properties, c.editDuringUpdate)
			c.editDuringUpdate = nil
		}
		co := *c.company
		co.Properties = maps.Clone(co.Properties)
		return co, nil
	}).Maybe()
	f.env.OnActivity(companyActivities.ReadCompany, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.ReadCompanyInput) (*crm.Company, error) {
		co := *c.company
		co.Properties = maps.Clone(co.Properties)
		return &co, nil
	}).Maybe()
	f.env.OnActivity(customerActivities.InsertCustomer, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.InsertCustomerInput) (store.Customer, error) {
		c.inserted = append(c.inserted, in.Customer)
		c.customer = in.Customer
		c.customer.Version = 1
		return c.customer, nil
	}).Maybe()
	f.env.OnActivity(customerActivities.IgnoreRecord, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.IgnoreRecordInput) error {
		c.ignored = append(c.ignored, in)
		return nil
	}).Maybe()
	f.env.OnActivity(companyActivities.ArchiveCompany, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.ArchiveCompanyInput) error {
		c.archivedCompany = true
		c.company.Archived = true
		return nil
	}).Maybe()
}

// lastBaseline is the baseline the item saved last.
func (f *fixture) lastBaseline() store.Baseline {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(f.t, f.baselines, "no baseline saved")
	return f.baselines[len(f.baselines)-1].Baseline
}

func runCustomerSync(f *fixture) api.Result {
	f.env.ExecuteWorkflow(CustomerSync, CustomerSyncInput{ItemInput: api.ItemInput{StartedBy: "test"}})
	return f.result()
}

// requireInSync checks that both sides hold the same value of every synced
// field and that the baseline says so: the next sync finds nothing to do.
func (c *customerSides) requireInSync(t *testing.T, base store.Baseline) {
	t.Helper()
	spec := api.CustomerSyncSpec()
	target := fieldrules.Values{}
	for _, f := range spec.SyncedFields() {
		target[f.Name] = c.company.Properties[f.TargetName]
	}
	again := fieldrules.Decide(spec, c.customer.Values(), target, base)
	require.True(t, again.Empty(), "the next sync would still do %+v", again)
}

func TestANewCustomerGetsACompany(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	f.quiet()
	c := &customerSides{customer: acme()}
	c.install(f)
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.True(t, c.created)
	require.Equal(t, "Acme GmbH", c.company.Properties["name"])
	require.Equal(t, "50000", c.company.Properties["credit_limit"])
	require.Equal(t, "Berlin", c.company.Properties["city"], "two-way fields fill an empty company")
	require.Empty(t, c.company.Properties["industry"], "the CRM owns industry: a new company gets none from PostgreSQL")
	require.Equal(t, "901", f.state().ExternalIDs["crm company"])
	c.requireInSync(t, f.lastBaseline())
}

func TestCustomerInSyncWritesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	f.quiet()
	c := syncedSides()
	c.install(f)
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.Empty(t, c.companyWrites)
	require.Empty(t, c.customerWrites)
	require.Empty(t, f.baselines, "an unchanged baseline is not written again")
}

func TestEditsFlowByOwner(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	f.quiet()
	c := syncedSides()
	c.customer.Domain = "acme.example"          // PostgreSQL's field, edited there
	c.company.Properties["industry"] = "retail" // the CRM's field, edited there
	c.company.Properties["city"] = "Hamburg"    // two-way, edited in the CRM only
	c.install(f)
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.Equal(t, []crm.Properties{{"domain": "acme.example"}}, c.companyWrites)
	require.Equal(t, []map[string]string{{"industry": "retail", "city": "Hamburg"}}, c.customerWrites)
	c.requireInSync(t, f.lastBaseline())
}

func TestOwnerWinsWritesBackAndTellsTheEditorsTeam(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	c := syncedSides()
	c.company.Properties["payment_terms"] = "net90" // sales gave better terms in the CRM
	c.customer.Industry = "retail"                  // finance reclassified in PostgreSQL
	c.install(f)
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.Equal(t, []crm.Properties{{"payment_terms": "net30"}}, c.companyWrites, "finance owns payment terms")
	require.Equal(t, []map[string]string{{"industry": "manufacturing"}}, c.customerWrites, "sales owns the industry")
	var audited []map[string]any
	for _, e := range f.audit {
		if e.Action == "owner_wins" {
			audited = append(audited, e.Details)
		}
	}
	require.Len(t, audited, 2)
	require.Equal(t, map[string]string{"edited": "net90", "written back": "net30"}, audited[0]["paymentTerms"], "both values are kept")
	teams := map[string]bool{}
	for _, n := range f.notified {
		teams[n.Team] = true
	}
	require.Equal(t, map[string]bool{"sales": true, "finance": true}, teams, "each team hears its edit was written back")
	c.requireInSync(t, f.lastBaseline())
}

func TestAnAskFieldEditedInTheCRMWaitsForADecision(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	c := syncedSides()
	c.company.Properties["name"] = "ACME Group"
	c.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.Conflict, s.Exception.Kind)
		require.Equal(t, `PostgreSQL "Acme GmbH", CRM "ACME Group", last synced "Acme GmbH"`, s.Exception.Details["legalName"])
		require.Equal(t, "finance", s.Exception.Deciders)
		f.decide("keep-crm", api.Decision{Action: api.ActionApprove, Choice: api.ChoiceKeepCRM, Actor: "carol", Reason: "the group renamed"})
	})
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.Equal(t, "ACME Group", c.customer.LegalName)
	require.Empty(t, c.companyWrites)
	c.requireInSync(t, f.lastBaseline())
}

func TestATwoWayFieldEditedOnBothSidesIsAmendedToAThirdValue(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	c := syncedSides()
	c.customer.Phone = "+49 30 5555"
	c.company.Properties["phone"] = "+49 30 6666"
	c.install(f)
	f.at(time.Minute, func() {
		require.Equal(t, api.Conflict, f.state().Exception.Kind)
		f.decide("partial", api.Decision{Action: api.ActionAmend, Set: map[string]string{"city": "Bonn"}, Actor: "carol", Reason: "x"})
		f.decide("amend", api.Decision{Action: api.ActionAmend, Set: map[string]string{"phone": "+49 30 7777"}, Actor: "carol", Reason: "called them"})
	})
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.ErrorContains(t, f.updates["partial"].rejected, "set a value for every field in conflict: phone")
	require.Equal(t, "+49 30 7777", c.customer.Phone)
	require.Equal(t, "+49 30 7777", c.company.Properties["phone"])
	c.requireInSync(t, f.lastBaseline())
}

func TestEditsDuringTheSyncAreNotLost(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	f.quiet()
	c := syncedSides()
	c.customer.Domain = "acme.example"
	c.company.Properties["industry"] = "retail"
	c.editDuringUpdate = crm.Properties{"city": "Köln"}             // a rep edits while we write
	c.staleOnce = map[string]string{"billingEmail": "ar@acme.test"} // finance edits while we decide
	c.install(f)
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.Equal(t, "Köln", c.customer.City, "the CRM edit made during the update reached PostgreSQL")
	require.Equal(t, "ar@acme.test", c.company.Properties["billing_email"], "the PostgreSQL edit made meanwhile reached the CRM")
	require.Equal(t, "retail", c.customer.Industry)
	require.Equal(t, "acme.example", c.company.Properties["domain"])
	c.requireInSync(t, f.lastBaseline())
}

func TestArchivingTheCustomerArchivesTheCompany(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	f.quiet()
	c := syncedSides()
	c.customer.Archived = true
	c.install(f)
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.True(t, c.archivedCompany)
}

func TestACompanyArchivedInTheCRMAsksTheOwnerTeam(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	c := syncedSides()
	c.company.Archived = true
	c.install(f)
	f.at(time.Minute, func() {
		require.Equal(t, api.ArchivedInCRM, f.state().Exception.Kind)
		f.decide("archive", api.Decision{Action: api.ActionApprove, Choice: api.ChoiceArchiveCustomer, Actor: "carol", Reason: "closed down"})
	})
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.True(t, c.archivedCustomer)
	require.Empty(t, c.companyWrites)
}

// newCompany is a company a sales rep created in the CRM: no customer ID.
func newCompany() *customerSides {
	return &customerSides{company: &crm.Company{ID: "777", Properties: crm.Properties{"name": "Initech LLC", "city": "Austin", "country": "US",
		"industry": "SOFTWARE", "phone": "+1 512 555 0100"}}}
}

func TestACompanyNewInTheCRMIsImportedWhenApproved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:crm-company-777")
	c := newCompany()
	c.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.NewInCRM, s.Exception.Kind)
		require.Equal(t, "CRM-777", s.Exception.Details["customer id"])
		require.Equal(t, "Initech LLC", s.Exception.Details["legalName"])
		f.decide("import", api.Decision{Action: api.ActionAmend, Set: map[string]string{"billingEmail": "ap@initech.test"}, Actor: "carol", Reason: "a new account"})
	})
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.Len(t, c.inserted, 1)
	imported := c.inserted[0]
	require.Equal(t, "CRM-777", imported.ID)
	require.Equal(t, "Initech LLC", imported.LegalName)
	require.Equal(t, "SOFTWARE", imported.Industry, "the CRM's own fields come along")
	require.Equal(t, "ap@initech.test", imported.BillingEmail, "with the operator's amendment")
	require.Equal(t, "CRM-777", c.company.Properties["signalbox_customer_id"], "the company is marked as the customer's")
	require.Equal(t, "ap@initech.test", c.company.Properties["billing_email"], "and synced like any other")
	c.requireInSync(t, f.lastBaseline())
}

func TestACompanyNewInTheCRMThatIsRejectedIsLeftAloneForGood(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:crm-company-777")
	c := newCompany()
	c.install(f)
	f.at(time.Minute, func() {
		f.decide("ignore", api.Decision{Action: api.ActionReject, Actor: "carol", Reason: "a partner, not a customer"})
	})
	require.Equal(t, api.StatusRejected, runCustomerSync(f).Status)
	require.Empty(t, c.inserted)
	require.Equal(t, []activities.IgnoreRecordInput{{Integration: "customer-sync", System: "crm", RecordID: "777", Actor: "carol", Reason: "rejected NewInCRM"}}, c.ignored)
}

func TestARecordThatKeepsChangingContinuesInANewRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	f.quiet()
	c := syncedSides()
	loads := 0
	f.env.OnActivity(customerActivities.LoadCustomer, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.LoadCustomerInput) (store.Customer, error) {
		loads++
		return c.customer, nil
	})
	// Each pass's lookup takes 2ms; a poll reports another change every 1ms.
	f.env.OnActivity(companyActivities.FindCompany, mock.Anything, mock.Anything).After(2 * time.Millisecond).Return(func(_ context.Context, _ activities.FindCompanyInput) (activities.FindCompanyResult, error) {
		co := *c.company
		return activities.FindCompanyResult{Company: &co, Via: "link", Linked: true, Baseline: c.baseline}, nil
	})
	c.install(f)
	for i := range 3 * maxPasses {
		f.at(time.Duration(i+1)*time.Millisecond, func() { f.env.SignalWorkflow(api.SignalResync, nil) })
	}
	f.env.ExecuteWorkflow(CustomerSync, CustomerSyncInput{ItemInput: api.ItemInput{StartedBy: "test"}})
	require.True(t, workflow.IsContinueAsNewError(f.env.GetWorkflowError()), "%v", f.env.GetWorkflowError())
	require.Equal(t, maxPasses, loads, "one run makes at most %d passes", maxPasses)
	require.Contains(t, f.actions(), "continued Running→Running system")
}

func TestACRMValuePostgresCannotHoldIsAskedAboutAloneAfterTheOtherEdits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "customer-sync:CUST-1")
	c := syncedSides()
	c.company.Properties["country"] = "Germany" // a rep's spelling
	c.company.Properties["industry"] = "RETAIL" // and a valid edit
	c.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.Conflict, s.Exception.Kind)
		require.Contains(t, s.Exception.Details["country"], "PostgreSQL cannot hold the CRM's value")
		require.Equal(t, "RETAIL", c.customer.Industry, "the valid edit went through before the question")
		f.decide("keep", api.Decision{Action: api.ActionApprove, Choice: api.ChoiceKeepPostgres, Actor: "carol", Reason: "DE it is"})
	})
	require.Equal(t, api.StatusSynced, runCustomerSync(f).Status)
	require.Equal(t, "DE", c.company.Properties["country"], "PostgreSQL's value is written back")
	c.requireInSync(t, f.lastBaseline())
}
