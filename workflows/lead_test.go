package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/store"
)

func ada() Lead {
	return Lead{ID: "lead-1", Email: "Ada@Example.com", FirstName: "Ada", LastName: "Lovelace", Company: "Engines", Consent: true}
}

func leadInput(l Lead) LeadInput {
	return LeadInput{ItemInput: api.ItemInput{StartedBy: "test"}, Lead: l}
}

// crmFake answers the CRM activities from a few fixed facts and records writes.
type crmFake struct {
	found    activities.FindContactResult
	findErr  []error // returned by successive FindContact calls, then success
	writes   []write
	wErr     []error // returned by successive writes, then success
	existing string  // when set, creates answer "already exists" with this ID
	finds    int
}

// write is one create or update the workflow asked for.
type write struct {
	ContactID  string // empty for a create
	Properties crm.Properties
	Baseline   store.Baseline
	SourceKey  string
	Hash       string
	Merge      string // the email a merge adds
}

func (c *crmFake) nextWriteErr() error {
	if len(c.wErr) == 0 {
		return nil
	}
	err := c.wErr[0]
	c.wErr = c.wErr[1:]
	return err
}

func (c *crmFake) install(f *fixture) {
	f.env.OnActivity(crmActivities.FindContact, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FindContactInput) (activities.FindContactResult, error) {
		c.finds++
		if len(c.findErr) > 0 {
			err := c.findErr[0]
			c.findErr = c.findErr[1:]
			return activities.FindContactResult{}, err
		}
		return c.found, nil
	}).Maybe()
	f.env.OnActivity(crmActivities.CreateContact, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CreateContactInput) (activities.CreateContactResult, error) {
		c.writes = append(c.writes, write{Properties: in.Properties, SourceKey: in.SourceKey, Hash: in.Hash, Baseline: in.Baseline})
		if err := c.nextWriteErr(); err != nil {
			return activities.CreateContactResult{}, err
		}
		if c.existing != "" {
			return activities.CreateContactResult{ContactID: c.existing, Existed: true}, nil
		}
		return activities.CreateContactResult{ContactID: "501"}, nil
	}).Maybe()
	f.env.OnActivity(crmActivities.UpdateContact, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateContactInput) error {
		c.writes = append(c.writes, write{ContactID: in.ContactID, Properties: in.Properties, SourceKey: in.SourceKey, Hash: in.Hash, Baseline: in.Baseline})
		return c.nextWriteErr()
	}).Maybe()
	f.env.OnActivity(crmActivities.MergeContact, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateContactInput) error {
		c.writes = append(c.writes, write{ContactID: in.ContactID, Properties: in.Properties, SourceKey: in.SourceKey, Hash: in.Hash, Merge: in.AddEmail})
		return c.nextWriteErr()
	}).Maybe()
}

func TestLeadHappyPathCreatesContactAndNotifies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-1")
	fake := &crmFake{}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	r := f.result()
	require.Equal(t, api.StatusSynced, r.Status)
	require.Equal(t, map[string]string{"crm": "501"}, r.ExternalIDs)
	require.Equal(t, []api.Status{api.StatusRunning, api.StatusSynced}, f.statuses)
	require.Equal(t, []string{"accepted →Pending system", "started Pending→Running system", "synced Running→Synced system"}, f.actions())
	f.requireAuditSequence()
	require.Equal(t, "started by test", f.audit[0].Reason)
	require.Equal(t, testStart, f.audit[0].At)

	require.Len(t, fake.writes, 1)
	w := fake.writes[0]
	require.Empty(t, w.ContactID, "no contact was found, so one is created")
	require.Equal(t, "ada@example.com", w.Properties[crm.PropEmail], "emails are lower-cased")
	require.Equal(t, "lead-1", w.SourceKey)
	require.Equal(t, hashFields(w.Properties, leadOwnedProperties()), w.Hash)

	require.Len(t, f.notified, 1)
	require.Equal(t, "sales", f.notified[0].Team)
	require.True(t, strings.HasPrefix(f.notified[0].Key, "lead-to-crm:lead-1/synced/"), f.notified[0].Key)
	require.Contains(t, f.notified[0].Text, "CRM contact 501")
}

