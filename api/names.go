// This file declares the names that cross a process boundary: task queues,
// update, signal and query names and their payloads, search attributes,
// statuses, exception kinds, actions, systems and error types.
package api

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Task queues. Workflows run on TaskQueueIntegrations; activities that call a
// target run on that target's queue so one worker option caps its rate.
const (
	TaskQueueIntegrations = "integrations"
	TaskQueueCRM          = "crm"
	// TaskQueueCRMPoll runs a poll's CRM reads and batches apart from the
	// items' steps, so a poll is not queued behind the items it starts; the
	// CRM's request spacing is the same for both (one send-slot row).
	TaskQueueCRMPoll = "crm-poll"
	TaskQueueChat    = "chat"
)

// Message names of every integration workflow.
const (
	// UpdateDecide delivers a Decision and answers with a DecisionOutcome or a refusal.
	UpdateDecide = "decide"
	// SignalDecision delivers a Decision without an answer (Temporal UI, temporal CLI).
	SignalDecision = "decision"
	// SignalResync tells a running item that its record changed again: it
	// syncs once more before it ends.
	SignalResync = "resync"
	// QueryProgress returns a poll's PollProgress.
	QueryProgress = "progress"
	// QueryStatus returns the ItemState.
	QueryStatus = "status"
)

// Search attributes. They hold identifiers and states only, never personal data.
var (
	AttrIntegrationName   = temporal.NewSearchAttributeKeyKeyword("IntegrationName")
	AttrIntegrationOwner  = temporal.NewSearchAttributeKeyKeyword("IntegrationOwner")
	AttrSourceKey         = temporal.NewSearchAttributeKeyKeyword("SourceKey")
	AttrIntegrationStatus = temporal.NewSearchAttributeKeyKeyword("IntegrationStatus")
	AttrExceptionKind     = temporal.NewSearchAttributeKeyKeyword("ExceptionKind")
	AttrAttentionSince    = temporal.NewSearchAttributeKeyTime("AttentionSince")
	// AttrAssignedTeam is the team an item is assigned to (a lead's sales
	// team), where it differs from the integration's owner or was routed.
	AttrAssignedTeam = temporal.NewSearchAttributeKeyKeyword("AssignedTeam")
)

// SearchAttributes lists the custom search attributes signalbox needs, with their types.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		AttrIntegrationName.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrIntegrationOwner.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrSourceKey.GetName():         enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrIntegrationStatus.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrExceptionKind.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrAttentionSince.GetName():    enumspb.INDEXED_VALUE_TYPE_DATETIME,
		AttrAssignedTeam.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// Status is where an item stands; published as IntegrationStatus.
type Status string

// The status model (README, "Statuses").
const (
	StatusPending          Status = "Pending"
	StatusRunning          Status = "Running"
	StatusBlocked          Status = "Blocked"
	StatusFailed           Status = "Failed"
	StatusSynced           Status = "Synced"
	StatusRejected         Status = "Rejected"
	StatusManuallyResolved Status = "ManuallyResolved"
	StatusCancelled        Status = "Cancelled"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusPending, StatusRunning, StatusBlocked, StatusFailed, StatusSynced, StatusRejected, StatusManuallyResolved, StatusCancelled}

// Meaning says what a status means and how an item leaves it.
func (s Status) Meaning() string {
	switch s {
	case StatusPending:
		return "accepted, not yet worked on; leaves when a worker picks it up"
	case StatusRunning:
		return "steps under way, transient failures retried inside; leaves for Synced, Blocked or Failed"
	case StatusBlocked:
		return "a business exception needs a person's judgment; leaves by a decision"
	case StatusFailed:
		return "retries exhausted on a technical failure; leaves by retry, resolve or cancel"
	case StatusSynced:
		return "done: the target matches the source"
	case StatusRejected:
		return "a person decided it must not be integrated"
	case StatusManuallyResolved:
		return "a person fixed it outside signalbox and recorded where"
	case StatusCancelled:
		return "withdrawn"
	}
	return "unknown status"
}

