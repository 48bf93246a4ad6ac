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
	"github.com/signalbox-dev/signalbox/connectors/crm"
)

func ada() Lead {
	return Lead{ID: "lead-1", Email: "Ada@Example.com", FirstName: "Ada", LastName: "Lovelace", Company: "Engines", Consent: true}
}

func leadInput(l Lead) LeadInput {
	return LeadInput{ItemInput: ItemInput{StartedBy: "test"}, Lead: l}
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
	f.env.OnActivity("FindContact", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FindContactInput) (activities.FindContactResult, error) {
		c.finds++
		if len(c.findErr) > 0 {
			err := c.findErr[0]
			c.findErr = c.findErr[1:]
			return activities.FindContactResult{}, err
		}
		return c.found, nil
	}).Maybe()
	f.env.OnActivity("CreateContact", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CreateContactInput) (activities.CreateContactResult, error) {
		c.writes = append(c.writes, write{Properties: in.Properties, SourceKey: in.SourceKey, Hash: in.Hash})
		if err := c.nextWriteErr(); err != nil {
			return activities.CreateContactResult{}, err
		}
		if c.existing != "" {
			return activities.CreateContactResult{ContactID: c.existing, Existed: true}, nil
		}
		return activities.CreateContactResult{ContactID: "501"}, nil
	}).Maybe()
	f.env.OnActivity("UpdateContact", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateContactInput) error {
		c.writes = append(c.writes, write{ContactID: in.ContactID, Properties: in.Properties, SourceKey: in.SourceKey, Hash: in.Hash})
		return c.nextWriteErr()
	}).Maybe()
	f.env.OnActivity("MergeContact", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UpdateContactInput) error {
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
	require.Equal(t, StatusSynced, r.Status)
	require.Equal(t, map[string]string{"crm": "501"}, r.ExternalIDs)
	require.Equal(t, []Status{StatusRunning, StatusSynced}, f.statuses)
	require.Equal(t, []string{"accepted →Pending system", "started Pending→Running system", "synced Running→Synced system"}, f.actions())
	f.requireAuditSequence()
	require.Equal(t, "started by test", f.audit[0].Reason)
	require.Equal(t, testStart, f.audit[0].At)

	require.Len(t, fake.writes, 1)
	w := fake.writes[0]
	require.Empty(t, w.ContactID, "no contact was found, so one is created")
	require.Equal(t, "ada@example.com", w.Properties[crm.PropEmail], "emails are lower-cased")
	require.Equal(t, "lead-1", w.SourceKey)
	require.Equal(t, hashFields(w.Properties, leadOwnedProperties), w.Hash)

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
		Contact: &crm.Contact{ID: "77", Properties: props}, Via: "link", SyncedHash: hashFields(props, leadOwnedProperties)}}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, StatusSynced, f.result().Status)
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

	require.Equal(t, StatusSynced, f.result().Status)
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
		require.Equal(t, StatusBlocked, s.Status)
		require.Equal(t, ValidationFailed, s.Exception.Kind)
		require.Equal(t, "must be an address like name@example.com", s.Exception.Details["email"])
		require.Equal(t, "is required", s.Exception.Details["lastName"])
		f.decide("still-bad", Decision{Action: ActionAmend, Actor: "alice", Reason: "typo", Set: map[string]string{"email": "ada@example.com"}})
		f.decide("unknown-field", Decision{Action: ActionAmend, Actor: "alice", Reason: "typo", Set: map[string]string{"consent": "true", "lastName": "Lovelace", "email": "ada@example.com"}})
	})
	f.at(2*time.Minute, func() {
		f.decide("good", Decision{Action: ActionAmend, Actor: "alice", Reason: "fixed from the form's raw data", Set: map[string]string{"email": "ada@example.com", "lastName": "Lovelace"}})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(bad))

	require.Equal(t, StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["still-bad"].rejected, "lastName: is required")
	require.ErrorContains(t, f.updates["unknown-field"].rejected, "consent: cannot be amended")
	good := f.updates["good"]
	require.NoError(t, good.err)
	require.Equal(t, StatusRunning, good.outcome.Status)
	require.Equal(t, "ada@example.com", fake.writes[0].Properties[crm.PropEmail])
	require.Equal(t, "Lovelace", fake.writes[0].Properties[crm.PropLastName])
	require.Equal(t, []Status{StatusRunning, StatusBlocked, StatusRunning, StatusSynced}, f.statuses)
	require.Equal(t, []string{string(ValidationFailed)}, f.kinds, "ExceptionKind is set while blocked (its removal is checked end to end)")

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
		f.decide("stranger", Decision{Action: ActionApprove, Actor: "mallory", Reason: "trust me"})
		f.decide("finance", Decision{Action: ActionApprove, Actor: "carol", Reason: "consent on file"})
		f.decide("no-reason", Decision{Action: ActionApprove, Actor: "alice"})
		f.decide("not-allowed", Decision{Action: ActionRetry, Actor: "alice", Reason: "again"})
		f.decide("choice", Decision{Action: ActionApprove, Actor: "alice", Reason: "x", Choice: "merge"})
		s := f.state()
		require.Equal(t, StatusBlocked, s.Status, "refused decisions change nothing")
		require.Empty(t, s.Decisions, "refused updates leave no trace in the item")
	})
	f.at(2*time.Hour, func() {
		f.decide("ok", Decision{Action: ActionApprove, Actor: "bob", Reason: "signed consent form #4411 in the CRM files"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["stranger"].rejected, `"mallory" may not decide: only operators of team sales`)
	require.ErrorContains(t, f.updates["finance"].rejected, `"carol" may not decide`)
	require.ErrorContains(t, f.updates["no-reason"].rejected, "reason is required")
	require.ErrorContains(t, f.updates["not-allowed"].rejected, "retry is not allowed for ConsentMissing; allowed: approve, reject")
	require.ErrorContains(t, f.updates["choice"].rejected, "approve of ConsentMissing takes no choice")
	require.Equal(t, StatusRunning, f.updates["ok"].outcome.Status)
	require.Equal(t, []string{
		"accepted →Pending system", "started Pending→Running system",
		"raised Running→Blocked system", "approve Blocked→Running bob", "synced Running→Synced system",
	}, f.actions())
	require.Equal(t, "signed consent form #4411 in the CRM files", f.audit[3].Reason)
}

func TestLeadRejectedEndsWithoutTouchingTheCRM(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-3")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.at(time.Minute, func() {
		f.decide("no", Decision{Action: ActionReject, Actor: "alice", Reason: "no consent, do not contact"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, StatusRejected, f.result().Status)
	require.Equal(t, StatusRejected, f.updates["no"].outcome.Status)
	require.Zero(t, fake.finds)
	require.Empty(t, f.notified)
}

func TestConsentRemindersAtEachSLAThenRejectAtDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-4")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, StatusRejected, f.result().Status)
	// 14 days at a 24h SLA: reminders after days 1..13, then the deadline on day 14.
	require.Len(t, f.notified, 13)
	require.Contains(t, f.notified[0].Text, "Reminder 1: lead-to-crm:lead-4 has waited 24h0m0s")
	require.Contains(t, f.notified[12].Text, "Reminder 13")
	require.Equal(t, "sales", f.notified[0].Team)
	last := f.audit[len(f.audit)-1]
	require.Equal(t, "reject", last.Action)
	require.Equal(t, ActorSystem, last.Actor)
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
		require.Equal(t, DuplicateSuspected, s.Exception.Kind)
		require.Equal(t, []string{"merge", "create"}, choiceNames(s.Exception.Choices))
		require.Equal(t, "a***@engines.com", s.Exception.Details["its email"])
		f.decide("no-choice", Decision{Action: ActionApprove, Actor: "alice", Reason: "same person"})
		f.decide("merge", Decision{Action: ActionApprove, Actor: "alice", Reason: "same person, new address", Choice: "merge"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["no-choice"].rejected, "needs a choice: one of merge, create")
	require.Len(t, fake.writes, 1)
	w := fake.writes[0]
	require.Equal(t, "88", w.ContactID)
	require.Equal(t, "ada@engines.com", w.Properties[crm.PropEmail], "the existing contact keeps its primary email")
	require.Equal(t, "ada@example.com", w.Properties[crm.PropAdditionalEmails])
	require.Equal(t, "ada@example.com", w.Merge, "merged under the contact's lock")
	require.Equal(t, "merge", f.audit[3].Details["choice"])
}

func TestDuplicateSuspectedCreateMakesANewContact(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-6")
	fake := &crmFake{found: activities.FindContactResult{Similar: []crm.Contact{{ID: "88", Properties: crm.Properties{"email": "other@x.com"}}}}}
	fake.install(f)
	f.at(time.Minute, func() {
		f.decide("create", Decision{Action: ActionApprove, Actor: "bob", Reason: "different person", Choice: "create"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))
	require.Equal(t, StatusSynced, f.result().Status)
	require.Empty(t, fake.writes[0].ContactID)
	require.Equal(t, "ada@example.com", fake.writes[0].Properties[crm.PropEmail])
}

func TestConflictWhenTheCRMEditedAFormOwnedField(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-7")
	written := ada().Properties()
	edited := ada().Properties()
	edited[crm.PropPhone] = "+44 1234 5678"
	fake := &crmFake{found: activities.FindContactResult{
		Contact: &crm.Contact{ID: "90", Properties: edited}, Via: "link", SyncedHash: hashFields(written, leadOwnedProperties)}}
	fake.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, Conflict, s.Exception.Kind)
		require.Equal(t, `CRM "+44 1234 5678", form ""`, s.Exception.Details["phone"])
		f.decide("overwrite", Decision{Action: ActionApprove, Actor: "alice", Reason: "the form is right"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))
	require.Equal(t, StatusSynced, f.result().Status)
	require.Len(t, fake.writes, 1)
	require.Equal(t, "90", fake.writes[0].ContactID)
	require.Equal(t, "", fake.writes[0].Properties[crm.PropPhone])
}

func TestAuthFailedWaitsForRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-8")
	fake := &crmFake{wErr: []error{appError("crm POST /crm/v3/objects/contacts: HTTP 401", activities.ErrAuthFailed, true)}}
	fake.install(f)
	f.at(time.Hour, func() {
		s := f.state()
		require.Equal(t, StatusFailed, s.Status)
		require.Equal(t, AuthFailed, s.Exception.Kind)
		require.Equal(t, "write contact", s.Exception.Details["step"])
		require.Equal(t, []Action{ActionRetry, ActionResolve, ActionCancel}, s.Exception.Decisions)
		f.decide("retry", Decision{Action: ActionRetry, Actor: "alice", Reason: "rotated the CRM token"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, StatusSynced, f.result().Status)
	require.Len(t, fake.writes, 2, "retry runs the failed step again")
	require.Equal(t, []Status{StatusRunning, StatusFailed, StatusRunning, StatusSynced}, f.statuses)
	require.Len(t, f.notified, 1, "a reminder is due only after the 1h SLA… and the decision came at 1h")
}

func TestTargetUnavailableAfterTheRetryWindowThenResolved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-9")
	down := appError("crm POST /crm/v3/objects/contacts/search: HTTP 503", activities.ErrTargetUnavailable, false)
	fake := &crmFake{findErr: []error{down, down, down, down, down, down, down, down, down, down}}
	fake.install(f)
	f.at(30*time.Minute, func() {
		s := f.state()
		require.Equal(t, StatusFailed, s.Status)
		require.Equal(t, TargetUnavailable, s.Exception.Kind)
		require.Contains(t, s.Exception.Summary, "find contact failed")
		f.decide("no-ref", Decision{Action: ActionResolve, Actor: "alice", Reason: "entered by hand"})
		f.decide("resolve", Decision{Action: ActionResolve, Actor: "alice", Reason: "entered by hand", ExternalRef: "CRM contact 4242"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, StatusManuallyResolved, f.result().Status)
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
		activities.ErrTargetRejected, true, activities.Rejection{Target: "crm", Status: 400, Code: "VALIDATION_ERROR", Message: "Email address is invalid"})
	fake := &crmFake{wErr: []error{rejected}}
	fake.install(f)
	f.at(time.Minute, func() {
		s := f.state()
		require.Equal(t, TargetRejected, s.Exception.Kind)
		require.Equal(t, "VALIDATION_ERROR", s.Exception.Details["code"])
		f.decide("amend", Decision{Action: ActionAmend, Actor: "bob", Reason: "address bounced; got the right one by phone", Set: map[string]string{"email": "ada@engines.co.uk"}})
	})
	l := ada()
	l.Email = "ada@x.invalid"
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, StatusSynced, f.result().Status)
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
		f.signal(Decision{Action: ActionApprove, Actor: "mallory", Reason: "x"})
		f.signal([]byte{0xff, 0xfe})
	})
	f.at(2*time.Minute, func() {
		s := f.state()
		require.Equal(t, StatusBlocked, s.Status)
		require.Len(t, s.Decisions, 6)
		for _, d := range s.Decisions {
			require.False(t, d.Applied)
			require.NotEmpty(t, d.Refusal)
		}
		f.signal(Decision{Action: ActionApprove, Actor: "alice", Reason: "consent recorded by phone, call #77"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, StatusSynced, f.result().Status)
	var refused []string
	for _, e := range f.audit {
		if e.Action == "decision_refused" {
			require.Equal(t, string(StatusBlocked), e.FromStatus)
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
		f.decide("first", Decision{Action: ActionApprove, Actor: "alice", Reason: "evidence A"})
		f.decide("second", Decision{Action: ActionReject, Actor: "bob", Reason: "no evidence"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, StatusSynced, f.result().Status)
	require.True(t, f.updates["first"].accepted)
	require.NoError(t, f.updates["first"].err)
	second := f.updates["second"]
	require.True(t, second.done, "the losing update is answered, not left hanging")
	refused := second.rejected
	if refused == nil {
		refused = second.err
	}
	require.ErrorContains(t, refused, "not waiting for a decision")
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
		f.decide("late", Decision{Action: ActionCancel, Actor: "alice", Reason: "stop"})
		f.signal(Decision{Action: ActionCancel, Actor: "alice", Reason: "stop"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, StatusSynced, f.result().Status)
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
	require.Equal(t, StatusCancelled, f.statuses[len(f.statuses)-1])
}

func TestCreateAnsweredAlreadyExistsBecomesAnUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-15")
	fake := &crmFake{existing: "321"}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	r := f.result()
	require.Equal(t, StatusSynced, r.Status)
	require.Equal(t, "321", r.ExternalIDs["crm"])
	require.Len(t, fake.writes, 2)
	require.Empty(t, fake.writes[0].ContactID, "a create first")
	require.Equal(t, "321", fake.writes[1].ContactID, "then an update of the contact that existed, which links it")
}

func TestTransientFailuresAreRetriedInsideTheStep(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-16")
	busy := temporal.NewApplicationErrorWithOptions("crm: HTTP 429", activities.ErrRateLimited,
		temporal.ApplicationErrorOptions{NextRetryDelay: 30 * time.Second})
	down := appError("crm: HTTP 503", activities.ErrTargetUnavailable, false)
	fake := &crmFake{findErr: []error{busy, down, busy}, wErr: []error{down}}
	fake.install(f)
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))

	require.Equal(t, StatusSynced, f.result().Status)
	require.Equal(t, 4, fake.finds, "three failures, then success")
	require.Equal(t, []Status{StatusRunning, StatusSynced}, f.statuses, "transient failures never leave Running")
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
		f.decide("cancel", Decision{Action: ActionCancel, Actor: "bob", Reason: "a test submission"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(bad))

	require.Equal(t, StatusCancelled, f.result().Status)
	require.Equal(t, StatusCancelled, f.updates["cancel"].outcome.Status)
	require.Len(t, f.notified, 1, "one reminder at the 4h SLA before the decision at 5h")
	require.Contains(t, f.notified[0].Text, "ValidationFailed")
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
		f.signal(Decision{Action: ActionApprove, Actor: "alice", Reason: "x", Choice: "both"})
		f.signal(Decision{Action: ActionReject, Actor: "alice", Reason: "spam submission"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(ada()))
	require.Equal(t, StatusRejected, f.result().Status)
	require.Empty(t, fake.writes)
	require.Contains(t, f.actions(), "decision_refused Blocked→Blocked alice")
}
