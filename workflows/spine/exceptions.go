package spine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signalbox-dev/signalbox/api"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/metrics"
)

// check decides whether d may be applied now; the update validator, the signal
// handler and the wait loop all use it, so they can never disagree.
func (it *Item) check(d api.Decision) error {
	if err := d.Complete(); err != nil {
		return err
	}
	exc := it.state.Exception
	if !it.state.Status.Waiting() || exc == nil {
		return api.Refusal("%s is %s, not waiting for a decision", it.state.WorkflowID, it.state.Status)
	}
	if d.Action == api.ActionReassign {
		return it.checkReassign(exc, d.Choice)
	}
	if !slices.Contains(exc.Decisions, d.Action) {
		return api.Refusal("%s is not allowed for %s; allowed: %s", d.Action, exc.Kind, api.JoinActions(exc.Decisions))
	}
	if d.Action == api.ActionApprove && len(exc.Choices) > 0 {
		names := choiceNames(exc.Choices)
		if !slices.Contains(names, d.Choice) {
			return api.Refusal("approving %s needs a choice: one of %s", exc.Kind, strings.Join(names, ", "))
		}
	} else if d.Choice != "" {
		return api.Refusal("%s of %s takes no choice", d.Action, exc.Kind)
	}
	if d.Action == api.ActionAmend {
		if it.hooks.Amend == nil {
			return api.Refusal("%s has nothing to amend", it.spec.Name)
		}
		if err := it.hooks.Amend(d.Set, false); err != nil {
			return api.Refusal("amendment refused: %v", err)
		}
	}
	return nil
}

// checkReassign says whether the waiting exception may be handed to team:
// only exceptions decided by the item's team move (not, say, finance's
// approval), and only to another team signalbox knows.
func (it *Item) checkReassign(exc *api.ExceptionState, team string) error {
	if spec, _ := it.spec.Exception(exc.Kind); spec.Deciders != "" {
		return api.Refusal("%s is decided by team %s only; it cannot be reassigned", exc.Kind, spec.Deciders)
	}
	if team == exc.Deciders {
		return api.Refusal("%s waits for team %s already", it.state.WorkflowID, team)
	}
	if !slices.Contains(it.teams(), team) {
		return api.Refusal("unknown team %q (teams: %s)", team, strings.Join(it.teams(), ", "))
	}
	return nil
}

// teams are the teams an item can be handed to: those with operators, who
// can decide it there.
func (it *Item) teams() []string {
	return slices.Sorted(maps.Keys(it.policy.Operators))
}

// authorized checks that d's actor is an operator of the deciding team, as
// the workers are configured now: someone removed from SIGNALBOX_OPERATORS
// can no longer decide, and someone added can. (Items that decided before
// this check existed replay the check against the operators they began with.)
//
// Where the workers have SIGNALBOX_DECISION_KEYS, the decision must also
// carry the actor's signature over this item and its fields, made within
// api.SignatureWindow of the item's clock and never used on this item
// before; it then returns api.IdentityVerified (api.IdentityVouchedBy for a
// console's signature), else api.IdentityAsserted. A console's signature
// (d.Signer) counts only with that console's key in SIGNALBOX_CONSOLE_KEYS.
func (it *Item) authorized(ctx workflow.Context, d api.Decision) (identity string, err error) {
	exc := it.state.Exception
	if exc == nil {
		return "", nil // decided meanwhile: the wait loop refuses it
	}
	operators := it.policy.Operators[exc.Deciders]
	var r activities.OperatorsResult
	if workflow.GetVersion(ctx, "authorize-now", workflow.DefaultVersion, 1) != workflow.DefaultVersion {
		err := it.Call(ctx, "Check that "+d.Actor+" may decide", spineActivities.Operators, activities.OperatorsInput{Team: exc.Deciders, Actor: d.Actor, Signer: d.Signer}, &r)
		if err != nil {
			return "", err
		}
		operators = r.Operators
	}
	if !slices.Contains(operators, d.Actor) {
		return "", api.Refusal("%q may not decide: only operators of team %s may decide %s (set in SIGNALBOX_OPERATORS)", d.Actor, exc.Deciders, exc.Kind)
	}
	if !r.SignedOnly {
		return api.IdentityAsserted, nil
	}
	key, identity := r.ActorPublicKey, api.IdentityVerified
	switch {
	case d.Signer != "":
		// A console vouches for the operator its sign-on proxy authenticated.
		if key, identity = r.SignerPublicKey, api.IdentityVouchedBy(d.Signer); key == nil {
			return "", api.Refusal("%q is not an operator console the workers trust to sign decisions (SIGNALBOX_CONSOLE_KEYS)", d.Signer)
		}
	case key == nil:
		return "", api.Refusal("decisions must be signed and %q has no key in SIGNALBOX_DECISION_KEYS: make one with `signals keygen --operator %s`", d.Actor, d.Actor)
	}
	if err := api.VerifyDecision(key, it.state.WorkflowID, api.ExceptionRef(exc), d, workflow.Now(ctx)); err != nil {
		return "", api.Refusal("%s", err)
	}
	if it.usedSignatures[d.Signature] {
		return "", api.Refusal("this signed decision was sent to %s before: a replay is never applied; sign a new decision", it.state.WorkflowID)
	}
	if it.usedSignatures == nil {
		it.usedSignatures = map[string]bool{}
	}
	it.usedSignatures[d.Signature] = true
	return identity, nil
}

