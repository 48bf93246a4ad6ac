package api

import "time"

// Classes of what a reconcile run finds, record by record and field by field.
const (
	ClassInSync = "in-sync"
	// ClassDrifted: the target (or, for a field the target owns, the source)
	// holds an edit, made outside signalbox, of a field the other system owns;
	// or both systems edited a field they share.
	ClassDrifted = "drifted"
	// ClassNotSynced: the owner changed the field and the other system has
	// not caught up yet.
	ClassNotSynced = "not-synced"
	// ClassMissing: the link points to a target record that is gone.
	ClassMissing = "missing-in-target"
	// ClassTargetOnly: the target holds a record signalbox never linked
	// (created outside signalbox).
	ClassTargetOnly = "target-only"
	// ClassDuplicate: the target holds two records for one source key.
	ClassDuplicate = "duplicate-in-target"
	// ClassStatusDiffers: an invoice's payment status in PostgreSQL is not
	// Stripe's (a webhook that never arrived).
	ClassStatusDiffers = "status-differs"
	// ClassAmountDiffers: an invoice's total in Stripe is not its total in
	// PostgreSQL.
	ClassAmountDiffers = "amount-differs"
)

// Classes lists every class with what it means, in report order.
var Classes = []struct{ Name, Meaning string }{
	{ClassInSync, "source, target and the last synced values agree"},
	{ClassDrifted, "edited outside signalbox in the system that does not own the field (or in both, for a shared field)"},
	{ClassNotSynced, "changed by its owner, not yet synced to the other system"},
	{ClassMissing, "the linked target record is gone (deleted or archived)"},
	{ClassTargetOnly, "in the target only: created outside signalbox"},
	{ClassDuplicate, "two target records for one source record"},
	{ClassStatusDiffers, "the invoice's payment status differs from Stripe's"},
	{ClassAmountDiffers, "the invoice's total differs from Stripe's"},
}

// WorkflowReconcile is the workflow type of every integration's reconcile run.
const WorkflowReconcile = "Reconcile"

// ReconcileID is the workflow ID of an integration's reconcile runs: one at a
// time per integration.
func ReconcileID(integration string) string { return "reconcile:" + integration }

// ReconcileScheduleID is the Temporal Schedule of an integration's nightly run.
func ReconcileScheduleID(integration string) string { return "reconcile-schedule:" + integration }

// ReconcileInput starts a reconcile run.
type ReconcileInput struct {
	Integration string `json:"integration"`
	StartedBy   string `json:"startedBy,omitempty"`
}

// ReconcileProgress answers QueryProgress of a reconcile run.
type ReconcileProgress struct {
	RunID    int64     `json:"runId"`
	Phase    string    `json:"phase"`
	Compared int64     `json:"compared"`
	Handed   int64     `json:"handed"`
	Since    time.Time `json:"since"`
}
