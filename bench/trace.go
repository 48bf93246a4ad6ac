package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
)

type workflowExecutionInfo = workflowpb.WorkflowExecutionInfo

// actStats sums one activity type's executions, from histories.
type actStats struct {
	Count, Attempts int
	// Queue is from scheduled to the last attempt's start: dispatch, and for
	// a retried activity its earlier attempts and backoff. Run is the last
	// attempt's execution.
	Queue, Run, MaxQueue, MaxRun time.Duration
}

// trace is where workflows' time went, read from their histories.
type trace struct {
	Runs         int
	Start, Close time.Time
	Activities   map[string]*actStats
	// Tasks counts workflow tasks; TaskQueue sums scheduled→started,
	// TaskRun started→completed (local activities run inside it).
	Tasks              int
	TaskQueue, TaskRun time.Duration
	// Markers counts local activities (and other markers).
	Markers int
}

func (t trace) wall() time.Duration {
	if t.Start.IsZero() {
		return 0
	}
	return t.Close.Sub(t.Start)
}

func (t *trace) add(o trace) {
	t.Runs += o.Runs
	if t.Start.IsZero() || (!o.Start.IsZero() && o.Start.Before(t.Start)) {
		t.Start = o.Start
	}
	t.Close = later(t.Close, o.Close)
	if t.Activities == nil {
		t.Activities = map[string]*actStats{}
	}
	for name, a := range o.Activities {
		s := t.Activities[name]
		if s == nil {
			s = &actStats{}
			t.Activities[name] = s
		}
		s.Count += a.Count
		s.Attempts += a.Attempts
		s.Queue += a.Queue
		s.Run += a.Run
		s.MaxQueue = max(s.MaxQueue, a.MaxQueue)
		s.MaxRun = max(s.MaxRun, a.MaxRun)
	}
	t.Tasks += o.Tasks
	t.TaskQueue += o.TaskQueue
	t.TaskRun += o.TaskRun
	t.Markers += o.Markers
}

// traceWorkflow traces every run of a workflow ID (a chain continued as new).
func (b *custBench) traceWorkflow(ctx context.Context, id string) (trace, error) {
	runs, err := b.listWorkflows(ctx, fmt.Sprintf("WorkflowId = '%s'", id))
	if err != nil {
		return trace{}, err
	}
	var t trace
	for _, r := range runs {
		one, err := b.traceRun(ctx, id, r.GetExecution().GetRunId())
		if err != nil {
			return t, err
		}
		t.add(one)
	}
	return t, nil
}

// traceRun reads one run's history.
func (b *custBench) traceRun(ctx context.Context, id, runID string) (trace, error) {
	t := trace{Runs: 1, Activities: map[string]*actStats{}}
	type sched struct {
		name string
		at   time.Time
	}
	type start struct {
		at      time.Time
		attempt int32
	}
	actSched, taskSched := map[int64]sched{}, map[int64]time.Time{}
	actStart, taskStart := map[int64]start{}, map[int64]time.Time{}
	closeAct := func(schedID int64, at time.Time) {
		s, ok := actSched[schedID]
		st, started := actStart[schedID]
		if !ok || !started {
			return
		}
		a := t.Activities[s.name]
		if a == nil {
			a = &actStats{}
			t.Activities[s.name] = a
		}
		q, r := st.at.Sub(s.at), at.Sub(st.at)
		a.Count++
		a.Attempts += int(st.attempt)
		a.Queue += q
		a.Run += r
		a.MaxQueue, a.MaxRun = max(a.MaxQueue, q), max(a.MaxRun, r)
	}
	closeTask := func(schedID int64, at time.Time) {
		s, ok := taskSched[schedID]
		st, started := taskStart[schedID]
		if !ok || !started {
			return
		}
		t.Tasks++
		t.TaskQueue += st.Sub(s)
		t.TaskRun += at.Sub(st)
	}
	iter := b.s.Client.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			return t, fmt.Errorf("customer sync: history of %s: %w", id, err)
		}
		at := e.GetEventTime().AsTime()
		if t.Start.IsZero() {
			t.Start = at
		}
		t.Close = at
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			actSched[e.GetEventId()] = sched{e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), at}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			actStart[a.GetScheduledEventId()] = start{at, a.GetAttempt()}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			closeAct(e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			closeAct(e.GetActivityTaskFailedEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			closeAct(e.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			taskSched[e.GetEventId()] = at
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			taskStart[e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()] = at
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			closeTask(e.GetWorkflowTaskCompletedEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			closeTask(e.GetWorkflowTaskFailedEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			closeTask(e.GetWorkflowTaskTimedOutEventAttributes().GetScheduledEventId(), at)
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			t.Markers++
		}
	}
	return t, nil
}

// summary says where the traced time went, one line per kind of step.
func (t trace) summary(perItem bool) []string {
	if t.Runs == 0 {
		return nil
	}
	var lines []string
	div := time.Duration(1)
	what := fmt.Sprintf("%d run(s), %s from first start to last close", t.Runs, t.wall().Round(time.Millisecond))
	if perItem {
		div = time.Duration(t.Runs)
		what = fmt.Sprintf("%d items, %s from the first's start to the last's close; per item on average:", t.Runs, t.wall().Round(time.Millisecond))
	}
	lines = append(lines, what)
	for _, name := range sortedKeys(t.Activities) {
		a := t.Activities[name]
		retried := ""
		if a.Attempts > a.Count {
			retried = fmt.Sprintf(", %d attempts (%d retries)", a.Attempts, a.Attempts-a.Count)
		}
		if perItem {
			lines = append(lines, fmt.Sprintf("  %s ×%.1f: %s queued (max %s), %s running (max %s)%s", name, float64(a.Count)/float64(t.Runs),
				round(a.Queue/div), round(a.MaxQueue), round(a.Run/div), round(a.MaxRun), retried))
			continue
		}
		lines = append(lines, fmt.Sprintf("  %d %s activities: %s queued in all (max %s), %s running in all (mean %s, max %s)%s", a.Count, name,
			round(a.Queue), round(a.MaxQueue), round(a.Run), round(a.Run/time.Duration(max(a.Count, 1))), round(a.MaxRun), retried))
	}
	if perItem {
		lines = append(lines, fmt.Sprintf("  workflow tasks ×%.1f: %s queued, %s running (%.1f local activities)", float64(t.Tasks)/float64(t.Runs),
			round(t.TaskQueue/div), round(t.TaskRun/div), float64(t.Markers)/float64(t.Runs)))
	} else {
		lines = append(lines, fmt.Sprintf("  %d workflow tasks: %s queued in all, %s running in all (with %d local activities inside)", t.Tasks,
			round(t.TaskQueue), round(t.TaskRun), t.Markers))
	}
	return lines
}

func round(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

func indent(lines []string, prefix string) string {
	if len(lines) == 0 {
		return ""
	}
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}