func TestLeadResyncOfUnchangedLeadWritesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-1")
	props := ada().Properties()
	fake := &crmFake{found: activities.FindContactResult{
		Contact: &crm.Contact{ID: "77", Properties: props}, Via: "link", SyncedHash: hashFields(props, leadOwnedProperties())}}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Empty(t, fake.writes)
	require.Contains(t, f.notified[0].Text, "already up to date")
}

func TestLeadFoundByEmailIsUpdatedNotDuplicated(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-1")
	fake := &crmFake{found: activities.FindContactResult{
		Contact: &crm.Contact{ID: "77", Properties: crm.Properties{"email": "ada@example.com", "firstname": "A."}}, Via: "email"}}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Len(t, fake.writes, 1)
	require.Equal(t, "77", fake.writes[0].ContactID)
	require.Equal(t, "Ada", fake.writes[0].Properties[crm.PropFirstName])
}

func TestLeadValidationFailedThenAmended(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-1")
	fake := &crmFake{}
	fake.install(f)
	bad := ada()
	bad.Email, bad.LastName = "not-an-email", ""

	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.StatusBlocked, s.Status)
		require.Equal(t, api.ValidationFailed, s.Exception.Kind)
		require.Equal(t, "must be an address like name@example.com", s.Exception.Details["email"])
		require.Equal(t, "is required", s.Exception.Details["lastName"])
		f.decide("still-bad", api.Decision{Action: api.ActionAmend, Actor: "alice", Reason: "typo", Set: map[string]string{"email": "ada@example.com"}})
		f.decide("unknown-field", api.Decision{Action: api.ActionAmend, Actor: "alice", Reason: "typo", Set: map[string]string{"consent": "true", "lastName": "Lovelace", "email": "ada@example.com"}})
	})
	f.at(2*time.Minute, func() {
		f.decide("good", api.Decision{Action: api.ActionAmend, Actor: "alice", Reason: "fixed from the form's raw data", Set: map[string]string{"email": "ada@example.com", "lastName": "Lovelace"}})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(bad))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["still-bad"].rejected, "lastName: is required")
	require.ErrorContains(t, f.updates["unknown-field"].rejected, "consent: cannot be amended")
	good := f.updates["good"]
	require.NoError(t, good.err)
	require.Equal(t, api.StatusRunning, good.outcome.Status)
	require.Equal(t, "ada@example.com", fake.writes[0].Properties[crm.PropEmail])
	require.Equal(t, "Lovelace", fake.writes[0].Properties[crm.PropLastName])
	require.Equal(t, []api.Status{api.StatusRunning, api.StatusBlocked, api.StatusRunning, api.StatusSynced}, f.statuses)
	require.Equal(t, []string{string(api.ValidationFailed)}, f.kinds, "ExceptionKind is set while blocked (its removal is checked end to end)")

	amend := f.audit[3]
	require.Equal(t, "amend", amend.Action)
	require.Equal(t, "alice", amend.Actor)
	require.Equal(t, "fixed from the form's raw data", amend.Reason)
	require.Equal(t, map[string]string{"email": "ada@example.com", "lastName": "Lovelace"}, amend.Details["set"])
}

func TestLeadWithoutConsentWaitsForApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-2")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false

	f.at(time.Hour, func() {
		f.decide("stranger", api.Decision{Action: api.ActionApprove, Actor: "mallory", Reason: "trust me"})
		f.decide("finance", api.Decision{Action: api.ActionApprove, Actor: "carol", Reason: "consent on file"})
		f.decide("no-reason", api.Decision{Action: api.ActionApprove, Actor: "alice"})
		f.decide("not-allowed", api.Decision{Action: api.ActionRetry, Actor: "alice", Reason: "again"})
		f.decide("choice", api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "x", Choice: "merge"})
		s := f.state()
		require.Equal(t, api.StatusBlocked, s.Status, "refused decisions change nothing")
	})
	f.at(2*time.Hour, func() {
		f.decide("ok", api.Decision{Action: api.ActionApprove, Actor: "bob", Reason: "signed consent form #4411 in the CRM files"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	// Who may decide is checked against the operators configured now, after
	// the update is accepted: such a refusal is audited.
	require.ErrorContains(t, f.updates["stranger"].err, `"mallory" may not decide: only operators of team sales`)
	require.ErrorContains(t, f.updates["finance"].err, `"carol" may not decide`)
	// A malformed or disallowed decision is refused before it is accepted, and leaves no trace.
	require.ErrorContains(t, f.updates["no-reason"].rejected, "reason is required")
	require.ErrorContains(t, f.updates["not-allowed"].rejected, "retry is not allowed for ConsentMissing; allowed: approve, reject")
	require.ErrorContains(t, f.updates["choice"].rejected, "approve of ConsentMissing takes no choice")
	require.Equal(t, api.StatusRunning, f.updates["ok"].outcome.Status)
	require.Equal(t, []string{
		"accepted →Pending system", "started Pending→Running system", "raised Running→Blocked system",
		"decision_refused Blocked→Blocked mallory", "decision_refused Blocked→Blocked carol",
		"approve Blocked→Running bob", "synced Running→Synced system",
	}, f.actions())
	require.Equal(t, "signed consent form #4411 in the CRM files", f.audit[5].Reason)
}

func TestLeadRejectedEndsWithoutTouchingTheCRM(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-3")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.at(time.Minute, func() {
		f.decide("no", api.Decision{Action: api.ActionReject, Actor: "alice", Reason: "no consent, do not contact"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusRejected, f.result().Status)
	require.Equal(t, api.StatusRejected, f.updates["no"].outcome.Status)
	require.Zero(t, fake.finds)
	require.Len(t, f.notified, 1, "only the alert that it waits; no synced notice")
	require.Equal(t, "sales", f.notified[0].Team)
	require.Contains(t, f.notified[0].Text, "lead-to-crm:lead-3 waits for a decision by sales.\nConsentMissing:")
	require.Equal(t, "ConsentMissing", f.notified[0].Digest.Kind)
}

func TestConsentRemindersAtEachSLAThenRejectAtDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-4")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusRejected, f.result().Status)
	// 14 days at a 24h SLA: the alert at once, reminders after days 1..13,
	// then the deadline on day 14.
	require.Len(t, f.notified, 14)
	require.Contains(t, f.notified[0].Text, "waits for a decision by sales")
	require.Contains(t, f.notified[1].Text, "Reminder 1: lead-to-crm:lead-4 has waited 24h0m0s")
	require.Contains(t, f.notified[13].Text, "Reminder 13")
	require.Equal(t, "sales", f.notified[1].Team)
	last := f.audit[len(f.audit)-1]
	require.Equal(t, "reject", last.Action)
	require.Equal(t, api.ActorSystem, last.Actor)
	require.Contains(t, last.Reason, "no decision within 336h0m0s")
	keys := map[string]bool{}
	for _, n := range f.notified {
		require.False(t, keys[n.Key], "every reminder has its own key")
		keys[n.Key] = true
	}
}

func TestDuplicateSuspectedMergeUpdatesTheExistingContact(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-5")
	similar := crm.Contact{ID: "88", Properties: crm.Properties{"email": "ada@engines.com", "firstname": "Ada", "lastname": "Lovelace", "company": "Engines"}}
	fake := &crmFake{found: activities.FindContactResult{Similar: []crm.Contact{similar}}}
	fake.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.DuplicateSuspected, s.Exception.Kind)
		require.Equal(t, []string{"merge", "create"}, choiceNames(s.Exception.Choices))
		require.Equal(t, "a***@engines.com", s.Exception.Details["its email"])
		f.decide("no-choice", api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "same person"})
		f.decide("merge", api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "same person, new address", Choice: "merge"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["no-choice"].rejected, "needs a choice: one of merge, create")
	require.Len(t, fake.writes, 1)
	w := fake.writes[0]
	require.Equal(t, "88", w.ContactID)
	require.NotContains(t, w.Properties, crm.PropEmail, "the existing contact keeps its primary email")
	require.Empty(t, w.Properties, "its name and company are the lead's already; no blank is written over its phone")
	require.Equal(t, "ada@example.com", w.Merge, "the activity files the lead's email among the contact's, under the contact's lock")
	require.Equal(t, "merge", f.audit[3].Details["choice"])
}

func TestDuplicateSuspectedCreateMakesANewContact(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-6")
	fake := &crmFake{found: activities.FindContactResult{Similar: []crm.Contact{{ID: "88", Properties: crm.Properties{"email": "other@x.com"}}}}}
	fake.install(f)
	f.at(time.Minute, func() {
		f.decide("create", api.Decision{Action: api.ActionApprove, Actor: "bob", Reason: "different person", Choice: "create"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))
	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Empty(t, fake.writes[0].ContactID)
	require.Equal(t, "ada@example.com", fake.writes[0].Properties[crm.PropEmail])
}

func TestABlankNeverOverwritesAnEditInTheCRM(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-7")
	written := ada().Properties()
	edited := ada().Properties()
	edited[crm.PropPhone] = "+44 1234 5678" // a salesperson added it
	fake := &crmFake{found: activities.FindContactResult{
		Contact: &crm.Contact{ID: "90", Properties: edited}, Via: "link", SyncedHash: hashFields(written, leadOwnedProperties())}}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Empty(t, fake.writes, "the form has no phone: the salesperson's stays")
	require.Len(t, f.baselines, 1, "the link gets a baseline of what the contact holds")
	require.Equal(t, store.Settled{Target: "+44 1234 5678", Source: ""}, f.baselines[0].Baseline[crm.PropPhone])
}

// synced is a link whose baseline says the contact was synced from lead l.
func synced(l Lead) store.Baseline {
	b := store.Baseline{}
	for p, v := range l.Properties() {
		b[p] = store.Settled{Target: v, Source: v}
	}
	return b
}

func TestConflictWhenTheCRMEditedAFormOwnedField(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-7")
	before := ada()
	before.Phone = "+1 555 0100"
	edited := before.Properties()
	edited[crm.PropPhone] = "+44 1234 5678"
	fake := &crmFake{found: activities.FindContactResult{
		Contact: &crm.Contact{ID: "90", Properties: edited}, Via: "link", Baseline: synced(before)}}
	fake.install(f)
	resubmitted := before
	resubmitted.Phone = "+1 555 0199"
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.Conflict, s.Exception.Kind, "both sides changed the phone since the last sync")
		require.Equal(t, `CRM "+44 1234 5678", form "+1 555 0199", last synced "+1 555 0100"`, s.Exception.Details["phone"])
		require.Len(t, s.Exception.Details, 2, "only the phone is in conflict (and the contact is named)")
		f.decide("overwrite", api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "the customer gave the new number"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(resubmitted))
	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Len(t, fake.writes, 1)
	require.Equal(t, "90", fake.writes[0].ContactID)
	require.Equal(t, crm.Properties{crm.PropPhone: "+1 555 0199"}, fake.writes[0].Properties, "approve writes the form's value, and only what changed")
}

func TestResolvedConflictBecomesTheBaselineAndIsNotRaisedAgain(t *testing.T) {
	t.Parallel()
	before := ada()
	before.Phone = "+1 555 0100"
	edited := before.Properties()
	edited[crm.PropPhone] = "+44 1234 5678"

	f := newFixture(t, "lead-to-crm:lead-7")
	fake := &crmFake{found: activities.FindContactResult{
		Contact: &crm.Contact{ID: "90", Properties: edited}, Via: "link", Baseline: synced(before)}}
	fake.install(f)
	f.at(time.Minute, func() {
		require.Equal(t, api.Conflict, f.state().Exception.Kind, "the CRM changed a form-owned field the rule says to ask about")
		f.decide("keep", api.Decision{Action: api.ActionResolve, Actor: "alice", Reason: "the customer moved", ExternalRef: "kept the CRM's number"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(before))
	require.Equal(t, api.StatusManuallyResolved, f.result().Status)
	require.Empty(t, fake.writes)
	require.Len(t, f.baselines, 1)
	settled := f.baselines[0].Baseline
	require.Equal(t, store.Settled{Target: "+44 1234 5678", Source: "+1 555 0100"}, settled[crm.PropPhone], "the decision is the new baseline")
	require.Equal(t, synced(before)[crm.PropFirstName], settled[crm.PropFirstName], "fields not in conflict keep their baseline")

	// The next sync of the same lead finds it settled: no conflict, no write.
	again := newFixture(t, "lead-to-crm:lead-7")
	fake2 := &crmFake{found: activities.FindContactResult{
		Contact: &crm.Contact{ID: "90", Properties: edited}, Via: "link", Baseline: settled}}
	fake2.install(again)
	again.env.ExecuteWorkflow(LeadToCRM, leadInput(before))
	require.Equal(t, api.StatusSynced, again.result().Status)
	require.Empty(t, fake2.writes)
	require.NotContains(t, again.actions(), "raised Running→Blocked system")
}

func TestUnlinkedContactKeepsWhatASalespersonTypedIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-1")
	typedIn := crm.Properties{crm.PropEmail: "ada@example.com", crm.PropFirstName: "A.", crm.PropLastName: "Lovelace",
		crm.PropPhone: "+44 1234 5678", crm.PropJobTitle: "CTO"}
	fake := &crmFake{found: activities.FindContactResult{Contact: &crm.Contact{ID: "77", Properties: typedIn}, Via: "email"}}
	fake.install(f)
	l := ada()
	l.JobTitle = "Engineer" // the form differs from what the salesperson typed
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.Conflict, s.Exception.Kind)
		require.Equal(t, `CRM "CTO", form "Engineer"`, s.Exception.Details["jobtitle"])
		require.NotContains(t, s.Exception.Details, "phone", "the form has no phone: nothing to ask")
		require.NotContains(t, s.Exception.Details, "firstname", "the person's own name: the form wins")
		f.decide("form", api.Decision{Action: api.ActionApprove, Actor: "bob", Reason: "asked the customer"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Len(t, fake.writes, 1)
	require.Equal(t, crm.Properties{crm.PropFirstName: "Ada", crm.PropCompany: "Engines", crm.PropJobTitle: "Engineer"}, fake.writes[0].Properties,
		"the hand-entered phone is not cleared; the blank company is filled; the name and (approved) job title are the form's")
	require.Equal(t, store.Settled{Target: "+44 1234 5678", Source: ""}, fake.writes[0].Baseline[crm.PropPhone])
	var owned store.AuditEvent
	for _, e := range f.audit {
		if e.Action == "owner_wins" {
			owned = e
		}
	}
	require.Equal(t, map[string]string{"crm": "A.", "written": "Ada"}, owned.Details[crm.PropFirstName], "the audit trail keeps both values")
	require.Contains(t, f.notified[len(f.notified)-1].Text, "The form owns firstname (rule owner-wins): its values replaced edits made in the CRM.",
		"the team that edits the CRM is told")
}

func TestAuthFailedWaitsForRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-8")
	fake := &crmFake{wErr: []error{appError("crm POST /crm/v3/objects/contacts: HTTP 401", api.ErrorAuthFailed, true)}}
	fake.install(f)
	f.at(30*time.Minute, func() {
		s := f.state()
		require.Equal(t, api.StatusFailed, s.Status)
		require.Equal(t, api.AuthFailed, s.Exception.Kind)
		require.Equal(t, "write contact", s.Exception.Details["step"])
		require.Equal(t, []api.Action{api.ActionRetry, api.ActionResolve, api.ActionCancel}, s.Exception.Decisions)
		f.decide("retry", api.Decision{Action: api.ActionRetry, Actor: "alice", Reason: "rotated the CRM token"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Len(t, fake.writes, 2, "retry runs the failed step again")
	require.Equal(t, []api.Status{api.StatusRunning, api.StatusFailed, api.StatusRunning, api.StatusSynced}, f.statuses)
	require.Len(t, f.notified, 2, "the alert at once, no reminder before the 1h SLA, then the synced notice")
	require.Contains(t, f.notified[0].Text, "AuthFailed: write contact failed")
	require.Contains(t, f.notified[1].Text, "synced to CRM contact")
}

func TestTargetUnavailableAfterTheRetryWindowThenResolved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-9")
	down := appError("crm POST /crm/v3/objects/contacts/search: HTTP 503", api.ErrorTargetUnavailable, false)
	fake := &crmFake{findErr: []error{down, down, down, down, down, down, down, down, down, down}}
	fake.install(f)
	f.at(30*time.Minute, func() {
		s := f.state()
		require.Equal(t, api.StatusFailed, s.Status)
		require.Equal(t, api.TargetUnavailable, s.Exception.Kind)
		require.Contains(t, s.Exception.Summary, "find contact failed")
		f.decide("no-ref", api.Decision{Action: api.ActionResolve, Actor: "alice", Reason: "entered by hand"})
		f.decide("resolve", api.Decision{Action: api.ActionResolve, Actor: "alice", Reason: "entered by hand", ExternalRef: "CRM contact 4242"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, api.StatusManuallyResolved, f.result().Status)
	require.ErrorContains(t, f.updates["no-ref"].rejected, "resolve needs externalRef")
	require.Greater(t, fake.finds, 1, "the activity was retried inside the window")
	last := f.audit[len(f.audit)-1]
	require.Equal(t, "resolve", last.Action)
	require.Equal(t, "CRM contact 4242", last.Details["externalRef"])
}

func TestTargetRejectedThenAmendedAndRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-10")
	rejected := appError("crm POST /crm/v3/objects/contacts: HTTP 400 VALIDATION_ERROR: Email address ada@x.invalid is invalid",
		api.ErrorTargetRejected, true, activities.Rejection{Target: "crm", Status: 400, Code: "VALIDATION_ERROR", Message: "Email address is invalid"})
	fake := &crmFake{wErr: []error{rejected}}
	fake.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, api.TargetRejected, s.Exception.Kind)
		require.Equal(t, "VALIDATION_ERROR", s.Exception.Details["code"])
		f.decide("amend", api.Decision{Action: api.ActionAmend, Actor: "bob", Reason: "address bounced; got the right one by phone", Set: map[string]string{"email": "ada@engines.co.uk"}})
	})
	l := ada()
	l.Email = "ada@x.invalid"
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Len(t, fake.writes, 2)
	require.Equal(t, "ada@engines.co.uk", fake.writes[1].Properties[crm.PropEmail])
	require.Equal(t, 2, f.state().Attempts["write contact"])
}

func TestGarbageSignalsAreAuditedAndIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-11")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.at(time.Minute, func() {
		f.signal("approve it please")
		f.signal(42)
		f.signal(map[string]any{"action": 5})
		f.signal(map[string]any{"action": "approve", "actor": "alice", "reason": "x", "urgent": true})
		f.signal(api.Decision{Action: api.ActionApprove, Actor: "mallory", Reason: "x"})
		f.signal([]byte{0xff, 0xfe})
	})
	f.at(2*time.Minute, func() {
		s := f.state()
		require.Equal(t, api.StatusBlocked, s.Status)
		require.Len(t, s.Decisions, 6)
		for _, d := range s.Decisions {
			require.False(t, d.Applied)
			require.NotEmpty(t, d.Refusal)
		}
		f.signal(api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "consent recorded by phone, call #77"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	var refused []string
	for _, e := range f.audit {
		if e.Action == "decision_refused" {
			require.Equal(t, string(api.StatusBlocked), e.FromStatus)
			require.Equal(t, e.FromStatus, e.ToStatus)
			refused = append(refused, e.Actor+": "+e.Reason)
		}
	}
	require.Len(t, refused, 6)
	require.Contains(t, refused[0], "unknown: the signal is not a decision")
	require.Contains(t, refused[3], `unknown field "urgent"`)
	require.Contains(t, refused[4], `mallory: "mallory" may not decide`)
	approve := f.audit[len(f.audit)-2]
	require.Equal(t, "approve", approve.Action)
	require.Equal(t, "alice", approve.Actor)
}

func TestSecondDecisionLosesTheRace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-12")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.at(time.Minute, func() {
		f.decide("first", api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "evidence A"})
		f.decide("second", api.Decision{Action: api.ActionReject, Actor: "bob", Reason: "no evidence"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.True(t, f.updates["first"].accepted)
	require.NoError(t, f.updates["first"].err)
	second := f.updates["second"]
	require.True(t, second.done, "the losing update is answered, not left hanging")
	refused := second.rejected
	if refused == nil {
		refused = second.err
	}
	require.Equal(t, api.ErrorDecisionRefused, api.TypeOf(refused), "refused: either not waiting any more, or ended")
	for _, e := range f.audit {
		require.NotEqual(t, "reject", e.Action)
	}
}

func TestDecisionRacingCompletionIsRefusedAndAudited(t *testing.T) {
	t.Parallel()
	// The notify step completes at the same instant a decision arrives: the item
	// is Running, so the update is refused and the signal audited before the end.
	f := newFixture(t, "lead-to-crm:lead-13", notifyDelay(time.Minute))
	fake := &crmFake{}
	fake.install(f)
	f.at(time.Minute, func() {
		f.decide("late", api.Decision{Action: api.ActionCancel, Actor: "alice", Reason: "stop"})
		f.signal(api.Decision{Action: api.ActionCancel, Actor: "alice", Reason: "stop"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["late"].rejected, "is Running, not waiting for a decision")
	require.Contains(t, f.actions(), "decision_refused Running→Running alice", "the signal that raced completion is audited, not lost")
}

func TestCancellationThroughTemporalEndsCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-14")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.at(time.Hour, f.env.CancelWorkflow)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.True(t, f.env.IsWorkflowCompleted())
	require.Error(t, f.env.GetWorkflowError())
	last := f.audit[len(f.audit)-1]
	require.Equal(t, "cancelled Blocked→Cancelled system", last.Action+" "+last.FromStatus+"→"+last.ToStatus+" "+last.Actor)
	require.Equal(t, api.StatusCancelled, f.statuses[len(f.statuses)-1])
}

func TestCreateAnsweredAlreadyExistsBecomesAnUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-15")
	fake := &crmFake{existing: "321"}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	r := f.result()
	require.Equal(t, api.StatusSynced, r.Status)
	require.Equal(t, "321", r.ExternalIDs["crm"])
	require.Len(t, fake.writes, 2)
	require.Empty(t, fake.writes[0].ContactID, "a create first")
	require.Equal(t, "321", fake.writes[1].ContactID, "then an update of the contact that existed, which links it")
}

func TestTransientFailuresAreRetriedInsideTheStep(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-16")
	busy := temporal.NewApplicationErrorWithOptions("crm: HTTP 429", string(api.ErrorRateLimited),
		temporal.ApplicationErrorOptions{NextRetryDelay: 30 * time.Second})
	down := appError("crm: HTTP 503", api.ErrorTargetUnavailable, false)
	fake := &crmFake{findErr: []error{busy, down, busy}, wErr: []error{down}}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, 4, fake.finds, "three failures, then success")
	require.Equal(t, []api.Status{api.StatusRunning, api.StatusSynced}, f.statuses, "transient failures never leave Running")
	require.Equal(t, 1, f.state().Attempts["find contact"], "the step ran once; Temporal retried its activity")
	require.GreaterOrEqual(t, f.env.Now().Sub(testStart), 60*time.Second, "both Retry-After delays were waited out")
}

func TestCancelDecisionEndsCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-17")
	fake := &crmFake{}
	fake.install(f)
	bad := ada()
	bad.FirstName = ""
	f.at(5*time.Hour, func() {
		f.decide("cancel", api.Decision{Action: api.ActionCancel, Actor: "bob", Reason: "a test submission"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(bad))

	require.Equal(t, api.StatusCancelled, f.result().Status)
	require.Equal(t, api.StatusCancelled, f.updates["cancel"].outcome.Status)
	require.Len(t, f.notified, 2, "the alert, and one reminder at the 4h SLA before the decision at 5h")
	require.Contains(t, f.notified[1].Text, "Reminder 1")
	require.Contains(t, f.notified[1].Text, "ValidationFailed")
	require.Empty(t, fake.writes)
	last := f.audit[len(f.audit)-1]
	require.Equal(t, "cancel Blocked→Cancelled bob", last.Action+" "+last.FromStatus+"→"+last.ToStatus+" "+last.Actor)
}

func TestDuplicateRejectedBySignalWithChoiceRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-18")
	fake := &crmFake{found: activities.FindContactResult{Similar: []crm.Contact{{ID: "88", Properties: crm.Properties{"email": "o@x.co"}}}}}
	fake.install(f)
	f.at(time.Minute, func() {
		f.signal(api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "x", Choice: "both"})
		f.signal(api.Decision{Action: api.ActionReject, Actor: "alice", Reason: "spam submission"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))
	require.Equal(t, api.StatusRejected, f.result().Status)
	require.Empty(t, fake.writes)
	require.Contains(t, f.actions(), "decision_refused Blocked→Blocked alice")
}

func TestDecisionsAreAuthorisedAgainstTheOperatorsConfiguredNow(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-auth")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.at(time.Hour, func() {
		// alice left the sales team after the item began; dave joined.
		f.mu.Lock()
		f.operators = map[string][]string{"sales": {"bob", "dave"}}
		f.mu.Unlock()
		f.decide("alice", api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "consent on file"})
	})
	f.at(2*time.Hour, func() {
		f.decide("dave", api.Decision{Action: api.ActionApprove, Actor: "dave", Reason: "consent form #12"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["alice"].err, `"alice" may not decide: only operators of team sales`)
	require.NoError(t, f.updates["dave"].err, "the item began under the old list, and dave may decide all the same")
	require.Contains(t, f.actions(), "decision_refused Blocked→Blocked alice", "the refusal is audited")
	require.Contains(t, f.actions(), "approve Blocked→Running dave")
}

func TestAlertsGoToTheDecidersAtOnceAndAreAskedAgainWhenDeferred(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-alert")
	fake := &crmFake{}
	fake.install(f)
	f.deferAlerts = 1 // another alert of sales/ConsentMissing went out a moment ago
	l := ada()
	l.Consent = false
	f.at(time.Hour, func() {
		f.decide("ok", api.Decision{Action: api.ActionApprove, Actor: "bob", Reason: "consent form #9"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.GreaterOrEqual(t, len(f.notified), 3)
	first, again := f.notified[0], f.notified[1]
	require.Equal(t, "sales", first.Team)
	require.Equal(t, first.Key, again.Key, "the deferred alert is asked again under its key, to be covered by one message")
	require.Equal(t, testStart, first.Digest.Since)
	require.Equal(t, "signals list --exception ConsentMissing --status Blocked", first.Digest.List)
	require.Contains(t, first.Text, "Allowed: approve, reject")
	require.Contains(t, first.Text, "signals approve 'lead-to-crm:lead-alert'")
}

func TestTheLeadsSourceReachesTheCRM(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-src")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Source = "webinar-2026-11"
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, "webinar-2026-11", fake.writes[0].Properties[crm.PropLeadSource], "validated, then mapped: no longer dropped")
	spec := api.LeadToCRMSpec()
	require.Contains(t, ownedProperties(spec), crm.PropLeadSource, "and on the card, from the same spec")
}

func TestConfiguredSLAsReplaceTheSpecs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-sla")
	f.policy.SLAs = map[string]activities.SLA{"ConsentMissing": {SLA: time.Hour, Deadline: 3 * time.Hour}}
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusRejected, f.result().Status)
	require.Len(t, f.notified, 3, "the alert, reminders at 1h and 2h, then the deadline at 3h")
	require.Equal(t, 3*time.Hour, f.env.Now().Sub(testStart))
}
