package workflows

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/fieldrules"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

var _ = define(customerSync)

var (
	customerActivities    *activities.Customers
	companyActivities     *activities.Companies
	companyPollActivities *activities.CompanyPolls
)

// customerSync is the customer ↔ CRM company integration; api.CustomerSyncSpec
// declares it.
func customerSync() spine.Integration {
	return spine.Integration{
		Spec:     api.CustomerSyncSpec(),
		Workflow: CustomerSync,
		Activities: []spine.Activities{
			spine.On(api.TaskQueueCRM, func(d spine.Deps) *activities.Companies { return &activities.Companies{Client: d.CRM, Store: d.Store} }),
			spine.On(api.TaskQueueCRMPoll, func(d spine.Deps) *activities.CompanyPolls {
				return &activities.CompanyPolls{Client: d.CRM, Store: d.Store}
			}),
			spine.On(api.TaskQueueIntegrations, func(d spine.Deps) *activities.Customers { return &activities.Customers{Store: d.Store} }),
			spine.On(api.TaskQueueCRMPoll, func(d spine.Deps) *activities.CustomerReconcile {
				return &activities.CustomerReconcile{Client: d.CRM, Store: d.Store}
			}),
		},
		Intake: spine.Intake{Route: "POST /v1/customers/{id}/sync", Command: "customer", Usage: "ID", Check: checkCustomerToSync, Input: customerInput,
			Bulk: "customers", Statuses: []string{"all"}, Keys: allCustomerIDs},
		Poll:      customerPoll(),
		Reconcile: &spine.Reconcile{Queue: api.TaskQueueCRMPoll, Step: customerReconcile.ReconcileCustomers},
	}
}

// CustomerSyncInput starts a CustomerSync item; the customer, whose ID is the
// item's key, is read from PostgreSQL.
type CustomerSyncInput struct {
	api.ItemInput
}

func customerInput(_, startedBy string) any {
	return CustomerSyncInput{ItemInput: api.ItemInput{StartedBy: startedBy}}
}

// checkCustomerToSync refuses unknown customers.
func checkCustomerToSync(ctx context.Context, st spine.Records, id string) error {
	_, err := st.GetCustomer(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &spine.Refused{Status: http.StatusNotFound, Message: "no customer " + id}
	case err != nil:
		return &spine.Refused{Status: http.StatusServiceUnavailable, Message: "could not read the customer: PostgreSQL is unavailable; retry"}
	}
	return nil
}

// allCustomerIDs lists every customer's ID.
func allCustomerIDs(ctx context.Context, st spine.Records, _ string) ([]string, error) {
	var ids []string
	for {
		page, err := st.CustomerIDs(ctx, lastOf(ids), 1000)
		if err != nil || len(page) == 0 {
			return ids, err
		}
		ids = append(ids, page...)
	}
}

func lastOf(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1]
}

// CustomerSync keeps one customer and its CRM company consistent.
func CustomerSync(ctx workflow.Context, in CustomerSyncInput) (api.Result, error) {
	s := &customerRun{spec: api.CustomerSyncSpec(), repair: in.Reconcile}
	return spine.Run(ctx, customerSync(), in.ItemInput, spine.Hooks{Amend: s.amend}, s.run)
}

// maxRounds bounds how often one run syncs again because a side changed
// while it wrote; each round reads both sides afresh.
const maxRounds = 5

// customerRun is the state of one CustomerSync run.
type customerRun struct {
	spec api.Spec
	// id is the customer's ID: the item's key, or for a company found in
	// the CRM with no customer, the customer it is imported as.
	id       string
	customer store.Customer
	company  *crm.Company
	baseline store.Baseline
	// conflicts are the fields a waiting Conflict is about; amendment the
	// values an operator set for them (written to both sides).
	conflicts []string
	amendment map[string]string
	// importing is the customer a company new in the CRM would become, while
	// NewInCRM waits; an amendment changes it.
	importing *store.Customer
	// repair is what a reconcile run found, when it started the item for a
	// company (a duplicate).
	repair *api.ReconcileFinding
}