// Waiting reports whether the item waits for a person's decision.
func (s Status) Waiting() bool { return s == StatusBlocked || s == StatusFailed }

// Terminal reports whether the item is finished.
func (s Status) Terminal() bool {
	return s == StatusSynced || s == StatusRejected || s == StatusManuallyResolved || s == StatusCancelled
}

// ParseStatus accepts a status name in any case.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if strings.EqualFold(s, string(st)) {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown status %q (one of %s)", s, joinStatuses())
}

func joinStatuses() string {
	names := make([]string, len(Statuses))
	for i, s := range Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// ExceptionKind names a situation that needs judgment; published as ExceptionKind.
type ExceptionKind string

// Exception kinds.
const (
	ConsentMissing     ExceptionKind = "ConsentMissing"
	DuplicateSuspected ExceptionKind = "DuplicateSuspected"
	ValidationFailed   ExceptionKind = "ValidationFailed"
	ApprovalRequired   ExceptionKind = "ApprovalRequired"
	Conflict           ExceptionKind = "Conflict"
	TargetRejected     ExceptionKind = "TargetRejected"
	TargetUnavailable  ExceptionKind = "TargetUnavailable"
	AuthFailed         ExceptionKind = "AuthFailed"
	RoutingUnclear     ExceptionKind = "RoutingUnclear"
	// Found by reconciliation (see ReconcileExceptions).
	MissingInTarget   ExceptionKind = "MissingInTarget"
	DuplicateInTarget ExceptionKind = "DuplicateInTarget"
	AmountMismatch    ExceptionKind = "AmountMismatch"
)

// Action is what an operator decides.
type Action string

// Decision actions.
const (
	ActionApprove Action = "approve"
	ActionReject  Action = "reject"
	ActionAmend   Action = "amend"
	ActionRetry   Action = "retry"
	ActionResolve Action = "resolve"
	ActionCancel  Action = "cancel"
	// ActionReassign hands a waiting item to another team (Choice names it);
	// it keeps waiting, for that team's decision.
	ActionReassign Action = "reassign"
)

// Actions lists every action.
var Actions = []Action{ActionApprove, ActionReject, ActionAmend, ActionRetry, ActionResolve, ActionCancel, ActionReassign}

// ActorSystem is the actor of what signalbox does by itself.
const ActorSystem = "system"

// Decision is an operator's answer to an exception; the payload of both
// UpdateDecide and SignalDecision.
type Decision struct {
	Action Action `json:"action"`
	// Actor is who decides; they must be an operator of the deciding team.
	Actor string `json:"actor"`
	// Reason is required: it goes to the audit trail.
	Reason string `json:"reason"`
	// Choice picks among the exception's choices, where it offers some.
	Choice string `json:"choice,omitempty"`
	// Set holds field changes for amend.
	Set map[string]string `json:"set,omitempty"`
	// ExternalRef says where the item was fixed by hand, for resolve.
	ExternalRef string `json:"externalRef,omitempty"`
	// SignedAt and Signature sign the decision with the actor's ed25519 key
	// (SignDecision), where SIGNALBOX_DECISION_KEYS requires it.
	SignedAt  string `json:"signedAt,omitempty"`
	Signature string `json:"signature,omitempty"`
	// Signer names the operator console that signed the decision for its
	// actor, whom it authenticated through the company's sign-on proxy
	// (SIGNALBOX_CONSOLE_KEYS); empty when the actor signed it.
	Signer string `json:"signer,omitempty"`
}

// DecisionOutcome answers an accepted decision.
type DecisionOutcome struct {
	// Status is the item's status once the decision was applied.
	Status  Status `json:"status"`
	Message string `json:"message"`
}

// ExceptionState is an exception that an item waits on.
type ExceptionState struct {
	Kind    ExceptionKind `json:"kind"`
	Summary string        `json:"summary"`
	// Details tell the operator what they need to decide.
	Details map[string]string `json:"details,omitempty"`
	// Decisions are the allowed actions; Choices the options of approve, if any.
	Decisions []Action `json:"decisions"`
	Choices   []Choice `json:"choices,omitempty"`
	// Deciders is the team whose operators may decide.
	Deciders   string        `json:"deciders"`
	Since      time.Time     `json:"since"`
	SLA        time.Duration `json:"sla"`
	Deadline   time.Time     `json:"deadline,omitzero"`
	AtDeadline Action        `json:"atDeadline,omitempty"`
	Reminders  int           `json:"reminders"`
}

// DecisionRecord is a decision as the item applied or refused it.
type DecisionRecord struct {
	Decision
	At      time.Time `json:"at"`
	Via     string    `json:"via"` // "update" or "signal"
	Applied bool      `json:"applied"`
	Refusal string    `json:"refusal,omitempty"`
	// Identity is IdentityVerified when the actor's signature was checked,
	// else IdentityAsserted (empty for decisions made before it was kept).
	Identity string `json:"identity,omitempty"`
}

// ItemInput is what every integration's input carries besides its payload.
type ItemInput struct {
	// StartedBy says who or what started the item (e.g. "intake", "cli:alice").
	StartedBy string `json:"startedBy,omitempty"`
	// Reconcile, when set, starts the item for what a reconcile run found:
	// the item re-syncs the record as it was last synced, and raises what no
	// field rule may repair.
	Reconcile *ReconcileFinding `json:"reconcile,omitempty"`
}

// ReconcileFinding is what reconcile run RunID found of one record.
type ReconcileFinding struct {
	RunID int64 `json:"runId"`
	// Class is the record's gravest class (ClassMissing, ClassAmountDiffers, …).
	Class string `json:"class"`
	// Fingerprint identifies the values found, so that an accepted difference
	// is not raised again while they stay the same.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Details are shown with the exception (no personal data).
	Details map[string]string `json:"details,omitempty"`
}

// ItemState is everything the status query returns.
type ItemState struct {
	Integration string `json:"integration"`
	WorkflowID  string `json:"workflowId"`
	SourceKey   string `json:"sourceKey"`
	Owner       string `json:"owner"`
	// Team is the team the item is assigned to, if not its owner.
	Team      string          `json:"team,omitempty"`
	Status    Status          `json:"status"`
	Step      string          `json:"step,omitempty"`
	Exception *ExceptionState `json:"exception,omitempty"`
	// Attempts counts how often each step was run (decisions to retry add one).
	Attempts    map[string]int    `json:"attempts,omitempty"`
	ExternalIDs map[string]string `json:"externalIds,omitempty"`
	// Decisions holds the most recent decisions, newest last.
	Decisions []DecisionRecord `json:"decisions,omitempty"`
	StartedAt time.Time        `json:"startedAt"`
	UpdatedAt time.Time        `json:"updatedAt"`
}

// Result is what an integration workflow returns.
type Result struct {
	Status      Status            `json:"status"`
	ExternalIDs map[string]string `json:"externalIds,omitempty"`
}

var sourceKeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,199}$`)

// CheckSourceKey says what is wrong with a source key, if anything. A key is
// an identifier — it becomes the workflow ID and the SourceKey search
// attribute, which are not encrypted — so characters of email addresses are
// refused: no personal data can become a key.
func CheckSourceKey(key string) error {
	if !sourceKeyPattern.MatchString(key) {
		return fmt.Errorf("must be 1 to 200 characters of letters, digits and . _ ~ -, starting with a letter or digit (an identifier, never personal data)")
	}
	return nil
}

// PollProgress is how far a poll has come.
type PollProgress struct {
	// Side is the system it pages through now.
	Side string `json:"side"`
	// Seen counts the records compared; Handed those handed to their items;
	// Created those created in the target in batches.
	Seen, Handed, Created int
}

func (p PollProgress) String() string {
	return fmt.Sprintf("%s: %d compared, %d handed to their items, %d created in batches", p.Side, p.Seen, p.Handed, p.Created)
}

// ScheduleID is the ID of the Temporal Schedule that polls an integration's
// systems for changes.
func ScheduleID(integration string) string { return integration + "-poll" }

// ItemID is the workflow ID of an item: "<integration>:<source key>".
func ItemID(integration, sourceKey string) string { return integration + ":" + sourceKey }

// SplitItemID splits a workflow ID into integration and source key.
func SplitItemID(workflowID string) (integration, sourceKey string, ok bool) {
	integration, sourceKey, ok = strings.Cut(workflowID, ":")
	return integration, sourceKey, ok && integration != "" && sourceKey != ""
}

// System names an external system signalbox reads or writes: the Source and
// Target of a spec, a field's Owner, the system of an external link.
const (
	SystemCRM    = "crm"
	SystemStripe = "stripe"
	SystemChat   = "chat"
)

// ExternalKey names an ID an item records of its record in another system
// (ItemState.ExternalIDs).
type ExternalKey string

// External IDs the integrations record.
const (
	ExternalCRMContact     ExternalKey = "crm"
	ExternalCRMCompany     ExternalKey = "crm company"
	ExternalCustomer       ExternalKey = "customer"
	ExternalInvoice        ExternalKey = "invoice"
	ExternalStripeCustomer ExternalKey = "stripe customer"
	ExternalStripeInvoice  ExternalKey = "stripe invoice"
	ExternalBilledByHand   ExternalKey = "billed by hand"
)

// ErrorType is the type of an ApplicationError: a class of failure,
// decided once (activities.Classify, the decision handlers) and read
// wherever the failure is handled.
type ErrorType string

// Error types.
const (
	// ErrorAuthFailed: the target refused our credentials (401/403). Not retried.
	ErrorAuthFailed ErrorType = "AuthFailed"
	// ErrorTargetRejected: the target refused the request's content (other 4xx). Not retried.
	ErrorTargetRejected ErrorType = "TargetRejected"
	// ErrorConflict: the target reports a conflicting record (409) the step did not resolve. Not retried.
	ErrorConflict ErrorType = "Conflict"
	// ErrorRateLimited: the target asked us to slow down (429). Retried after Retry-After.
	ErrorRateLimited ErrorType = "RateLimited"
	// ErrorTargetUnavailable: 408, 5xx, network failure or timeout, or an
	// idempotency key still in use by a request the target is running (409). Retried.
	ErrorTargetUnavailable ErrorType = "TargetUnavailable"
	// ErrorIdempotencyMisuse: the target saw an idempotency key again with
	// other parameters, a bug in signalbox. Not retried.
	ErrorIdempotencyMisuse ErrorType = "IdempotencyMisuse"
	// ErrorInternal: signalbox's own dependency (PostgreSQL) failed. Retried.
	ErrorInternal ErrorType = "Internal"
	// ErrorBusy: the step waits for another item's step on the same record
	// (a notification being sent, a person being looked up). Retried.
	ErrorBusy ErrorType = "Busy"
	// ErrorNotFound: a source record does not exist. Not retried.
	ErrorNotFound ErrorType = "NotFound"
	// ErrorStale: a source record changed since it was read; nothing was written.
	ErrorStale ErrorType = "Stale"
	// ErrorDecisionRefused: a decision was refused (not waiting, not allowed,
	// not authorised); the message says why.
	ErrorDecisionRefused ErrorType = "DecisionRefused"
)

// TypeOf is the type of the ApplicationError in err's chain, or "".
func TypeOf(err error) ErrorType {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return ErrorType(appErr.Type())
	}
	return ""
}
