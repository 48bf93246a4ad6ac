package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/signalbox-dev/signalbox/api"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// started names the run an item start returned.
type started struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// errRunningOther is a start refused because the item runs already with
// another input: the newer submission is not taken (never silently dropped).
type errRunningOther struct{ started }

func (e *errRunningOther) Error() string {
	return fmt.Sprintf("%s is running with another submission; this one was not taken: send it again once the item has ended (see /v1/items/%s)",
		e.WorkflowID, e.WorkflowID)
}

// items starts integration items and reads their state.
type items interface {
	Start(ctx context.Context, spec api.Spec, sourceKey string, input any) (started, error)
	Status(ctx context.Context, workflowID string) (api.ItemState, error)
	// StartedBy is the startedBy of the item's first run; api.ErrNoItem
	// when Temporal does not know the item.
	StartedBy(ctx context.Context, workflowID string) (string, error)
}

// temporalItems implements items on a Temporal client.
type temporalItems struct {
	client client.Client
	// payloads reads the inputs of runs as the client wrote them (decrypting
	// them when the client encrypts).
	payloads converter.DataConverter
}

// newTemporalItems reads and starts items through c, whose payloads
// converter dc reads (nil: the SDK's default).
func newTemporalItems(c client.Client, dc converter.DataConverter) *temporalItems {
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	return &temporalItems{client: c, payloads: dc}
}

// Start starts the item. If it runs already, the running one is returned when
// it was started with the same input (a sender's retry), and the start is
// refused with *errRunningOther when its input differs.
func (t *temporalItems) Start(ctx context.Context, spec api.Spec, sourceKey string, input any) (started, error) {
	opts := api.StartOptions(spec, sourceKey)
	opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL
	opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	run, err := t.client.ExecuteWorkflow(ctx, opts, spec.WorkflowType, input)
	var running *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &running) {
		s := started{WorkflowID: opts.ID, RunID: running.RunId}
		same, err := t.startedWith(ctx, s, input)
		switch {
		case err != nil:
			return s, err
		case !same:
			return s, &errRunningOther{s}
		}
		return s, nil
	}
	if err != nil {
		return started{}, err
	}
	return started{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// startedWith reports whether the run was started with input, apart from who
// started it.
func (t *temporalItems) startedWith(ctx context.Context, s started, input any) (bool, error) {
	first, err := t.startEvent(ctx, s.WorkflowID, s.RunID)
	if err != nil {
		return false, fmt.Errorf("read the running %s: %w", s.WorkflowID, err)
	}
	var theirs any
	if !t.inputOf(first, &theirs) {
		return false, nil
	}
	raw, err := json.Marshal(input)
	if err != nil {
		return false, err
	}
	var ours any
	if err := json.Unmarshal(raw, &ours); err != nil {
		return false, err
	}
	return reflect.DeepEqual(withoutStarter(ours), withoutStarter(theirs)), nil
}

// StartedBy reads the startedBy of the input of the item's first run: a run
// continued as new (a re-sync, a long payment history) names the run
// before, not who started the item.
func (t *temporalItems) StartedBy(ctx context.Context, workflowID string) (string, error) {
	first, err := t.startEvent(ctx, workflowID, "")
	if err == nil && first.GetContinuedExecutionRunId() != "" && first.GetFirstExecutionRunId() != "" {
		first, err = t.startEvent(ctx, workflowID, first.GetFirstExecutionRunId())
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return "", api.ErrNoItem
	}
	if err != nil {
		return "", fmt.Errorf("read who started %s: %w", workflowID, err)
	}
	var in api.ItemInput
	if !t.inputOf(first, &in) {
		return "", nil
	}
	return in.StartedBy, nil
}

// startEvent is the first event of a run ("": the latest).
func (t *temporalItems) startEvent(ctx context.Context, workflowID, runID string) (*historypb.WorkflowExecutionStartedEventAttributes, error) {
	iter := t.client.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !iter.HasNext() {
		return nil, errors.New("no history")
	}
	first, err := iter.Next()
	if err != nil {
		return nil, err
	}
	attrs := first.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return nil, errors.New("the history does not begin with the start")
	}
	return attrs, nil
}

// inputOf decodes the run's one input into out.
func (t *temporalItems) inputOf(attrs *historypb.WorkflowExecutionStartedEventAttributes, out any) bool {
	payloads := attrs.GetInput().GetPayloads()
	return len(payloads) == 1 && t.payloads.FromPayload(payloads[0], out) == nil
}

func withoutStarter(v any) any {
	if m, ok := v.(map[string]any); ok {
		delete(m, "startedBy")
	}
	return v
}

// Status reads the item's state (see api.ReadItem).
func (t *temporalItems) Status(ctx context.Context, workflowID string) (api.ItemState, error) {
	s, _, err := api.ReadItem(ctx, t.client, workflowID)
	return s, err
}