// amend accepts values for the fields in conflict, all of them, each valid
// for the customer.
func (s *customerRun) amend(set map[string]string, apply bool) error {
	if errs := s.spec.CheckAmendment(set); len(errs) > 0 {
		return fieldProblems(errs)
	}
	if s.importing != nil {
		next, err := s.importing.With(set)
		if err != nil {
			return err
		}
		if apply {
			s.importing = &next
			s.amendment = set
		}
		return nil
	}
	if len(s.conflicts) == 0 {
		return errors.New("nothing is in conflict: amend answers a Conflict")
	}
	for _, field := range s.conflicts {
		if _, ok := set[field]; !ok {
			return fmt.Errorf("set a value for every field in conflict: %s", strings.Join(s.conflicts, ", "))
		}
	}
	for field := range set {
		if !slices.Contains(s.conflicts, field) {
			return fmt.Errorf("%s is not in conflict; amend only %s", field, strings.Join(s.conflicts, ", "))
		}
	}
	if _, err := s.customer.With(set); err != nil {
		return err
	}
	if apply {
		s.amendment = set
	}
	return nil
}

// fieldProblems says what is wrong with an amendment's values, a field at a
// time: "legalName is required; country must be …".
func fieldProblems(errs api.FieldErrors) error {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Field + " " + e.Problem
	}
	return errors.New(strings.Join(parts, "; "))
}

// properties are the CRM properties the sync reads.
func (s *customerRun) properties() []string {
	props := []string{crm.PropCustomerID}
	for _, f := range s.spec.SyncedFields() {
		props = append(props, f.TargetName)
	}
	return props
}

// companyValues are the company's values of the synced fields, by field name.
func (s *customerRun) companyValues() fieldrules.Values {
	if s.company == nil {
		return fieldrules.TargetValues(s.spec, nil)
	}
	return fieldrules.TargetValues(s.spec, s.company.Properties)
}

// targetProperties maps field values to CRM properties.
func (s *customerRun) targetProperties(values fieldrules.Values) crm.Properties {
	props := crm.Properties{}
	for _, f := range s.spec.SyncedFields() {
		if v, ok := values[f.Name]; ok {
			props[f.TargetName] = v
		}
	}
	return props
}

// run syncs the customer, and again while polls report further changes
// (api.SignalResync) that arrived after it read both sides.
func (s *customerRun) run(ctx workflow.Context, it *spine.Item) error {
	s.id = it.Key()
	if companyID, ok := api.NewCompanyID(it.Key()); ok && s.repair != nil && s.repair.Class == api.ClassDuplicate {
		return s.duplicate(ctx, it, companyID)
	}
	if companyID, ok := api.NewCompanyID(it.Key()); ok {
		// A customer may carry an ID of that form too: it is synced as one.
		err := it.Call(ctx, "Look for customer "+s.id+" in PostgreSQL", customerActivities.LoadCustomer,
			activities.LoadCustomerInput{CustomerID: s.id}, &s.customer)
		switch {
		case api.TypeOf(err) == api.ErrorNotFound:
			imported, err := s.newInCRM(ctx, it, companyID)
			if !imported || err != nil {
				return err
			}
		case err != nil:
			return err
		}
	}
	resync := workflow.GetSignalChannel(ctx, api.SignalResync)
	for pass := 1; ; pass++ {
		for resync.ReceiveAsync(nil) {
			// Changes reported before this read are in it.
		}
		if err := s.sync(ctx, it); err != nil {
			return err
		}
		if resync.Len() == 0 {
			return nil
		}
		if pass == maxPasses {
			// A record that keeps changing goes on in a new run, which reads
			// both sides afresh: one run's history stays bounded.
			for resync.ReceiveAsync(nil) {
			}
			return workflow.NewContinueAsNewError(ctx, CustomerSync, CustomerSyncInput{ItemInput: api.ItemInput{StartedBy: "resync"}})
		}
	}
}

// maxPasses bounds the syncs one run makes for changes reported while it ran.
const maxPasses = 10