// ticketFor is the ticket of a decision about the exception the item waits on
// now: it will apply to that exception and team only.
func (it *Item) ticketFor(d api.Decision, via string) *ticket {
	t := &ticket{decision: d, via: via, exc: it.state.Exception}
	if t.exc != nil {
		t.team = t.exc.Deciders
	}
	return t
}

// refuse records a decision refused after it was accepted for a look: for the
// status query and, with the reason, in the audit trail.
func (it *Item) refuse(ctx workflow.Context, d api.Decision, via, payload string, err error) {
	it.state.UpdatedAt = workflow.Now(ctx).UTC()
	it.remember(d, via, "", false, message(err))
	actor := d.Actor
	if api.CheckActor(actor) != nil {
		actor = "unknown" // never a name with spaces or line breaks that could pass for another row
	}
	details := map[string]any{"via": via}
	if payload != "" {
		details["payload"] = payload
	}
	ev := it.event(actor, "decision_refused", it.state.Status, it.state.Status, message(err), details)
	if err := it.audit(ctx, "Audit refused decision", ev); err != nil {
		it.logger.Error("could not audit a refused decision", "error", err)
	}
}

func choiceNames(choices []api.Choice) []string {
	names := make([]string, len(choices))
	for i, c := range choices {
		names[i] = c.Name
	}
	return names
}

func (it *Item) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, api.QueryStatus, func() (api.ItemState, error) {
		return it.snapshot(), nil
	}, workflow.QueryHandlerOptions{Description: "The item's status, exception, allowed decisions, attempts, external IDs and recent decisions"}); err != nil {
		return err
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, api.UpdateDecide,
		func(ctx workflow.Context, d api.Decision) (api.DecisionOutcome, error) {
			t := it.ticketFor(d, "update")
			identity, err := it.authorized(ctx, d)
			if err != nil {
				if api.TypeOf(err) == api.ErrorDecisionRefused {
					it.refuse(ctx, d, "update", "", err)
				}
				return api.DecisionOutcome{}, err
			}
			t.identity = identity
			it.inbox = append(it.inbox, t)
			if err := workflow.Await(ctx, func() bool { return t.done }); err != nil {
				return api.DecisionOutcome{}, err
			}
			return t.outcome, t.err
		},
		workflow.UpdateHandlerOptions{
			Validator: func(_ workflow.Context, d api.Decision) error {
				err := it.check(d)
				if err != nil { // never in the history: validators do not run on replay
					metrics.Decision(it.meter, it.spec.Name, d.Action, metrics.Refused, "update")
				}
				return err
			},
			Description: "Decide an exception: approve, reject, amend, retry, resolve or cancel",
		})
	if err != nil {
		return err
	}
	it.signals = workflow.GetSignalChannelWithOptions(ctx, api.SignalDecision, workflow.SignalChannelOptions{
		Description: `Decide an exception without an answer: {"action":"approve","actor":"alice","reason":"..."}`,
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			// RawMessage accepts any JSON, so a malformed decision reaches us and
			// is audited, instead of being dropped by the SDK's decoder.
			var raw json.RawMessage
			it.signals.Receive(ctx, &raw)
			it.signalBusy = true
			it.onSignal(ctx, raw)
			it.signalBusy = false
		}
	})
	return nil
}

