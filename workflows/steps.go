package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
)

var (
	crmActivities  *activities.CRM
	chatActivities *activities.Chat
)

// heartbeatTimeout is how soon a worker that dies mid-call is noticed; the
// activities heartbeat at half of it while a call runs.
const heartbeatTimeout = 10 * time.Second

// defaultTarget applies to a target the policy does not name.
var defaultTarget = activities.TargetPolicy{Timeout: 10 * time.Second, RetryWindow: 10 * time.Minute}

// targetCtx runs activities on the target's task queue, where the worker caps
// their rate, retrying within the target's retry window.
func (it *item) targetCtx(ctx workflow.Context, target, summary string) workflow.Context {
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
func (it *item) Do(ctx workflow.Context, step string, fn func(workflow.Context) error) error {
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
		var end ended
		var again restart
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
func (it *item) Notify(ctx workflow.Context, step, team, what, text, key string) error {
	return it.Do(ctx, step, func(ctx workflow.Context) error {
		in := activities.NotifyInput{Team: team, WorkflowID: it.state.WorkflowID, Text: text, Key: key}
		return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueChat, "Tell #"+team+" "+what), chatActivities.Notify, in).Get(ctx, nil)
	})
}

// errorType is the type of the ApplicationError in err's chain, if any.
func errorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// stepException maps a failed step to the exception it raises. Activities
// classified the error once; this only reads the type they chose.
func stepException(step string, err error) (ExceptionKind, string, map[string]string) {
	details := map[string]string{"step": step}
	kind := TargetUnavailable
	msg := err.Error()
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		msg = appErr.Message()
		switch appErr.Type() {
		case activities.ErrAuthFailed:
			kind = AuthFailed
		case activities.ErrTargetRejected:
			kind = TargetRejected
		case activities.ErrConflict:
			kind = Conflict
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
	if errors.As(err, &timeoutErr) && kind == TargetUnavailable {
		details["timeout"] = timeoutErr.TimeoutType().String()
	}
	details["error"] = msg
	return kind, fmt.Sprintf("%s failed: %s", step, msg), details
}

// renderDetails publishes the item's state as the UI's current details.
func (it *item) renderDetails(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, it.details())
}

func (it *item) details() string {
	s := it.state
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", s.Status)
	switch {
	case s.Status.Waiting() && s.Exception != nil:
		e := s.Exception
		fmt.Fprintf(&b, "**%s**: %s\n\n", e.Kind, e.Summary)
		fmt.Fprintf(&b, "- waiting since %s for a decision by team **%s**\n", e.Since.Format(time.RFC3339), e.Deciders)
		fmt.Fprintf(&b, "- allowed decisions: %s\n", joinActions(e.Decisions))
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
			b.WriteString(DecideCommand(s.WorkflowID, a) + "\n")
		}
		b.WriteString("```\n\nor send signal `decision` (Temporal UI: Send a Signal; or `temporal workflow signal`):\n\n```\n")
		fmt.Fprintf(&b, "temporal workflow signal --workflow-id '%s' --name %s --input '%s'\n", s.WorkflowID, SignalDecision, signalPayload(e.Decisions[0], e.Choices))
		b.WriteString("```\n")
	case s.Status == StatusRunning:
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

// DecideCommand is the operator CLI command for an action on an item.
func DecideCommand(workflowID string, a Action) string {
	extra := ""
	switch a {
	case ActionAmend:
		extra = " --set field=value"
	case ActionResolve:
		extra = " --external-ref <where it was fixed>"
	}
	return fmt.Sprintf("signals %s '%s'%s --reason \"<why>\"", a, workflowID, extra)
}

// signalPayload is an example decision payload for the temporal CLI and the UI.
func signalPayload(a Action, choices []Choice) string {
	choice := ""
	if a == ActionApprove && len(choices) > 0 {
		choice = fmt.Sprintf(`,"choice":"%s"`, choices[0].Name)
	}
	return fmt.Sprintf(`{"action":"%s","actor":"<you>","reason":"<why>"%s}`, a, choice)
}