func (s *customerRun) sync(ctx workflow.Context, it *spine.Item) error {
	if err := s.load(ctx, it); err != nil {
		return err
	}
	var found activities.FindCompanyResult
	err := it.Do(ctx, "find company", func(ctx workflow.Context) error {
		in := activities.FindCompanyInput{Integration: api.IntegrationCustomerSync, CustomerID: s.id, Properties: s.properties()}
		return it.Call(ctx, "Find the CRM company of customer "+s.id, companyActivities.FindCompany, in, &found)
	})
	if err != nil {
		return err
	}
	s.company, s.baseline = found.Company, found.Baseline
	gone := found.Linked && (s.company == nil || s.company.Archived)
	switch {
	case s.customer.Archived:
		return s.archiveCompany(ctx, it)
	case gone:
		if done, err := s.companyGone(ctx, it); done || err != nil {
			return err
		}
	case s.company == nil:
		if err := s.createCompany(ctx, it); err != nil {
			return err
		}
	}
	it.SetExternalID(api.ExternalCRMCompany, s.company.ID)
	if err := s.restoreCustomerID(ctx, it); err != nil {
		return err
	}
	for round := 1; ; round++ {
		synced, err := s.syncRound(ctx, it)
		if synced || err != nil {
			return err
		}
		if round == maxRounds {
			// Someone keeps editing while we write: the next run goes on.
			it.Logger().Warn("customer keeps changing during its sync; stopping after the round limit", "rounds", maxRounds)
			return nil
		}
	}
}

// restoreCustomerID puts our customer ID back on the linked company when it
// was edited in the CRM (to another customer's, or cleared): the link, not
// the editable property, says whose company it is. Audited.
func (s *customerRun) restoreCustomerID(ctx workflow.Context, it *spine.Item) error {
	// The customer as read (not the item's key, which a replay does not
	// keep) says whose company this is.
	id, was := s.customer.ID, s.company.Properties[crm.PropCustomerID]
	if was == id {
		return nil
	}
	err := it.Do(ctx, "restore customer ID", func(ctx workflow.Context) error {
		in := activities.UpdateCompanyInput{CompanyID: s.company.ID, Properties: crm.Properties{crm.PropCustomerID: id}, Read: s.properties()}
		var c crm.Company
		err := it.Call(ctx, "Put customer ID "+id+" back on CRM company "+s.company.ID, companyActivities.UpdateCompany, in, &c)
		if err == nil {
			s.company = &c
		}
		return err
	})
	if err != nil {
		return err
	}
	return it.Audit(ctx, "owner_wins", "the company's customer ID was edited in the CRM; the link says it is "+id+"'s, and the ID was written back",
		map[string]any{"company": s.company.ID, "signalbox_customer_id": map[string]string{"edited": was, "written back": id}})
}

// load reads the customer, waiting for a person while it is missing.
func (s *customerRun) load(ctx workflow.Context, it *spine.Item) error {
	for {
		err := it.Call(ctx, "Load customer "+s.id+" from PostgreSQL", customerActivities.LoadCustomer,
			activities.LoadCustomerInput{CustomerID: s.id}, &s.customer)
		if api.TypeOf(err) != api.ErrorNotFound {
			return err
		}
		_, err = it.Raise(ctx, api.ValidationFailed, "no customer "+s.id+" in PostgreSQL; create it, then retry",
			map[string]string{"id": "no customer " + s.id + " in PostgreSQL"})
		if err != nil {
			return err
		}
	}
}

