package main

import (
	"context"

	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/workflows"
)

// started names the run an item start returned.
type started struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// items starts integration items and reads their state.
type items interface {
	Start(ctx context.Context, spec workflows.Spec, sourceKey string, input any) (started, error)
	Status(ctx context.Context, workflowID string) (workflows.ItemState, error)
}

// temporalItems implements items on a Temporal client.
type temporalItems struct {
	client client.Client
}

func (t *temporalItems) Start(ctx context.Context, spec workflows.Spec, sourceKey string, input any) (started, error) {
	run, err := t.client.ExecuteWorkflow(ctx, workflows.StartOptions(spec, sourceKey), spec.WorkflowType, input)
	if err != nil {
		return started{}, err
	}
	return started{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// Status reads the item's state (see workflows.ReadItem).
func (t *temporalItems) Status(ctx context.Context, workflowID string) (workflows.ItemState, error) {
	s, _, err := workflows.ReadItem(ctx, t.client, workflowID)
	return s, err
}
