package workflows

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/fieldrules"
	"github.com/signalbox-dev/signalbox/workflows/spine"

	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/store"
)

// Lead is a web-form submission: the contract of LeadToCRM.
type Lead struct {
	// ID is the form's submission ID; it is the item's source key unless the
	// intake was given an Idempotency-Key.
	ID        string `json:"id,omitempty"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Company   string `json:"company,omitempty"`
	Phone     string `json:"phone,omitempty"`
	JobTitle  string `json:"jobTitle,omitempty"`
	// Consent is the person's consent to be contacted; without it the lead waits
	// for a person to approve (with evidence) or reject it.
	Consent bool `json:"consent"`
	// Source names the form.
	Source string `json:"source,omitempty"`
	// Country (ISO 3166 alpha-2) and CompanySize (employees) route the lead
	// to a sales team (SIGNALBOX_LEAD_ROUTES).
	Country     string `json:"country,omitempty"`
	CompanySize int    `json:"companySize,omitempty"`
}

// LeadInput starts a LeadToCRM item.
type LeadInput struct {
	api.ItemInput
	Lead Lead `json:"lead"`
}

// Validate returns every field error at once.
func (l Lead) Validate() api.FieldErrors {
	var errs api.FieldErrors
	if l.ID != "" {
		if err := api.CheckSourceKey(l.ID); err != nil {
			errs.Add("id", "%v", err)
		}
	}
	// The fields an operator may amend are checked as an amendment's values
	// are (api.CheckLeadField), so the console judges them alike.
	for _, f := range []struct{ name, v string }{
		{"email", l.Email}, {"firstName", l.FirstName}, {"lastName", l.LastName}, {"company", l.Company},
		{"jobTitle", l.JobTitle}, {"source", l.Source}, {"phone", l.Phone},
	} {
		api.CheckLeadField(&errs, f.name, f.v)
	}
	if l.Country != "" && !countryPattern.MatchString(l.Country) {
		errs.Add("country", "must be a two-letter ISO country code, like DE")
	}
	if l.CompanySize < 0 || l.CompanySize > 10_000_000 {
		errs.Add("companySize", "must be a number of employees between 0 and 10000000")
	}
	return errs
}

var countryPattern = regexp.MustCompile(`^[A-Za-z]{2}$`)

// With returns the lead with the fields in set changed, or the field errors of
// the amendment (api.Spec.CheckAmendment, the console's check too) and of the
// result.
func (l Lead) With(set map[string]string) (Lead, error) {
	errs := api.LeadToCRMSpec().CheckAmendment(set)
	for field, v := range set {
		switch field {
		case "email":
			l.Email = v
		case "firstName":
			l.FirstName = v
		case "lastName":
			l.LastName = v
		case "company":
			l.Company = v
		case "phone":
			l.Phone = v
		case "jobTitle":
			l.JobTitle = v
		case "source":
			l.Source = v
		}
	}
	return amended(l, errs, Lead.Validate)
}

// legacyLeadProperties are the properties items begun before field rules
// hashed (links written then carry a hash over exactly these): frozen.
var legacyLeadProperties = []string{crm.PropEmail, crm.PropFirstName, crm.PropLastName, crm.PropCompany, crm.PropPhone, crm.PropJobTitle}

// leadOwnedProperties are the CRM properties whose values the web form owns,
// as the spec declares them.
func leadOwnedProperties() []string { return ownedProperties(api.LeadToCRMSpec()) }

// ownedProperties lists the target names of the fields the spec's source owns.
func ownedProperties(spec api.Spec) []string {
	var out []string
	for _, f := range spec.OwnedFields() {
		out = append(out, f.TargetName)
	}
	return out
}

// Properties maps the lead to CRM contact properties, empty ones included;
// which of them are written is decided field by field (see leadSync.plan).
func (l Lead) Properties() crm.Properties {
	return crm.Properties{
		crm.PropEmail:      strings.ToLower(strings.TrimSpace(l.Email)),
		crm.PropFirstName:  strings.TrimSpace(l.FirstName),
		crm.PropLastName:   strings.TrimSpace(l.LastName),
		crm.PropCompany:    strings.TrimSpace(l.Company),
		crm.PropPhone:      strings.TrimSpace(l.Phone),
		crm.PropJobTitle:   strings.TrimSpace(l.JobTitle),
		crm.PropLeadSource: strings.TrimSpace(l.Source),
	}
}

var _ = define(leadToCRM)

// leadToCRM is the lead → CRM integration; api.LeadToCRMSpec declares it.
func leadToCRM() spine.Integration {
	return spine.Integration{
		Spec:     api.LeadToCRMSpec(),
		Workflow: LeadToCRM,
		Activities: []spine.Activities{
			spine.On(api.TaskQueueCRM, func(d spine.Deps) *activities.CRM { return &activities.CRM{Client: d.CRM, Store: d.Store} }),
			spine.On(api.TaskQueueCRMPoll, func(d spine.Deps) *activities.LeadReconcile {
				return &activities.LeadReconcile{Client: d.CRM, Store: d.Store}
			}),
		},
		Intake:    spine.Intake{Route: "POST /v1/leads", Command: "lead", Usage: "--file FILE [--key KEY]", Decode: decodeLead},
		Reconcile: &spine.Reconcile{Queue: api.TaskQueueCRMPoll, Step: leadReconcile.ReconcileLeads},
	}
}

// LeadToCRM syncs one web-form lead into the CRM.
func LeadToCRM(ctx workflow.Context, in LeadInput) (api.Result, error) {
	s := &leadSync{lead: in.Lead, repair: in.Reconcile}
	return spine.Run(ctx, leadToCRM(), in.ItemInput, spine.Hooks{Amend: s.amend, Ended: s.ended}, s.run)
}

// leadSync is the state of one LeadToCRM run.
type leadSync struct {
	lead Lead
	// byRules is set for items begun after field rules existed.
	byRules bool
	// repair is what a reconcile run found, when it started the item: the
	// lead is synced again as it was last synced, by the same field rules.
	repair *api.ReconcileFinding
	// lastContact is the contact the lead was last synced to, for a repair.
	lastContact string
}

func (s *leadSync) amend(set map[string]string, apply bool) error {
	next, err := s.lead.With(set)
	if err != nil {
		return err
	}
	if apply {
		s.lead = next
	}
	return nil
}

func (s *leadSync) run(ctx workflow.Context, it *spine.Item) error {
	// The deployment drill's changed step, only in its "v2" build: new items
	// take it, items begun before the change (replaying on v2) do not, as
	// any change to running code is made (README, "Deploying a new version").
	if deployDrill && workflow.GetVersion(ctx, "deploy-drill", workflow.DefaultVersion, 1) == 1 {
		if err := it.Audit(ctx, "deploy_drill", "the step the deployment drill's v2 added", nil); err != nil {
			return err
		}
	}
	if s.repair != nil {
		if done, err := s.lastSynced(ctx, it); done || err != nil {
			return err
		}
	}
	for errs := s.lead.Validate(); len(errs) > 0; errs = s.lead.Validate() {
		if _, err := it.Raise(ctx, api.ValidationFailed, "the lead breaks its contract: "+errs.Error(), errs.Details()); err != nil {
			return err
		}
	}
	if s.repair == nil && workflow.GetVersion(ctx, "lead-routing", workflow.DefaultVersion, 1) == 1 {
		if err := s.route(ctx, it); err != nil {
			return err
		}
	}
	if !s.lead.Consent {
		if _, err := it.Raise(ctx, api.ConsentMissing, "the lead did not consent to be contacted; approve only with evidence of consent in the reason", nil); err != nil {
			return err
		}
	}

	var found activities.FindContactResult
	err := it.Do(ctx, "find contact", func(ctx workflow.Context) error {
		in := activities.FindContactInput{
			Integration: api.IntegrationLeadToCRM, SourceKey: it.Key(), Email: s.lead.Properties()[crm.PropEmail],
			FirstName: strings.TrimSpace(s.lead.FirstName), LastName: strings.TrimSpace(s.lead.LastName), Company: strings.TrimSpace(s.lead.Company),
			Properties: append(slices.Clone(leadOwnedProperties()), crm.PropAdditionalEmails),
		}
		return it.Call(ctx, "Find the contact by link, email, or name and company", crmActivities.FindContact, in, &found)
	})
	if err != nil {
		return err
	}

	target := found.Contact
	// merged: the lead lives in a contact whose primary email is another's, its
	// own address filed among the additional ones (decided earlier, or now).
	merged := target != nil && found.Via == "link" && !strings.EqualFold(target.Properties[crm.PropEmail], s.lead.Properties()[crm.PropEmail]) &&
		crm.AddEmail(target.Properties[crm.PropAdditionalEmails], s.lead.Properties()[crm.PropEmail]) == target.Properties[crm.PropAdditionalEmails]
	// Items begun before field rules compared the whole contact by hash and
	// wrote every field, blanks included.
	s.byRules = workflow.GetVersion(ctx, "lead-field-rules", workflow.DefaultVersion, 1) == 1
	byRules := s.byRules
	switch {
	case !byRules && target != nil && found.SyncedHash != "" && hashFields(target.Properties, legacyLeadProperties) != found.SyncedHash:
		details := s.differences(target.Properties)
		details["contact"] = target.ID
		if _, err := it.Raise(ctx, api.Conflict, fmt.Sprintf("CRM contact %s was edited since signalbox last wrote it; approve overwrites the CRM with the form's values", target.ID), details); err != nil {
			return err
		}
	case target == nil && len(found.Similar) > 0:
		similar := found.Similar[0]
		d, err := it.Raise(ctx, api.DuplicateSuspected,
			fmt.Sprintf("CRM contact %s has the same name and company under another email", similar.ID),
			map[string]string{"contact": similar.ID, "its email": maskEmail(similar.Properties[crm.PropEmail]), "lead email": maskEmail(s.lead.Email)})
		if err != nil {
			return err
		}
		if d.Choice == "merge" {
			target, merged = &similar, true
		}
	}
	if byRules && target != nil {
		if err := s.askAboutEdits(ctx, it, target, found, merged); err != nil {
			return err
		}
	}

	contactID := ""
	if target != nil {
		contactID = target.ID
	}
	props, hash := s.desired(target, merged)
	var upToDate bool
	if byRules {
		upToDate = target != nil && !merged && len(s.plan(target, found, merged, true).write) == 0
	} else {
		upToDate = target != nil && found.Via == "link" && found.SyncedHash == hash && sameValues(target.Properties, props)
	}
	switch {
	case upToDate && byRules && (found.Via != "link" || found.Baseline == nil):
		// Nothing to write, but the contact is not linked (or its link has no
		// baseline yet): link it as it is.
		p := s.plan(target, found, merged, true)
		err = it.Call(ctx, "Link CRM contact "+contactID, spineActivities.SaveBaseline, activities.SaveBaselineInput{
			Link: store.Link{Integration: api.IntegrationLeadToCRM, SourceKey: it.Key(), TargetSystem: api.SystemCRM, TargetID: contactID,
				SyncedHash: hash, WorkflowID: it.WorkflowID(), Baseline: p.baseline}}, nil)
	case !upToDate:
		err = it.Do(ctx, "write contact", func(ctx workflow.Context) error {
			// Recomputed on every run of the step: an amend may have changed the lead.
			props, hash = s.desired(target, merged)
			in := activities.UpdateContactInput{Integration: api.IntegrationLeadToCRM, SourceKey: it.Key(),
				WorkflowID: it.WorkflowID(), ContactID: contactID, Properties: props, Hash: hash}
			if byRules {
				// Edits were asked about above; an amendment is the operator's word.
				p := s.plan(target, found, merged, true)
				in.Properties, in.Baseline = p.write, p.baseline
			}
			if merged {
				in.AddEmail = s.lead.Properties()[crm.PropEmail]
			}
			id, err := s.write(ctx, it, in)
			if err == nil {
				contactID = id
			}
			return err
		})
	}
	if err != nil {
		return err
	}
	it.SetExternalID(api.ExternalCRMContact, contactID)
	var overruled []string
	if byRules && target != nil && !upToDate {
		p := s.plan(target, found, merged, true)
		if err := s.auditOverruled(ctx, it, p, contactID); err != nil {
			return err
		}
		overruled = slices.Sorted(maps.Keys(p.overruled))
	}

	text := fmt.Sprintf("Lead %s synced to CRM contact %s.", it.Key(), contactID)
	if upToDate {
		text = fmt.Sprintf("Lead %s re-synced: CRM contact %s was already up to date.", it.Key(), contactID)
	}
	if len(overruled) > 0 {
		// The team works in the CRM: it hears that its edits were replaced (names
		// of the fields only; the values are in the audit trail).
		text += fmt.Sprintf("\nThe form owns %s (rule owner-wins): its values replaced edits made in the CRM.", strings.Join(overruled, ", "))
	}
	// The same content notifies once, however often the step or the item re-runs.
	key := it.WorkflowID() + "/synced/" + hash[:16]
	if s.repair != nil {
		// The team hears of a repair that replaced someone's edit or made
		// the contact again; a write that only settled the baseline (a
		// merged lead's) is no news.
		created := contactID != s.lastContact
		if upToDate || (len(overruled) == 0 && !created) {
			return nil
		}
		text = fmt.Sprintf("Reconcile run %d repaired CRM contact %s of lead %s.", s.repair.RunID, contactID, it.Key()) + strings.TrimPrefix(text, fmt.Sprintf("Lead %s synced to CRM contact %s.", it.Key(), contactID))
		if created {
			text += fmt.Sprintf("\nCRM contact %s was deleted; sales approved making it again.", s.lastContact)
		}
		key += fmt.Sprintf("/reconcile-%d", s.repair.RunID)
	}
	return it.Notify(ctx, "notify", it.Team(), "the lead is synced", text, key)
}

// lastSynced makes the lead what was last synced of it, for a repair: the
// form is the source and is sent once, so its link's baseline holds it. A
// contact deleted in the CRM is created again only if sales say so.
func (s *leadSync) lastSynced(ctx workflow.Context, it *spine.Item) (done bool, err error) {
	var last activities.LastSyncedResult
	in := activities.LinkInput{Integration: api.IntegrationLeadToCRM, SourceKey: it.Key(), TargetSystem: api.SystemCRM}
	if err := it.Local(ctx, "Read what was last synced", spineActivities.LastSynced, in, &last); err != nil {
		return false, err
	}
	if !last.Found || last.Link.Baseline == nil {
		it.Logger().Info("nothing to repair: the lead has no link, or none with its values")
		return true, nil
	}
	lead, err := Lead{Consent: true}.With(fieldrules.BaselineSource(fieldrules.ByField(api.LeadToCRMSpec(), last.Link.Baseline)))
	if err != nil {
		return false, fmt.Errorf("the values last synced of lead %s are no lead: %w", it.Key(), err)
	}
	s.lead = lead
	s.lastContact = last.Link.TargetID
	it.SetExternalID(api.ExternalCRMContact, last.Link.TargetID)
	if last.Team != "" && last.Team != it.Team() {
		// Routed when it was synced: that team hears of it and decides.
		if err := it.Assign(ctx, last.Team, api.ActorSystem, "the team the lead was routed to when it was synced"); err != nil {
			return false, err
		}
	}
	if s.repair.Class == api.ClassMissing {
		_, err := it.Raise(ctx, api.MissingInTarget, fmt.Sprintf("CRM contact %s of this lead is gone (deleted in the CRM); approve creates it again as last synced, reject leaves it deleted", last.Link.TargetID),
			map[string]string{"contact": last.Link.TargetID, "reconcile run": fmt.Sprint(s.repair.RunID)})
		return false, err
	}
	return false, nil
}

// ended remembers what sales decided about a contact deleted in the CRM, so
// that no later run raises it again: reject forgets the link (it stays
// deleted); resolve (handled by hand) accepts its absence while the link
// names that contact.
func (s *leadSync) ended(ctx workflow.Context, it *spine.Item, end spine.Ended) error {
	if end.Kind != api.MissingInTarget || s.repair == nil {
		return nil
	}
	switch end.Status {
	case api.StatusRejected:
		in := activities.LinkInput{Integration: api.IntegrationLeadToCRM, SourceKey: it.Key(), TargetSystem: api.SystemCRM}
		return it.Local(ctx, "Forget the deleted contact", spineActivities.ForgetLink, in, nil)
	case api.StatusManuallyResolved:
		return acceptDifference(ctx, it, *s.repair, end.Actor, "resolved by hand: "+end.Ref)
	}
	return nil
}

// acceptDifference remembers that a person accepted what a reconcile run
// found: no later run raises it while its values stay the same.
func acceptDifference(ctx workflow.Context, it *spine.Item, f api.ReconcileFinding, actor, reason string) error {
	in := activities.AcceptDifferenceInput{Integration: it.Integration(), SourceKey: it.Key(), Finding: f, Actor: actor, Reason: reason}
	return it.Local(ctx, "Accept the difference", spineActivities.AcceptDifference, in, nil)
}

// route assigns the lead to the sales team whose rules take it. When no rule
// does, or the rules of more than one team do, sales operations pick the team.
func (s *leadSync) route(ctx workflow.Context, it *spine.Item) error {
	routes, err := ParseRoutes(it.Policy().LeadRoutes)
	if err != nil || len(routes) == 0 {
		return nil // no routing: the owner team takes every lead (bad rules stop the worker at start)
	}
	teams := RouteLead(routes, s.lead)
	if len(teams) == 1 {
		return it.Assign(ctx, teams[0], api.ActorSystem, fmt.Sprintf("routed by rule %s=%s", teams[0], it.Policy().LeadRoutes[teams[0]]))
	}
	var choices []api.Choice
	for _, r := range routes {
		choices = append(choices, api.Choice{Name: r.Team, Description: it.Policy().LeadRoutes[r.Team]})
	}
	about := fmt.Sprintf("country %q, company size %d", s.lead.Country, s.lead.CompanySize)
	summary := "no routing rule takes the lead (" + about + "); pick its sales team"
	if len(teams) > 1 {
		summary = fmt.Sprintf("the rules of teams %s all take the lead (%s); pick one", strings.Join(teams, ", "), about)
	}
	details := map[string]string{"country": s.lead.Country, "companySize": fmt.Sprint(s.lead.CompanySize)}
	if len(teams) > 1 {
		details["matching teams"] = strings.Join(teams, ", ")
	}
	d, err := it.RaiseChoosing(ctx, api.RoutingUnclear, summary, details, choices)
	if err != nil {
		return err
	}
	return it.Assign(ctx, d.Choice, d.Actor, d.Reason)
}

// fieldPlan is what a sync writes to a contact, decided field by field.
type fieldPlan struct {
	// write holds the values to write.
	write crm.Properties
	// conflicts holds, by property, edits the field's rule says to ask about.
	conflicts map[string]fieldDiff
	// overruled holds edits the owner's value wins over (audited).
	overruled map[string]fieldDiff
	// baseline is what both sides hold once write is written.
	baseline store.Baseline
}

// fieldDiff is one field's values on both sides, and its baseline if known.
type fieldDiff struct {
	crm, form, base string
	known           bool
}

// plan decides, for every form-owned field, whether the form's value is
// written. An edit is judged three-way against the baseline: a field neither
// side changed since the last sync or settlement is left alone; a field only
// the form changed takes the form's value; a blank never overwrites a value;
// a value the CRM holds that signalbox did not put there (an edit, or a
// contact found by email) is overwritten only when the field's rule says the
// form wins (owner-wins: the audit trail keeps both values), and asked about
// otherwise.
// A merged contact keeps its primary email. With acceptForm, the form's value also wins where the rule says ask (the
// operator approved it, or amended the lead).
func (s *leadSync) plan(target *crm.Contact, found activities.FindContactResult, merged, acceptForm bool) fieldPlan {
	desired := s.lead.Properties()
	var current crm.Properties
	if target != nil {
		current = target.Properties
	}
	base := found.Baseline
	if base == nil && found.Via == "link" && found.SyncedHash != "" && hashFields(current, legacyLeadProperties) == found.SyncedHash {
		// A link from before baselines: the contact still holds what was written.
		base = store.Baseline{}
		for _, p := range legacyLeadProperties {
			base[p] = store.Settled{Target: current[p], Source: current[p]}
		}
	}
	if found.Via != "link" {
		base = nil // a contact found by email holds someone else's values
	}
	spec := api.LeadToCRMSpec()
	p := fieldPlan{write: crm.Properties{}, conflicts: map[string]fieldDiff{}, overruled: map[string]fieldDiff{}, baseline: store.Baseline{}}
	for _, f := range spec.OwnedFields() {
		prop := f.TargetName
		settled, known := base[prop]
		form, now := desired[prop], current[prop]
		p.baseline[prop] = store.Settled{Target: now, Source: form}
		if target != nil && prop == crm.PropEmail && (merged || strings.EqualFold(form, now)) {
			continue // found by it, or filed among a merged contact's emails
		}
		d := fieldDiff{crm: now, form: form, base: settled.Target, known: known}
		switch {
		case form == "" || form == now:
			continue
		case known && form == settled.Source && now == settled.Target:
			continue // as settled: the form did not change, nor the CRM
		case now == "" || (known && now == settled.Target):
			// Nothing there, or what was synced: the form's change goes through.
		case f.Rule == api.RuleOwnerWins:
			p.overruled[prop] = d
		case !acceptForm:
			p.conflicts[prop] = d
			continue
		}
		p.write[prop] = form
		p.baseline[prop] = store.Settled{Target: form, Source: form}
	}
	return p
}

// auditOverruled records, for each field whose owner's value was written over
// a value someone else put in the CRM, both values.
func (s *leadSync) auditOverruled(ctx workflow.Context, it *spine.Item, p fieldPlan, contactID string) error {
	if len(p.overruled) == 0 {
		return nil
	}
	details := map[string]any{"contact": contactID}
	for prop, d := range p.overruled {
		details[prop] = map[string]string{"crm": d.crm, "written": d.form}
	}
	fields := strings.Join(slices.Sorted(maps.Keys(p.overruled)), ", ")
	return it.Audit(ctx, "owner_wins", "the form owns "+fields+" (rule owner-wins): its values were written over the CRM's", details)
}

// askAboutEdits raises Conflict when the CRM holds edits of form-owned fields
// that their rule says to ask about. Approve writes the form's values; resolve
// keeps the CRM's and makes them the new baseline, so the same conflict is not
// raised again by a later sync of the same lead.
func (s *leadSync) askAboutEdits(ctx workflow.Context, it *spine.Item, target *crm.Contact, found activities.FindContactResult, merged bool) error {
	p := s.plan(target, found, merged, false)
	if len(p.conflicts) == 0 {
		return nil
	}
	details := map[string]string{"contact": target.ID}
	for _, prop := range slices.Sorted(maps.Keys(p.conflicts)) {
		d := p.conflicts[prop]
		values := []api.LabelledValue{{Label: api.ValueInCRM, Value: d.crm}, {Label: api.ValueInForm, Value: d.form}}
		if d.known {
			values = append(values, api.LabelledValue{Label: api.ValueLastSynced, Value: d.base})
		}
		details[prop] = api.FormatValues(values...)
	}
	summary := fmt.Sprintf("CRM contact %s holds values for %s that signalbox did not write; approve writes the form's, resolve keeps the CRM's",
		target.ID, strings.Join(slices.Sorted(maps.Keys(p.conflicts)), ", "))
	_, err := it.Raise(ctx, api.Conflict, summary, details)
	var end spine.Ended
	if errors.As(err, &end) && end.Status == api.StatusManuallyResolved {
		// The person kept the CRM's values: for the fields in conflict they
		// are the new baseline; the other fields keep theirs.
		settled := maps.Clone(found.Baseline)
		if found.Via != "link" || settled == nil {
			settled = store.Baseline{}
		}
		for prop, d := range p.conflicts {
			settled[prop] = store.Settled{Target: d.crm, Source: d.form}
		}
		p.baseline = settled
		_, hash := s.desired(target, false)
		serr := it.Call(ctx, "Record the CRM's values as settled", spineActivities.SaveBaseline, activities.SaveBaselineInput{
			Link: store.Link{Integration: api.IntegrationLeadToCRM, SourceKey: it.Key(), TargetSystem: api.SystemCRM, TargetID: target.ID,
				SyncedHash: hash, WorkflowID: it.WorkflowID(), Baseline: p.baseline}}, nil)
		if serr != nil {
			return serr
		}
	}
	return err
}

// write creates the contact (when in.ContactID is empty) or updates it, and
// returns its ID. A create answered "already exists" becomes an update of
// that contact. in.AddEmail, when set, merges the lead into the contact.
func (s *leadSync) write(ctx workflow.Context, it *spine.Item, in activities.UpdateContactInput) (string, error) {
	if in.ContactID == "" {
		var created activities.CreateContactResult
		create := activities.CreateContactInput{Integration: in.Integration, SourceKey: in.SourceKey,
			WorkflowID: in.WorkflowID, Properties: in.Properties, Hash: in.Hash, Baseline: in.Baseline}
		err := it.Call(ctx, "Create the CRM contact", crmActivities.CreateContact, create, &created)
		if err != nil || !created.Existed {
			return created.ContactID, err
		}
		in.ContactID = created.ContactID
	}
	id := in.ContactID
	// Items that began before merges took a lock keep updating as they did.
	if in.AddEmail != "" && workflow.GetVersion(ctx, "merge-under-lock", workflow.DefaultVersion, 1) == 1 {
		// Adding to the contact's additional emails is a read-modify-write that
		// other items may race: the activity does it under a lock.
		return id, it.Call(ctx, "Merge into CRM contact "+id, crmActivities.MergeContact, in, nil)
	}
	in.AddEmail = ""
	return id, it.Call(ctx, "Update CRM contact "+id, crmActivities.UpdateContact, in, nil)
}

// desired is what the contact should hold, and its hash. A merged lead keeps
// the contact's primary email and files its own among the additional ones.
func (s *leadSync) desired(target *crm.Contact, merged bool) (crm.Properties, string) {
	props := s.lead.Properties()
	if merged {
		props[crm.PropAdditionalEmails] = crm.AddEmail(target.Properties[crm.PropAdditionalEmails], props[crm.PropEmail])
		props[crm.PropEmail] = target.Properties[crm.PropEmail]
	}
	return props, hashFields(props, s.owned())
}

// owned are the properties the lead's hash covers: the spec's, or for items
// begun before field rules, the ones their links were hashed over.
func (s *leadSync) owned() []string {
	if s.byRules {
		return leadOwnedProperties()
	}
	return legacyLeadProperties
}

// differences lists the form-owned fields whose CRM value differs from the form's.
func (s *leadSync) differences(target crm.Properties) map[string]string {
	out := map[string]string{}
	source := s.lead.Properties()
	for _, p := range s.owned() {
		if target[p] != source[p] {
			out[p] = api.FormatValues(api.LabelledValue{Label: api.ValueInCRM, Value: target[p]}, api.LabelledValue{Label: api.ValueInForm, Value: source[p]})
		}
	}
	return out
}

func sameValues(target, want crm.Properties) bool {
	for k, v := range want {
		if target[k] != v {
			return false
		}
	}
	return true
}

// maskEmail shows enough of an address to tell two apart, not to read it.
func maskEmail(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		return "***"
	}
	r, _ := utf8.DecodeRuneInString(local)
	return string(r) + "***@" + domain
}

// decodeLead reads a lead submitted to the intake or the starter.
func decodeLead(body []byte) (string, func(startedBy string) any, error) {
	lead, err := spine.DecodeRecord[Lead](body, "lead")
	if err != nil {
		return "", nil, err
	}
	return lead.ID, func(startedBy string) any {
		return LeadInput{ItemInput: api.ItemInput{StartedBy: startedBy}, Lead: lead}
	}, nil
}
