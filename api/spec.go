package api

import (
	"fmt"
	"slices"
	"time"
)

// Spec declares an integration: who owns it, which system owns each field, the
// exceptions it can raise and who decides them. The workflow runs from it and
// `signals describe` prints it, so the card and the code cannot drift apart.
type Spec struct {
	// Name is the integration's name and the prefix of its items' workflow IDs.
	Name string
	// WorkflowType is the Temporal workflow type that runs it.
	WorkflowType string
	Title        string
	Description  string
	// Owner is the team that owns the integration and hears about its items.
	Owner string
	// Source and Target are the systems data flows between.
	Source, Target string
	// Editors names, by system, the team that works in it: it hears when a
	// rule overrules its edit. Without one, the owner team hears.
	Editors    map[string]string
	Fields     []Field
	Exceptions []ExceptionSpec
	// Reconciles says what the integration's nightly reconcile run compares;
	// empty when it has none. Its code declares the run (spine.Reconcile).
	Reconciles string
	// CheckValue adds the problem, if any, of value as an operator's
	// amendment of field, judged from the value alone: the workflow and the
	// console both check amendments with it (CheckAmendment).
	CheckValue func(errs *FieldErrors, field, value string) `json:"-"`
	// AmendHint is added to the refusal of a field that cannot be amended.
	AmendHint string
}

// Field is one mapped field and the system that owns its value.
type Field struct {
	Name string
	// TargetName is the field's name in the target, if it goes there.
	TargetName string
	// Owner is the system of record (the spec's Source or Target), or
	// OwnerBoth for a field either side may edit; signalbox never silently
	// overwrites an owner's edit from another system.
	Owner string
	// Rule says what happens when the other system edits a field the owner
	// syncs to it: RuleAsk or RuleOwnerWins; for a field both own,
	// RuleLatestWins. Empty for fields not synced.
	Rule string
	// Direction says which way its values flow: DirToTarget, DirToSource,
	// DirTwoWay, or "" when signalbox does not sync the field.
	Direction string
	// BlanksSync lets a blank value overwrite one on the other side; without
	// it a blank never does.
	BlanksSync bool
	Required   bool
	// Amendable says an operator may change the field with amend.
	Amendable   bool
	Description string
}

// What happens when a system other than a field's owner edits it.
const (
	// RuleAsk raises a Conflict with both values for the owner team.
	RuleAsk = "ask"
	// RuleOwnerWins writes the owner's value back; the audit trail keeps both.
	RuleOwnerWins = "owner-wins"
	// RuleLatestWins, for a field both systems own: an edit on one side is
	// copied to the other; edits on both sides since the last sync raise a
	// Conflict.
	RuleLatestWins = "latest-wins"
)

// OwnerBoth owns a field that either system may edit.
const OwnerBoth = "both"

// Which way a field's values flow.
const (
	DirToTarget = "to-target"
	DirToSource = "to-source"
	DirTwoWay   = "two-way"
)

// Direction says which way a field's values flow, naming the systems: "to
// <target>", "to <source>", "two-way", or "" for a field not synced.
func (s Spec) Direction(f Field) string {
	switch f.Direction {
	case DirToTarget:
		return "to " + s.Target
	case DirToSource:
		return "to " + s.Source
	}
	return f.Direction
}

// SyncedFields are the fields signalbox syncs, whichever the direction.
func (s Spec) SyncedFields() []Field {
	var out []Field
	for _, f := range s.Fields {
		if f.Direction != "" {
			out = append(out, f)
		}
	}
	return out
}

// OwnedFields are the fields the spec's source owns and syncs to the target.
func (s Spec) OwnedFields() []Field {
	var out []Field
	for _, f := range s.Fields {
		if f.Owner == s.Source && f.TargetName != "" && f.Rule != "" {
			out = append(out, f)
		}
	}
	return out
}

// Editor is the team that works in system, or the owner team.
func (s Spec) Editor(system string) string {
	if team := s.Editors[system]; team != "" {
		return team
	}
	return s.Owner
}