func (it *Item) onSignal(ctx workflow.Context, raw json.RawMessage) {
	d, err := api.DecodeDecision(raw)
	if err == nil {
		err = it.check(d)
	}
	var t *ticket
	if err == nil {
		t = it.ticketFor(d, "signal")
		t.identity, err = it.authorized(ctx, d)
	}
	if err == nil {
		it.inbox = append(it.inbox, t)
		return
	}
	payload := unescaped(raw)
	if len(payload) > 1000 || !utf8.ValidString(payload) {
		payload = strings.ToValidUTF8(payload[:min(len(payload), 1000)], "?")
	}
	it.refuse(ctx, d, "signal", payload, err)
}

// unescaped is a signal's raw JSON as stored for the audit trail: written
// again with its \u escapes resolved, so that what it holds (an email
// address sent as ada\u0040example.com) reads, and is found, as itself;
// anything that is not JSON is kept as it came.
func unescaped(raw json.RawMessage) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil || dec.More() {
		return string(raw)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// message is an error's text without the SDK's decoration.
func message(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// Raise stops the item with an exception and waits for a decision. For
// approve, amend and retry it returns the decision (an amendment already
// applied); for reject, resolve and cancel it returns an error that ends the item.
func (it *Item) Raise(ctx workflow.Context, kind api.ExceptionKind, summary string, details map[string]string) (api.Decision, error) {
	return it.RaiseChoosing(ctx, kind, summary, details, nil)
}

// RaiseChoosing is Raise for an exception whose approve chooses among
// options known only now (a lead's possible teams); nil takes the spec's.
func (it *Item) RaiseChoosing(ctx workflow.Context, kind api.ExceptionKind, summary string, details map[string]string, choices []api.Choice) (api.Decision, error) {
	spec, ok := it.spec.Exception(kind)
	if !ok {
		return api.Decision{}, fmt.Errorf("integration %s raised %s, which its spec does not declare", it.spec.Name, kind)
	}
	if choices == nil {
		choices = spec.Choices
	}
	if o, ok := it.policy.SLAs[string(kind)]; ok {
		// Configured for this deployment (SIGNALBOX_SLAS); only a deadline the
		// spec has can be moved, never added.
		spec.SLA = o.SLA
		if spec.Deadline > 0 && o.Deadline > 0 {
			spec.Deadline = o.Deadline
		}
	}
	now := workflow.Now(ctx).UTC()
	exc := &api.ExceptionState{
		Kind: kind, Summary: summary, Details: details, Decisions: spec.Decisions, Choices: choices,
		Deciders: it.spec.DecidingTeam(kind, it.state.Team), Since: now, SLA: spec.SLA, AtDeadline: spec.AtDeadline,
	}
	if spec.Deadline > 0 {
		exc.Deadline = now.Add(spec.Deadline)
	}
	it.state.Exception = exc
	// The deciding team and the SLA go to the trail too: its projection
	// waiting_items is the console's inbox (store.InsertAudit).
	auditDetails := map[string]any{"kind": string(kind), "deciders": exc.Deciders, "slaSeconds": int64(exc.SLA / time.Second)}
	if len(details) > 0 {
		auditDetails["details"] = details
	}
	if err := it.transition(ctx, spec.Status, api.ActorSystem, "raised", summary, auditDetails); err != nil {
		return api.Decision{}, err
	}
	metrics.ExceptionRaised(it.meter, it.spec.Name, kind, spec.Status)
	d, t, err := it.await(ctx)
	if err != nil {
		return api.Decision{}, err
	}
	if d.Action == api.ActionAmend {
		if err := it.hooks.Amend(d.Set, true); err != nil {
			return api.Decision{}, err // check() passed moments ago in the same state, so this is a bug
		}
	}
	next := statusAfter(d.Action)
	if d.Action == api.ActionResolve {
		it.state.ExternalIDs["resolved by hand"] = d.ExternalRef
	}
	it.state.Exception = nil
	via, identity := "deadline", ""
	if t != nil {
		via, identity = t.via, t.identity
	}
	if err := it.transition(ctx, next, d.Actor, string(d.Action), d.Reason, decisionDetails(d, kind, identity)); err != nil {
		return api.Decision{}, err
	}
	metrics.DecisionWaited(it.meter, it.spec.Name, kind, workflow.Now(ctx).Sub(exc.Since))
	if t != nil {
		t.finish(api.DecisionOutcome{Status: next, Message: fmt.Sprintf("%s applied; %s is %s", d.Action, it.state.WorkflowID, next)}, nil)
	}
	it.remember(d, via, identity, true, "")
	if d.Action == api.ActionResolve && workflow.GetVersion(ctx, "record-resolution", workflow.DefaultVersion, 1) == 1 {
		in := activities.RecordResolutionInput{Integration: it.spec.Name, SourceKey: it.state.SourceKey, TargetSystem: it.spec.Target,
			WorkflowID: it.state.WorkflowID, ExternalRef: d.ExternalRef}
		if err := it.Call(ctx, "Record where it was resolved", spineActivities.RecordResolution, in, nil); err != nil {
			return api.Decision{}, err
		}
	}
	if next.Terminal() {
		return d, Ended{Status: next, Kind: kind, Ref: d.ExternalRef, Actor: d.Actor}
	}
	return d, nil
}

func statusAfter(a api.Action) api.Status {
	switch a {
	case api.ActionReject:
		return api.StatusRejected
	case api.ActionResolve:
		return api.StatusManuallyResolved
	case api.ActionCancel:
		return api.StatusCancelled
	default:
		return api.StatusRunning
	}
}

func decisionDetails(d api.Decision, kind api.ExceptionKind, identity string) map[string]any {
	out := map[string]any{"exception": string(kind)}
	if identity != "" {
		out["identity"] = identity
	}
	if d.Choice != "" {
		out["choice"] = d.Choice
	}
	if len(d.Set) > 0 {
		out["set"] = d.Set
	}
	if d.ExternalRef != "" {
		out["externalRef"] = d.ExternalRef
	}
	return out
}

// await waits for the first applicable decision: it tells the deciding team
// at once, reminds it at every SLA, and applies the deadline action when the
// deadline passes.
func (it *Item) await(ctx workflow.Context) (api.Decision, *ticket, error) {
	exc := it.state.Exception
	remindCtx, stopReminders := workflow.WithCancel(ctx)
	defer stopReminders()
	if workflow.GetVersion(ctx, "tell-deciders-at-once", workflow.DefaultVersion, 1) == 1 {
		it.alert(remindCtx, exc, workflow.Now(ctx))
	}
	for {
		for len(it.inbox) > 0 {
			t := it.inbox[0]
			it.inbox = it.inbox[1:]
			err := it.check(t.decision)
			if err == nil && t.exc != nil && (t.exc != exc || t.team != exc.Deciders) {
				err = api.Refusal("%s now waits on %s for team %s, not what this decision was made for; decide again", it.state.WorkflowID, exc.Kind, exc.Deciders)
			}
			if err != nil {
				// Valid when sent, but another decision got there first.
				t.finish(api.DecisionOutcome{}, err)
				it.remember(t.decision, t.via, t.identity, false, message(err))
				continue
			}
			if t.decision.Action == api.ActionReassign {
				if err := it.reassign(ctx, exc, t); err != nil {
					return api.Decision{}, nil, err
				}
				it.alert(remindCtx, exc, workflow.Now(ctx))
				continue
			}
			return t.decision, t, nil
		}
		now := workflow.Now(ctx)
		wake := exc.Since.Add(time.Duration(exc.Reminders+1) * exc.SLA)
		if !exc.Deadline.IsZero() && exc.Deadline.Before(wake) {
			wake = exc.Deadline
		}
		decided, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      max(wake.Sub(now), time.Millisecond),
			TimerOptions: workflow.TimerOptions{Summary: "Wait for a decision until " + wake.UTC().Format(time.RFC3339)},
		}, func() bool { return len(it.inbox) > 0 })
		if err != nil {
			return api.Decision{}, nil, err
		}
		if decided {
			continue
		}
		now = workflow.Now(ctx)
		if !exc.Deadline.IsZero() && !now.Before(exc.Deadline) {
			return api.Decision{Action: exc.AtDeadline, Actor: api.ActorSystem,
				Reason: fmt.Sprintf("no decision within %s (deadline %s)", exc.Deadline.Sub(exc.Since), exc.Deadline.Format(time.RFC3339))}, nil, nil
		}
		exc.Reminders++
		it.alert(remindCtx, exc, now)
	}
}

