package activities

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// TargetPolicy bounds the calls to one target.
type TargetPolicy struct {
	// Timeout bounds one request.
	Timeout time.Duration `json:"timeout"`
	// RetryWindow is how long a step keeps retrying before the item fails.
	RetryWindow time.Duration `json:"retryWindow"`
}

// Policy is the part of the worker's configuration that workflows act on. An
// item reads it once, when it begins, so that it is recorded in the history and
// replays identically; a changed configuration applies to items begun after.
type Policy struct {
	// Operators lists who may decide each team's exceptions.
	Operators map[string][]string `json:"operators"`
	// Targets holds each target's timeouts, by task queue name.
	Targets map[string]TargetPolicy `json:"targets"`
	// InvoiceApprovalThreshold is the invoice total, in minor units, above
	// which finance must approve; zero means every invoice is billed without.
	InvoiceApprovalThreshold int64 `json:"invoiceApprovalThreshold"`
	// LeadRoutes route leads to sales teams: team → conditions
	// (SIGNALBOX_LEAD_ROUTES); none sends every lead to the owner team.
	LeadRoutes map[string]string `json:"leadRoutes,omitempty"`
	// SLAs override the spec's SLA (and deadline) by exception kind.
	SLAs map[string]SLA `json:"slas,omitempty"`
}

// SLA is how long an exception may wait before its team is reminded, and
// (when the spec has one) before its deadline action applies.
type SLA struct {
	SLA      time.Duration `json:"sla"`
	Deadline time.Duration `json:"deadline,omitempty"`
}

// Spine holds the activities every integration's spine uses: the audit trail
// and the policy. They run as local activities, off the matching path.
type Spine struct {
	Store  *store.Store
	Policy Policy
	// DecisionKeys are the operators' public keys (SIGNALBOX_DECISION_KEYS):
	// when set, only decisions signed with them are applied.
	DecisionKeys map[string]ed25519.PublicKey
	// ConsoleKeys are the keys of the operator consoles trusted to sign
	// for the operators they authenticated (SIGNALBOX_CONSOLE_KEYS); they
	// too make signatures required.
	ConsoleKeys map[string]ed25519.PublicKey
}

// BeginInput opens an item's audit trail.
type BeginInput struct {
	Events []store.AuditEvent
}

// BeginResult carries the policy the item runs under.
type BeginResult struct {
	Policy Policy
}

// Begin records the item's first audit events and returns the worker's policy.
func (s *Spine) Begin(ctx context.Context, in BeginInput) (BeginResult, error) {
	if err := s.Store.InsertAudit(ctx, in.Events...); err != nil {
		return BeginResult{}, Classify(err)
	}
	return BeginResult{Policy: s.Policy}, nil
}

// RecordAuditInput holds audit events to write.
type RecordAuditInput struct {
	Events []store.AuditEvent
}

// RecordAudit writes audit events; a repeated event is ignored.
func (s *Spine) RecordAudit(ctx context.Context, in RecordAuditInput) error {
	return Classify(s.Store.InsertAudit(ctx, in.Events...))
}

// RecordResolutionInput says where a person resolved an item by hand.
type RecordResolutionInput struct {
	Integration, SourceKey, TargetSystem, WorkflowID string
	ExternalRef                                      string
}

// RecordResolution keeps the external reference of a manual resolution with
// the record's link, so a later sync and `signals show` know where it went.
func (s *Spine) RecordResolution(ctx context.Context, in RecordResolutionInput) error {
	return Classify(s.Store.SaveManualRef(ctx, in.Integration, in.SourceKey, in.TargetSystem, in.WorkflowID, in.ExternalRef))
}

// OperatorsInput names a team, and the actor of the decision at hand.
type OperatorsInput struct {
	Team  string
	Actor string `json:",omitempty"`
	// Signer is the console that signed the decision for its actor, if one did.
	Signer string `json:",omitempty"`
}

// OperatorsResult lists who may decide the team's exceptions now and, when
// decisions must be signed, the actor's public key (nil: the actor has none).
type OperatorsResult struct {
	Operators      []string
	SignedOnly     bool              `json:",omitempty"`
	ActorPublicKey ed25519.PublicKey `json:",omitempty"`
	// SignerPublicKey is the signing console's key (nil: no such console).
	SignerPublicKey ed25519.PublicKey `json:",omitempty"`
}

// Operators returns the team's operators as this worker is configured now,
// so that a decision is authorised against the current SIGNALBOX_OPERATORS
// and SIGNALBOX_DECISION_KEYS.
func (s *Spine) Operators(_ context.Context, in OperatorsInput) (OperatorsResult, error) {
	r := OperatorsResult{Operators: s.Policy.Operators[in.Team], SignedOnly: len(s.DecisionKeys) > 0 || len(s.ConsoleKeys) > 0}
	if r.SignedOnly {
		r.ActorPublicKey = s.DecisionKeys[in.Actor]
		if in.Signer != "" {
			r.SignerPublicKey = s.ConsoleKeys[in.Signer]
		}
	}
	return r, nil
}

// SaveBaselineInput links a source record to a target record whose values
// need no write: they already match, or a person settled them.
type SaveBaselineInput struct {
	Link store.Link
}

// SaveBaseline records the link and its baseline.
func (s *Spine) SaveBaseline(ctx context.Context, in SaveBaselineInput) error {
	in.Link.SyncedAt = time.Now().UTC()
	return Classify(s.Store.SaveLink(ctx, in.Link))
}

// LinkInput names a record's link.
type LinkInput struct {
	Integration, SourceKey, TargetSystem string
}

// LastSynced returns a record's link, with what was last synced; Found is
// false when it has none.
func (s *Spine) LastSynced(ctx context.Context, in LinkInput) (LastSyncedResult, error) {
	l, err := s.Store.GetLink(ctx, in.Integration, in.SourceKey, in.TargetSystem)
	if errors.Is(err, store.ErrNotFound) {
		return LastSyncedResult{}, nil
	}
	if err != nil {
		return LastSyncedResult{}, Classify(err)
	}
	r := LastSyncedResult{Link: l, Found: true}
	trail, err := s.Store.AuditTrail(ctx, l.WorkflowID)
	if err != nil {
		return r, Classify(err)
	}
	for _, e := range trail {
		if team, ok := e.Details["team"].(string); ok && e.Action == "assigned" {
			r.Team = team
		}
	}
	return r, nil
}

// LastSyncedResult is a record's link, if it has one, and the team the item
// that wrote it was last assigned to ("": its owner).
type LastSyncedResult struct {
	Link  store.Link
	Found bool
	Team  string
}

// ForgetLink deletes a record's link: a person decided that its target
// record, deleted outside signalbox, stays deleted.
func (s *Spine) ForgetLink(ctx context.Context, in LinkInput) error {
	return Classify(s.Store.DeleteLink(ctx, in.Integration, in.SourceKey, in.TargetSystem))
}

// AcceptDifferenceInput is a difference a person accepted.
type AcceptDifferenceInput struct {
	Integration, SourceKey string
	Finding                api.ReconcileFinding
	Actor, Reason          string
}

// AcceptDifference remembers an accepted difference: reconcile runs do not
// raise it again while its values stay the same.
func (s *Spine) AcceptDifference(ctx context.Context, in AcceptDifferenceInput) error {
	return Classify(s.Store.AcceptDifference(ctx, in.Integration, in.SourceKey, in.Finding.Class, in.Finding.Fingerprint, in.Actor, in.Reason))
}