// TargetName is the target's name of the field called name, or name.
func (s Spec) TargetName(name string) string {
	for _, f := range s.Fields {
		if f.Name == name && f.TargetName != "" {
			return f.TargetName
		}
	}
	return name
}

// Amendable lists the names of the fields an operator may amend.
func (s Spec) Amendable() []string {
	var out []string
	for _, f := range s.Fields {
		if f.Amendable {
			out = append(out, f.Name)
		}
	}
	return out
}

// Choice is one option an operator picks when approving.
type Choice struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// ExceptionSpec says how an integration handles one exception kind.
type ExceptionSpec struct {
	Kind ExceptionKind
	// Status is Blocked for business judgment, Failed for technical failure.
	Status Status
	// When says what raises it.
	When string
	// Decisions are the actions allowed; Choices the options of approve.
	Decisions []Action
	Choices   []Choice
	// Deciders is the team whose operators may decide; empty means the owner.
	Deciders string
	// SLA is how long it may wait before the owner channel is reminded (and again
	// after each further SLA).
	SLA time.Duration
	// Deadline, when set, is how long it may wait in all; then AtDeadline
	// (reject or cancel: nothing is ever approved by default) is applied.
	Deadline   time.Duration
	AtDeadline Action
}

// Exception returns the spec of kind.
func (s Spec) Exception(kind ExceptionKind) (ExceptionSpec, bool) {
	for _, e := range s.Exceptions {
		if e.Kind == kind {
			return e, true
		}
	}
	return ExceptionSpec{}, false
}

// DecidingTeam is the team that decides an exception of kind on an item
// assigned to team assigned (empty if none): the team the spec names for the
// kind, else the assigned team, else the integration's owner.
func (s Spec) DecidingTeam(kind ExceptionKind, assigned string) string {
	if e, ok := s.Exception(kind); ok && e.Deciders != "" {
		return e.Deciders
	}
	if assigned != "" {
		return assigned
	}
	return s.Owner
}

// Check reports the first inconsistency in the spec.
func (s Spec) Check() error {
	if s.Name == "" || s.WorkflowType == "" || s.Owner == "" {
		return fmt.Errorf("spec %q: name, workflow type and owner are required", s.Name)
	}
	if err := CheckSourceKey(s.Name); err != nil {
		return fmt.Errorf("spec %q: the name %v", s.Name, err)
	}
	seen := map[ExceptionKind]bool{}
	for _, e := range s.Exceptions {
		where := fmt.Sprintf("spec %q, exception %s", s.Name, e.Kind)
		if seen[e.Kind] {
			return fmt.Errorf("%s: declared twice", where)
		}
		seen[e.Kind] = true
		if !e.Status.Waiting() {
			return fmt.Errorf("%s: status must be Blocked or Failed", where)
		}
		if len(e.Decisions) == 0 {
			return fmt.Errorf("%s: no decision would end the wait", where)
		}
		for _, a := range e.Decisions {
			if !slices.Contains(Actions, a) {
				return fmt.Errorf("%s: unknown action %q", where, a)
			}
		}
		if len(e.Choices) > 0 && !slices.Contains(e.Decisions, ActionApprove) {
			return fmt.Errorf("%s: choices need the approve decision", where)
		}
		if e.SLA <= 0 {
			return fmt.Errorf("%s: an SLA is required", where)
		}
		if (e.Deadline > 0) != (e.AtDeadline != "") {
			return fmt.Errorf("%s: a deadline and its action go together", where)
		}
		if e.AtDeadline != "" && e.AtDeadline != ActionReject && e.AtDeadline != ActionCancel {
			return fmt.Errorf("%s: at the deadline only reject or cancel may apply, never %s", where, e.AtDeadline)
		}
		if e.AtDeadline != "" && !slices.Contains(e.Decisions, e.AtDeadline) {
			return fmt.Errorf("%s: the deadline action %s must also be an allowed decision", where, e.AtDeadline)
		}
	}
	for system := range s.Editors {
		if system != s.Source && system != s.Target {
			return fmt.Errorf("spec %q: editors of %q, which is neither its source nor its target", s.Name, system)
		}
	}
	for _, f := range s.Fields {
		where := fmt.Sprintf("spec %q, field %s", s.Name, f.Name)
		want := map[string]string{s.Source: DirToTarget, s.Target: DirToSource, OwnerBoth: DirTwoWay}[f.Owner]
		switch {
		case f.Direction != "" && f.Direction != DirToTarget && f.Direction != DirToSource && f.Direction != DirTwoWay:
			return fmt.Errorf("%s: direction %q is not %s, %s or %s", where, f.Direction, DirToTarget, DirToSource, DirTwoWay)
		case f.Direction != "" && f.Direction != want:
			return fmt.Errorf("%s: a field owned by %s flows %s, not %s", where, f.Owner, want, f.Direction)
		case f.Rule != "" && f.Direction == "":
			return fmt.Errorf("%s: a field with a rule needs a direction", where)
		case f.Rule == "":
		case f.Rule != RuleAsk && f.Rule != RuleOwnerWins && f.Rule != RuleLatestWins:
			return fmt.Errorf("%s: rule %q is not %s, %s or %s", where, f.Rule, RuleAsk, RuleOwnerWins, RuleLatestWins)
		case f.TargetName == "":
			return fmt.Errorf("%s: a synced field needs its name in the target", where)
		case (f.Rule == RuleLatestWins) != (f.Owner == OwnerBoth):
			return fmt.Errorf("%s: rule %s goes with owner %s, and only with it", where, RuleLatestWins, OwnerBoth)
		case f.Owner != OwnerBoth && f.Owner != s.Source && f.Owner != s.Target:
			return fmt.Errorf("%s: a synced field is owned by %s, %s or %s, not %q", where, s.Source, s.Target, OwnerBoth, f.Owner)
		}
	}
	return nil
}

