package spine

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
)

// This file is what integration code may use of an item; the rest of the
// item's state is the spine's.

// Key is the item's source key.
func (it *Item) Key() string { return it.state.SourceKey }

// WorkflowID is the item's workflow ID, the base of its idempotency keys.
func (it *Item) WorkflowID() string { return it.state.WorkflowID }

// Policy is the policy the item began with (recorded in its history).
func (it *Item) Policy() activities.Policy { return it.policy }

// Logger is the workflow's replay-safe logger.
func (it *Item) Logger() log.Logger { return it.logger }

// SetExternalID records where the item lives in another system; the status
// query, the UI's details and the result show it.
func (it *Item) SetExternalID(key api.ExternalKey, id string) {
	it.state.ExternalIDs[string(key)] = id
}

// Call runs one activity of the integration on the task queue the
// integration declares for it, under that target's timeouts and retry window,
// and decodes its result into out (nil to ignore it). summary is what the UI
// shows for it. Call it inside Do, which turns a failure into an exception.
func (it *Item) Call(ctx workflow.Context, summary string, activity, in, out any) error {
	queue, ok := it.queueOf(activity)
	if !ok {
		panic(fmt.Sprintf("integration %s calls an activity it does not declare in its Activities", it.spec.Name))
	}
	if queue == api.TaskQueueIntegrations {
		return it.Local(ctx, summary, activity, in, out)
	}
	return workflow.ExecuteActivity(it.targetCtx(ctx, queue, summary), activity, in).Get(ctx, out)
}

// Local runs a local activity (a PostgreSQL read or write), retrying for as
// long as it takes.
func (it *Item) Local(ctx workflow.Context, summary string, activity, in, out any) error {
	return workflow.ExecuteLocalActivity(localCtx(ctx, summary), activity, in).Get(ctx, out)
}

// Audit records an event that changes no status (e.g. a field rule applied).
func (it *Item) Audit(ctx workflow.Context, action, reason string, details map[string]any) error {
	it.state.UpdatedAt = workflow.Now(ctx).UTC()
	ev := it.event(api.ActorSystem, action, it.state.Status, it.state.Status, reason, details)
	return it.audit(ctx, "Audit "+action, ev)
}

// End ends the item by itself with a terminal status (e.g. an invoice found
// billed by hand): it records why and returns the Ended error to return from
// the integration's work.
func (it *Item) End(ctx workflow.Context, status api.Status, action, reason string, details map[string]any) error {
	if err := it.transition(ctx, status, api.ActorSystem, action, reason, details); err != nil {
		return err
	}
	return Ended{Status: status}
}

// Integration is the name of the item's integration.
func (it *Item) Integration() string { return it.spec.Name }