// syncRound decides every field three-way and writes what the rules allow,
// asking a person where they say to. It reports whether both sides were
// found in sync; after writing, the next round checks that they are.
func (s *customerRun) syncRound(ctx workflow.Context, it *spine.Item) (bool, error) {
	plan := s.refuseUnstorable(fieldrules.Decide(s.spec, s.customer.Values(), s.companyValues(), s.baseline))
	if len(plan.Conflicts) > 0 && (len(plan.ToTarget) > 0 || len(plan.ToSource) > 0) {
		// What the rules decide goes through first; the next round asks
		// about the rest. A question never holds back the other fields.
		plan.Conflicts = nil
	}
	if len(plan.Conflicts) > 0 {
		var err error
		if plan, err = s.ask(ctx, it, plan); err != nil {
			return false, err
		}
	}
	if len(plan.ToTarget) == 0 && len(plan.ToSource) == 0 {
		if !maps.Equal(plan.Baseline, s.baseline) {
			return true, s.saveBaseline(ctx, it, plan.Baseline)
		}
		return true, nil
	}
	if len(plan.ToTarget) > 0 {
		err := it.Do(ctx, "update company", func(ctx workflow.Context) error {
			in := activities.UpdateCompanyInput{CompanyID: s.company.ID, Properties: s.targetProperties(plan.ToTarget), Read: s.properties()}
			var c crm.Company
			err := it.Call(ctx, "Update CRM company "+s.company.ID+": "+strings.Join(slices.Sorted(maps.Keys(plan.ToTarget)), ", "), companyActivities.UpdateCompany, in, &c)
			if err == nil {
				s.company = &c
			}
			return err
		})
		if err != nil {
			return false, err
		}
	}
	if len(plan.ToSource) > 0 {
		in := activities.WriteCustomerInput{CustomerID: s.id, IfVersion: s.customer.Version, Set: plan.ToSource}
		stale := false
		err := it.Do(ctx, "write customer", func(ctx workflow.Context) error {
			err := it.Call(ctx, "Write "+strings.Join(slices.Sorted(maps.Keys(plan.ToSource)), ", ")+" to customer "+s.id, customerActivities.WriteCustomer, in, &s.customer)
			// Changed (Stale) or deleted (NotFound) meanwhile: read it again,
			// which waits for a person if it is gone.
			stale = api.TypeOf(err) == api.ErrorStale || api.TypeOf(err) == api.ErrorNotFound
			if stale {
				return nil
			}
			return err
		})
		if err != nil {
			return false, err
		}
		if stale {
			// Edited in PostgreSQL while we decided: decide again on what it
			// holds now (the CRM's side is as written, and re-read).
			return false, s.load(ctx, it)
		}
	}
	if err := s.saveBaseline(ctx, it, plan.Baseline); err != nil {
		return false, err
	}
	return false, s.tellOverruled(ctx, it, plan.Overruled)
}

// refuseUnstorable takes a CRM value PostgreSQL cannot hold (a country
// "Germany") out of the write and asks about it instead, as a conflict of
// that field: keep PostgreSQL's value, or amend to one it can hold.
func (s *customerRun) refuseUnstorable(p fieldrules.Plan) fieldrules.Plan {
	for _, field := range slices.Sorted(maps.Keys(p.ToSource)) {
		v := p.ToSource[field]
		if _, err := s.customer.With(map[string]string{field: v}); err == nil {
			continue
		}
		delete(p.ToSource, field)
		base, known := s.baseline[field]
		p.Conflicts = append(p.Conflicts, fieldrules.Diff{Field: field, Source: s.customer.Values()[field], Target: v, Base: base, Known: known})
		if known {
			p.Baseline[field] = base
		} else {
			delete(p.Baseline, field)
		}
	}
	return p
}

// ask raises Conflict for the fields the rules leave to a person, and plans
// the decision: the kept side's values, or the person's, on both sides.
func (s *customerRun) ask(ctx workflow.Context, it *spine.Item, plan fieldrules.Plan) (fieldrules.Plan, error) {
	details := map[string]string{"company": s.company.ID}
	s.conflicts = nil
	for _, d := range plan.Conflicts {
		s.conflicts = append(s.conflicts, d.Field)
		values := []api.LabelledValue{{Label: api.ValueInPostgreSQL, Value: d.Source}, {Label: api.ValueInCRM, Value: d.Target}}
		if d.Known {
			values = append(values, api.LabelledValue{Label: api.ValueLastSynced, Value: d.Base.Source})
		}
		details[d.Field] = api.FormatValues(values...)
		if _, err := s.customer.With(map[string]string{d.Field: d.Target}); err != nil {
			details[d.Field] += "; PostgreSQL cannot hold the CRM's value (" + err.Error() + "): choose postgres, or amend"
		}
	}
	summary := fmt.Sprintf("customer %s and CRM company %s were both edited, or an edit needs judgment: %s; approve the side to keep, or amend to other values",
		s.id, s.company.ID, strings.Join(s.conflicts, ", "))
	d, err := it.Raise(ctx, api.Conflict, summary, details)
	if err != nil {
		return plan, err
	}
	r := fieldrules.Resolution{Keep: s.spec.Target}
	if d.Choice == api.ChoiceKeepPostgres {
		r.Keep = s.spec.Source
	}
	if d.Action == api.ActionAmend {
		r.Set = s.amendment
	}
	s.conflicts, s.amendment = nil, nil
	return plan.Resolve(s.spec, r), nil
}