// TechnicalExceptions are the exceptions every step can raise when a target
// refuses or stays down; integrations include them in their spec.
func TechnicalExceptions(sla time.Duration) []ExceptionSpec {
	return []ExceptionSpec{
		{Kind: TargetRejected, Status: StatusBlocked, When: "the target refused the request's content (HTTP 4xx)",
			Decisions: []Action{ActionAmend, ActionRetry, ActionResolve, ActionReject, ActionCancel}, SLA: sla},
		{Kind: Conflict, Status: StatusBlocked, When: "the target holds an edit, by someone else, of a field this integration owns",
			Decisions: []Action{ActionApprove, ActionResolve, ActionReject, ActionCancel}, SLA: sla},
		{Kind: TargetUnavailable, Status: StatusFailed, When: "the target kept failing (5xx, timeouts, 429) for the whole retry window",
			Decisions: []Action{ActionRetry, ActionResolve, ActionCancel}, SLA: sla},
		{Kind: AuthFailed, Status: StatusFailed, When: "the target refused signalbox's credentials (HTTP 401/403)",
			Decisions: []Action{ActionRetry, ActionResolve, ActionCancel}, SLA: sla},
	}
}

// Specs lists every integration.
func Specs() []Spec {
	return []Spec{LeadToCRMSpec(), InvoiceToBillingSpec(), CustomerSyncSpec(), InvoicePaymentsSpec()}
}

// SpecByName returns the integration called name.
func SpecByName(name string) (Spec, error) {
	var names []string
	for _, s := range Specs() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Spec{}, fmt.Errorf("unknown integration %q (known: %v)", name, names)
}

// WithoutDecision returns the exception specs with action taken out of
// their decisions: for an integration that has nothing to amend, say.
func WithoutDecision(specs []ExceptionSpec, action Action) []ExceptionSpec {
	out := make([]ExceptionSpec, len(specs))
	for i, e := range specs {
		e.Decisions = slices.DeleteFunc(slices.Clone(e.Decisions), func(a Action) bool { return a == action })
		out[i] = e
	}
	return out
}

// WithoutKinds returns the exception specs but those of kinds: for an
// integration that cannot meet them, or declares its own.
func WithoutKinds(specs []ExceptionSpec, kinds ...ExceptionKind) []ExceptionSpec {
	return slices.DeleteFunc(slices.Clone(specs), func(e ExceptionSpec) bool { return slices.Contains(kinds, e.Kind) })
}
