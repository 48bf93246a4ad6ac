package activities

import (
	"context"
	"time"

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
}

// Spine holds the activities every integration's spine uses: the audit trail
// and the policy. They run as local activities, off the matching path.
type Spine struct {
	Store  *store.Store
	Policy Policy
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