func (s *customerRun) saveBaseline(ctx workflow.Context, it *spine.Item, base store.Baseline) error {
	link := store.Link{Integration: api.IntegrationCustomerSync, SourceKey: s.id, TargetSystem: api.SystemCRM, TargetID: s.company.ID,
		WorkflowID: it.WorkflowID(), Baseline: base}
	if err := it.Call(ctx, "Record what both sides hold", spineActivities.SaveBaseline, activities.SaveBaselineInput{Link: link}, nil); err != nil {
		return err
	}
	s.baseline = base
	return nil
}

// tellOverruled audits each edit a field's owner overruled, with both values,
// and tells the team that works in the system edited.
func (s *customerRun) tellOverruled(ctx workflow.Context, it *spine.Item, overruled []fieldrules.Overrule) error {
	bySystem := map[string][]fieldrules.Overrule{}
	for _, o := range overruled {
		bySystem[o.Edited] = append(bySystem[o.Edited], o)
	}
	for _, system := range slices.Sorted(maps.Keys(bySystem)) {
		var fields []string
		details := map[string]any{"company": s.company.ID, "edited in": system}
		values := map[string]string{}
		for _, o := range bySystem[system] {
			was, written := o.Target, o.Source
			if system == s.spec.Source {
				was, written = o.Source, o.Target
			}
			fields = append(fields, o.Field)
			details[o.Field] = map[string]string{"edited": was, "written back": written}
			values[o.Field] = was + "→" + written
		}
		reason := fmt.Sprintf("%s owns %s (rule owner-wins): the edit in %s was written back", s.owner(bySystem[system][0]), strings.Join(fields, ", "), system)
		if err := it.Audit(ctx, "owner_wins", reason, details); err != nil {
			return err
		}
		team := s.spec.Editor(system)
		text := fmt.Sprintf("Customer %s: %s. The values are in the audit trail: signals show %s", s.id, reason, it.WorkflowID())
		key := it.WorkflowID() + "/owner-wins/" + hashFields(values, fields)[:16]
		if err := it.Notify(ctx, "tell "+team, team, "its edit was written back", text, key); err != nil {
			return err
		}
	}
	return nil
}

func (s *customerRun) owner(o fieldrules.Overrule) string {
	if o.Edited == s.spec.Source {
		return s.spec.Target
	}
	return s.spec.Source
}

// createCompany creates the customer's company with every value it may
// hold, then records the baseline.
func (s *customerRun) createCompany(ctx workflow.Context, it *spine.Item) error {
	plan := fieldrules.Decide(s.spec, s.customer.Values(), fieldrules.Values{}, nil)
	var c crm.Company
	err := it.Do(ctx, "create company", func(ctx workflow.Context) error {
		in := activities.CreateCompanyInput{Integration: api.IntegrationCustomerSync, CustomerID: s.id, WorkflowID: it.WorkflowID(),
			Properties: s.targetProperties(plan.ToTarget)}
		return it.Call(ctx, "Create the CRM company of customer "+s.id, companyActivities.CreateCompany, in, &c)
	})
	if err != nil {
		return err
	}
	s.company = &c
	return nil
}

