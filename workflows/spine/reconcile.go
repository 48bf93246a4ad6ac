package spine

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// Reconcile declares an integration's reconcile run: Step (an activity
// method, func(context.Context, activities.ReconcileStepInput)
// (activities.ReconcileStepResult, error)) compares pages of its records on
// Queue, the target's. A Temporal Schedule starts a run nightly.
type Reconcile struct {
	Queue string
	Step  any
}

// Workflow is a workflow function and the type it is registered as.
type Workflow struct {
	Name string
	Fn   any
}

// Workflows lists every workflow the integrations run: each one's own, its
// poll, and the reconcile run they share.
func Workflows(integrations []Integration) []Workflow {
	var out []Workflow
	reconciles := false
	for _, in := range integrations {
		out = append(out, Workflow{in.Spec.WorkflowType, in.Workflow})
		if in.Poll != nil {
			out = append(out, Workflow{in.Poll.WorkflowType, in.Poll.Workflow})
		}
		reconciles = reconciles || in.Reconcile != nil
	}
	if reconciles {
		out = append(out, Workflow{api.WorkflowReconcile, ReconcileRun(integrations)})
	}
	return out
}

var reconciles *activities.Reconciles

// Pages a run compares per step (an activity that heartbeats, and records
// each page as it goes: the run's progress is in PostgreSQL), and steps per
// workflow run (then it continues as new, its history short). A step is
// long so that a run spends its time on the target's requests, not on
// scheduling steps; its findings are handed off when it ends.
const (
	reconcilePagesPerStep = 100
	reconcileStepsPerRun  = 50
)

// ReconcileRun returns the workflow that runs a reconcile run of any of
// integrations: it opens the run (or resumes one stopped midway), lets the
// integration's step compare pages until none is left, hands what it found
// to the records' own syncs, and closes the run. The report is in
// PostgreSQL (signals reconcile show).
func ReconcileRun(integrations []Integration) func(workflow.Context, api.ReconcileInput) (store.ReconcileRun, error) {
	return func(ctx workflow.Context, in api.ReconcileInput) (store.ReconcileRun, error) {
		var rec *Reconcile
		for _, i := range integrations {
			if i.Spec.Name == in.Integration {
				rec = i.Reconcile
			}
		}
		if rec == nil {
			return store.ReconcileRun{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("integration %q has no reconcile run", in.Integration), string(api.ErrorNotFound), nil)
		}
		local := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
		})
		var begun activities.BeginReconcileResult
		err := workflow.ExecuteLocalActivity(local, reconciles.BeginReconcile, activities.BeginReconcileInput{
			Integration: in.Integration, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, StartedBy: in.StartedBy}).Get(ctx, &begun)
		if err != nil {
			return store.ReconcileRun{}, err
		}
		run := begun.Run
		progress := api.ReconcileProgress{RunID: run.ID, Phase: run.Phase, Compared: run.Compared, Since: run.StartedAt}
		if err := workflow.SetQueryHandler(ctx, api.QueryProgress, func() (api.ReconcileProgress, error) { return progress, nil }); err != nil {
			return run, err
		}
		if begun.Resumed {
			workflow.GetLogger(ctx).Info("resuming a reconcile run stopped midway", "run", run.ID, "phase", run.Phase, "cursor", run.Cursor)
		}
		step := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue: rec.Queue, StartToCloseTimeout: 10 * time.Minute, HeartbeatTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
			Summary:     fmt.Sprintf("Compare records of %s (run %d)", in.Integration, run.ID),
		})
		for steps := 0; ; steps++ {
			if steps == reconcileStepsPerRun {
				return run, workflow.NewContinueAsNewError(ctx, api.WorkflowReconcile, in)
			}
			var r activities.ReconcileStepResult
			if err := workflow.ExecuteActivity(step, rec.Step, activities.ReconcileStepInput{RunID: run.ID, Pages: reconcilePagesPerStep}).Get(ctx, &r); err != nil {
				return run, err
			}
			progress.Phase, progress.Compared = r.Phase, progress.Compared+r.Compared
			for more := true; more; {
				var h activities.HandOffResult
				if err := workflow.ExecuteLocalActivity(local, reconciles.HandOff, run.ID).Get(ctx, &h); err != nil {
					return run, err
				}
				progress.Handed += int64(h.Handed)
				more = h.More
			}
			if r.Done {
				break
			}
		}
		err = workflow.ExecuteLocalActivity(local, reconciles.FinishReconcile, run.ID).Get(ctx, &run)
		return run, err
	}
}
