package spine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/api"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
)

// heartbeatTimeout is how soon a worker that dies mid-call is noticed; the
// activities heartbeat at half of it while a call runs.
const heartbeatTimeout = 10 * time.Second

// defaultTarget applies to a target the policy does not name.
var defaultTarget = activities.TargetPolicy{Timeout: 10 * time.Second, RetryWindow: 10 * time.Minute}

// targetCtx runs activities on the target's task queue, where the worker caps
// their rate, retrying within the target's retry window.
func (it *Item) targetCtx(ctx workflow.Context, target, summary string) workflow.Context {
	p, ok := it.policy.Targets[target]
	if !ok {
		p = defaultTarget
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: target,
		// One attempt makes one request, plus PostgreSQL.
		StartToCloseTimeout:    min(p.Timeout+5*time.Second, p.RetryWindow),
		ScheduleToCloseTimeout: p.RetryWindow,
		HeartbeatTimeout:       heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
		Summary: summary,
	})
}

// Do runs one step of the integration. When the step fails for good it raises
// the matching exception and, on retry, approve or amend, runs the step again
// (fn reads the amended input); reject, resolve and cancel end the item.
func (it *Item) Do(ctx workflow.Context, step string, fn func(workflow.Context) error) error {
	for {
		it.state.Step = step
		it.state.Attempts[step]++
		it.renderDetails(ctx)
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if temporal.IsCanceledError(err) {
			return err
		}
		var end Ended
		var again Restart
		if errors.As(err, &end) || errors.As(err, &again) {
			return err
		}
		kind, summary, details := stepException(step, err)
		if _, err := it.Raise(ctx, kind, summary, details); err != nil {
			return err
		}
	}
}

// Notify posts text to a team's channel as a step of the item, once per key
// however often the step or the item runs; what says what it tells, for the
// activity's summary.
func (it *Item) Notify(ctx workflow.Context, step, team, what, text, key string) error {
	return it.Do(ctx, step, func(ctx workflow.Context) error {
		in := activities.NotifyInput{Team: team, WorkflowID: it.state.WorkflowID, Text: text, Key: key}
		return it.Call(ctx, "Tell #"+team+" "+what, chatActivities.Notify, in, nil)
	})
}

// stepException maps a failed step to the exception it raises. Activities
// classified the error once; this only reads the type they chose.
func stepException(step string, err error) (api.ExceptionKind, string, map[string]string) {
	details := map[string]string{"step": step}
	kind := api.TargetUnavailable
	msg := err.Error()
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		msg = appErr.Message()
		switch api.ErrorType(appErr.Type()) {
		case api.ErrorAuthFailed:
			kind = api.AuthFailed
		case api.ErrorTargetRejected:
			kind = api.TargetRejected
		case api.ErrorConflict:
			kind = api.Conflict
		}
		var r activities.Rejection
		if appErr.HasDetails() && appErr.Details(&r) == nil {
			details["target"] = r.Target
			details["status"] = fmt.Sprint(r.Status)
			if r.Code != "" {
				details["code"] = r.Code
			}
			if r.Param != "" {
				details["parameter"] = r.Param
			}
		}
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) && kind == api.TargetUnavailable {
		details["timeout"] = timeoutErr.TimeoutType().String()
	}
	details["error"] = msg
	return kind, fmt.Sprintf("%s failed: %s", step, msg), details
}

// renderDetails publishes the item's state as the UI's current details.
func (it *Item) renderDetails(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, it.details())
}

func (it *Item) details() string {
	s := it.state
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", s.Status)
	switch {
	case s.Status.Waiting() && s.Exception != nil:
		e := s.Exception
		fmt.Fprintf(&b, "**%s**: %s\n\n", e.Kind, e.Summary)
		fmt.Fprintf(&b, "- waiting since %s for a decision by team **%s**\n", e.Since.Format(time.RFC3339), e.Deciders)
		fmt.Fprintf(&b, "- allowed decisions: %s\n", api.JoinActions(e.Decisions))
		for _, c := range e.Choices {
			fmt.Fprintf(&b, "- choice `%s`: %s\n", c.Name, c.Description)
		}
		if !e.Deadline.IsZero() {
			fmt.Fprintf(&b, "- at %s without a decision: %s\n", e.Deadline.Format(time.RFC3339), e.AtDeadline)
		}
		if len(e.Details) > 0 {
			b.WriteString("\n**Details**\n\n")
			for _, k := range slices.Sorted(maps.Keys(e.Details)) {
				fmt.Fprintf(&b, "- %s: %s\n", k, e.Details[k])
			}
		}
		b.WriteString("\n**Decide** with the operator CLI:\n\n```\n")
		for _, a := range e.Decisions {
			b.WriteString(api.DecideCommand(s.WorkflowID, a) + "\n")
		}
		b.WriteString("```\n\nor send signal `decision` (Temporal UI: Send a Signal; or `temporal workflow signal`):\n\n```\n")
		fmt.Fprintf(&b, "temporal workflow signal --workflow-id '%s' --name %s --input '%s'\n", s.WorkflowID, api.SignalDecision, signalPayload(e.Decisions[0], e.Choices))
		b.WriteString("```\n")
	case s.Status == api.StatusRunning:
		if s.Step != "" {
			fmt.Fprintf(&b, "Step **%s** (run %d).\n", s.Step, s.Attempts[s.Step])
		}
	}
	if len(s.ExternalIDs) > 0 {
		b.WriteString("\n**External IDs**\n\n")
		for _, k := range slices.Sorted(maps.Keys(s.ExternalIDs)) {
			fmt.Fprintf(&b, "- %s: %s\n", k, s.ExternalIDs[k])
		}
	}
	return b.String()
}

// signalPayload is an example decision payload for the temporal CLI and the UI.
func signalPayload(a api.Action, choices []api.Choice) string {
	choice := ""
	if a == api.ActionApprove && len(choices) > 0 {
		choice = fmt.Sprintf(`,"choice":"%s"`, choices[0].Name)
	}
	return fmt.Sprintf(`{"action":"%s","actor":"<you>","reason":"<why>"%s}`, a, choice)
}