// archiveCompany archives the company of an archived customer.
func (s *customerRun) archiveCompany(ctx workflow.Context, it *spine.Item) error {
	if s.company == nil || s.company.Archived {
		return nil
	}
	it.SetExternalID(api.ExternalCRMCompany, s.company.ID)
	err := it.Do(ctx, "archive company", func(ctx workflow.Context) error {
		return it.Call(ctx, "Archive CRM company "+s.company.ID, companyActivities.ArchiveCompany, activities.ArchiveCompanyInput{CompanyID: s.company.ID}, nil)
	})
	if err != nil {
		return err
	}
	return it.Audit(ctx, "archived_in_target", "customer "+s.id+" is archived: its CRM company "+s.company.ID+" was archived", map[string]any{"company": s.company.ID})
}

// companyGone asks the owner team what to do when the company of an active
// customer was archived or deleted in the CRM: archive the customer too, or
// restore the company (a new one, linked in its place). It reports whether
// the item is done.
func (s *customerRun) companyGone(ctx workflow.Context, it *spine.Item) (bool, error) {
	what := "deleted"
	details := map[string]string{}
	if s.company != nil {
		what = "archived"
		details["company"] = s.company.ID
	}
	d, err := it.Raise(ctx, api.ArchivedInCRM, fmt.Sprintf("the CRM company of customer %s was %s in the CRM; approve %s to archive the customer too, or %s to create the company again",
		s.id, what, api.ChoiceArchiveCustomer, api.ChoiceRestoreCompany), details)
	if err != nil {
		return true, err
	}
	if d.Choice == api.ChoiceArchiveCustomer {
		// The decision may have taken days: archive the customer as it is now.
		if err := s.load(ctx, it); err != nil {
			return true, err
		}
		err := it.Do(ctx, "archive customer", func(ctx workflow.Context) error {
			return it.Call(ctx, "Archive customer "+s.id+" in PostgreSQL", customerActivities.ArchiveCustomer,
				activities.ArchiveCustomerInput{CustomerID: s.id, IfVersion: s.customer.Version}, &s.customer)
		})
		return true, err
	}
	s.baseline = nil
	return false, s.createCompany(ctx, it)
}

// newInCRM asks what to do with a company created in the CRM that no
// customer matches: import it as a customer (its values, amended where the
// operator says), or ignore it — remembered, so no poll asks again. It
// reports whether a customer was imported, to be synced as any other.
// duplicate asks finance about a second company carrying a customer's ID,
// which a reconcile run found: archive it, or keep both for good.
func (s *customerRun) duplicate(ctx workflow.Context, it *spine.Item, companyID string) error {
	f := *s.repair
	customer, linked := f.Details["customer"], f.Details["linked company"]
	summary := fmt.Sprintf("CRM company %s carries the ID of customer %s, whose company is %s (reconcile run %d); approve archives %s in the CRM — merge what it holds into %s first —, reject keeps both and is not asked again",
		companyID, customer, linked, f.RunID, companyID, linked)
	_, err := it.Raise(ctx, api.DuplicateInTarget, summary, f.Details)
	var end spine.Ended
	if errors.As(err, &end) && end.Status == api.StatusRejected {
		ierr := it.Call(ctx, "Remember to leave company "+companyID+" alone", customerActivities.IgnoreRecord,
			activities.IgnoreRecordInput{Integration: s.spec.Name, System: api.SystemCRM, RecordID: companyID, Actor: end.Actor, Reason: "rejected DuplicateInTarget"}, nil)
		if ierr != nil {
			return ierr
		}
	}
	if err != nil {
		return err
	}
	return it.Do(ctx, "archive the duplicate", func(ctx workflow.Context) error {
		return it.Call(ctx, "Archive CRM company "+companyID, companyActivities.ArchiveCompany, activities.ArchiveCompanyInput{CompanyID: companyID}, nil)
	})
}

