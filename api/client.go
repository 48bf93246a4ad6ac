package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// StartOptions are the options every item starts with: its workflow ID, the
// search attributes it is found by, and a summary the UI shows. Starting an
// item that runs already returns the running one; starting it after it ended
// runs it again (a re-sync, which updates rather than duplicates).
func StartOptions(spec Spec, sourceKey string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       ItemID(spec.Name, sourceKey),
		TaskQueue:                TaskQueueIntegrations,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrIntegrationName.ValueSet(spec.Name),
			AttrIntegrationOwner.ValueSet(spec.Owner),
			AttrSourceKey.ValueSet(sourceKey),
			AttrIntegrationStatus.ValueSet(string(StatusPending)),
		),
		// Summaries hold identifiers only, never personal data: without
		// SIGNALBOX_PAYLOAD_KEYS they are stored in clear.
		StaticSummary: fmt.Sprintf("%s %s → %s (owner: %s)", spec.Source, sourceKey, spec.Target, spec.Owner),
		StaticDetails: fmt.Sprintf("**%s** — %s\n\nThe integration card: `signals describe %s`. This item's state: `signals show %s`.",
			spec.Title, spec.Description, spec.Name, ItemID(spec.Name, sourceKey)),
	}
}

// ErrNoItem is returned for a workflow ID that Temporal does not know.
var ErrNoItem = errors.New("no such item")

// ReadItem returns an item's state by its status query. When no worker answers
// within a few seconds it falls back to what visibility knows, and live is false.
func ReadItem(ctx context.Context, c client.Client, workflowID string) (state ItemState, live bool, err error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.QueryWorkflow(qctx, workflowID, "", QueryStatus)
	if err == nil {
		if err := resp.Get(&state); err != nil {
			return state, false, fmt.Errorf("decode the status of %s: %w", workflowID, err)
		}
		return state, true, nil
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return state, false, ErrNoItem
	}
	desc, derr := c.DescribeWorkflow(ctx, workflowID, "")
	if errors.As(derr, &notFound) {
		return state, false, ErrNoItem
	}
	if derr != nil {
		return state, false, fmt.Errorf("read %s: %w", workflowID, err)
	}
	return StateFromVisibility(desc.RawResponse.GetWorkflowExecutionInfo()), false, nil
}

// Follow waits for run to end, decoding its result into out, and calls
// progress every interval meanwhile: a command that starts long work shows
// how far it is.
func Follow(ctx context.Context, run client.WorkflowRun, every time.Duration, out any, progress func()) error {
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, out) }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			progress()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