// reassign hands the waiting exception to the team t names: the item keeps
// waiting, now for that team, which is told at once.
func (it *Item) reassign(ctx workflow.Context, exc *api.ExceptionState, t *ticket) error {
	d := t.decision
	from := exc.Deciders
	exc.Deciders = d.Choice
	it.state.UpdatedAt = workflow.Now(ctx).UTC()
	if err := it.setTeam(ctx, d.Choice); err != nil {
		return err
	}
	details := map[string]any{"exception": string(exc.Kind), "from": from, "to": d.Choice}
	if t.identity != "" {
		details["identity"] = t.identity
	}
	ev := it.event(d.Actor, string(api.ActionReassign), it.state.Status, it.state.Status, d.Reason, details)
	if err := it.audit(ctx, "Audit reassignment to "+d.Choice, ev); err != nil {
		return err
	}
	t.finish(api.DecisionOutcome{Status: it.state.Status, Message: fmt.Sprintf("reassigned from %s to %s; %s waits for team %s", from, d.Choice, it.state.WorkflowID, d.Choice)}, nil)
	it.remember(d, t.via, t.identity, true, "")
	return nil
}

// alert tells the deciding team that the item waits (exc.Reminders 0) or
// still waits (a reminder), without holding up the wait; it is abandoned if a
// decision arrives first. Alerts of one team and exception kind are
// aggregated: the chat activity posts at most one per interval, and an alert
// it defers is asked again when the interval ends, when one message covers
// every alert deferred meanwhile.
func (it *Item) alert(ctx workflow.Context, exc *api.ExceptionState, now time.Time) {
	decide := api.DecideCommand(it.state.WorkflowID, exc.Decisions[0])
	var text, key, summary string
	if exc.Reminders == 0 {
		text = fmt.Sprintf("%s waits for a decision by %s.\n%s: %s\nAllowed: %s\nDecide: `%s`",
			it.state.WorkflowID, exc.Deciders, exc.Kind, exc.Summary, api.JoinActions(exc.Decisions), decide)
		key = fmt.Sprintf("%s/%s/raised-%d-%s", it.state.WorkflowID, it.runID, exc.Since.UnixMilli(), exc.Deciders)
		summary = "Tell " + exc.Deciders + " of " + string(exc.Kind)
	} else {
		age := now.Sub(it.state.StartedAt).Round(time.Minute)
		waited := now.Sub(exc.Since).Round(time.Minute)
		text = fmt.Sprintf("Reminder %d: %s has waited %s for a decision by %s (item age %s).\n%s: %s\nDecide: `%s`",
			exc.Reminders, it.state.WorkflowID, waited, exc.Deciders, age, exc.Kind, exc.Summary, decide)
		// A reminder belongs to one raise of one run: a later run reminds afresh.
		key = fmt.Sprintf("%s/%s/reminder-%d-%d-%s", it.state.WorkflowID, it.runID, exc.Since.UnixMilli(), exc.Reminders, exc.Deciders)
		summary = "Remind " + exc.Deciders + " of " + string(exc.Kind)
	}
	in := activities.NotifyInput{Team: exc.Deciders, WorkflowID: it.state.WorkflowID, Text: text, Key: key,
		Digest: &activities.Digest{Kind: string(exc.Kind), Since: exc.Since,
			List: fmt.Sprintf("signals list --exception %s --status %s", exc.Kind, it.state.Status)}}
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var r activities.NotifyResult
			err := it.Call(ctx, summary, chatActivities.Notify, in, &r)
			if err != nil {
				if !temporal.IsCanceledError(err) {
					it.logger.Warn("alert not delivered", "error", err)
				}
				return
			}
			if r.DeferredUntil.IsZero() {
				return
			}
			wait := max(r.DeferredUntil.Sub(workflow.Now(ctx)), time.Second)
			if err := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: "Alert deferred: one message per team and kind per interval"}).Get(ctx, nil); err != nil {
				return
			}
		}
	})
}