func (s *customerRun) newInCRM(ctx workflow.Context, it *spine.Item, companyID string) (bool, error) {
	co, err := s.readNewCompany(ctx, it, companyID)
	if err != nil || co == nil {
		return false, err // gone, or linked to a customer meanwhile: nothing to ask
	}
	// The proposal takes every value PostgreSQL can hold; a value it
	// cannot is named in the details, for an amendment.
	proposed := store.Customer{ID: api.ImportedCustomerID(companyID)}
	details := map[string]string{"company": companyID, "customer id": proposed.ID}
	for _, f := range s.spec.SyncedFields() {
		v := co.Properties[f.TargetName]
		if v == "" {
			continue
		}
		details[f.Name] = v
		if next, verr := proposed.With(map[string]string{f.Name: v}); verr == nil {
			proposed = next
		} else {
			details["problem: "+f.Name] = verr.Error() + "; amend it, or it is left out"
		}
	}
	s.importing = &proposed
	summary := fmt.Sprintf("CRM company %s (%q) matches no customer; approve to import it as customer %s, amend its values first if they need it, or reject to leave it out of the sync for good",
		companyID, co.Properties[crm.PropCompanyName], proposed.ID)
	_, err = it.Raise(ctx, api.NewInCRM, summary, details)
	imported, amended := *s.importing, s.amendment
	s.importing, s.amendment = nil, nil
	var end spine.Ended
	if errors.As(err, &end) && end.Status == api.StatusRejected {
		ierr := it.Call(ctx, "Remember to leave company "+companyID+" alone", customerActivities.IgnoreRecord,
			activities.IgnoreRecordInput{Integration: s.spec.Name, System: api.SystemCRM, RecordID: companyID, Actor: end.Actor, Reason: "rejected NewInCRM"}, nil)
		if ierr != nil {
			return false, ierr
		}
	}
	if err != nil {
		return false, err
	}
	// The decision may have taken days: a company linked to a customer
	// meanwhile is that customer's, and nothing is imported.
	if co, err = s.readNewCompany(ctx, it, companyID); err != nil || co == nil {
		if err == nil {
			err = it.Audit(ctx, "not_imported", "company "+companyID+" was linked to a customer while the decision waited", map[string]any{"company": companyID})
		}
		return false, err
	}
	err = it.Do(ctx, "import customer", func(ctx workflow.Context) error {
		return it.Call(ctx, "Create customer "+imported.ID+" in PostgreSQL", customerActivities.InsertCustomer,
			activities.InsertCustomerInput{Customer: imported}, &s.customer)
	})
	if err != nil {
		return false, err
	}
	s.id = imported.ID
	// The company is marked as the customer's, and the operator's amendments
	// are written to it too: both sides hold them, and they are the baseline.
	write := crm.Properties{crm.PropCustomerID: imported.ID}
	for field, v := range amended {
		write[s.spec.TargetName(field)] = v
	}
	err = it.Do(ctx, "mark company", func(ctx workflow.Context) error {
		in := activities.UpdateCompanyInput{CompanyID: companyID, Properties: write, Read: s.properties()}
		var marked crm.Company
		err := it.Call(ctx, "Mark CRM company "+companyID+" as customer "+imported.ID, companyActivities.UpdateCompany, in, &marked)
		if err == nil {
			s.company = &marked
		}
		return err
	})
	if err != nil {
		return false, err
	}
	it.SetExternalID(api.ExternalCustomer, imported.ID)
	return true, s.saveBaseline(ctx, it, fieldrules.Decide(s.spec, s.customer.Values(), s.companyValues(), nil).Baseline)
}

// readNewCompany reads a company that carried no customer ID; nil when it is
// gone, or carries one now.
func (s *customerRun) readNewCompany(ctx workflow.Context, it *spine.Item, companyID string) (*crm.Company, error) {
	var co *crm.Company
	err := it.Do(ctx, "read company", func(ctx workflow.Context) error {
		return it.Call(ctx, "Read CRM company "+companyID, companyActivities.ReadCompany,
			activities.ReadCompanyInput{CompanyID: companyID, Properties: s.properties()}, &co)
	})
	if err != nil || co == nil || co.Properties[crm.PropCustomerID] != "" {
		return nil, err
	}
	s.company = co
	return co, nil
}
