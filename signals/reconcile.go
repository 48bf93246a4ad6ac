package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

const reconcileUsage = `usage: signals reconcile INTEGRATION [--now [--no-wait]]
         the nightly run's schedule and the last report; --now runs it now and prints its report
       signals reconcile show [--run ID | --integration I] [-o table|json]
         a run's report: counts per class, then the differences, oldest first`

// reconcile starts an integration's reconcile run, or shows its schedule and
// last report, or (show) a run's report.
func (a *app) reconcile(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(a.stderr, reconcileUsage)
		return errUsage
	}
	if args[0] == "show" {
		return a.reconcileShow(ctx, args[1:])
	}
	fs := flag.NewFlagSet("signals reconcile", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	now := fs.Bool("now", false, "run it now (or follow the run already going)")
	noWait := fs.Bool("no-wait", false, "with --now: start it and return")
	name := args[0]
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(a.stderr, reconcileUsage)
		return errUsage
	}
	spec, err := api.SpecByName(name)
	if err != nil {
		fmt.Fprintln(a.stderr, "signals reconcile:", err)
		return errUsage
	}
	if spec.Reconciles == "" {
		var with []string
		for _, s := range api.Specs() {
			if s.Reconciles != "" {
				with = append(with, s.Name)
			}
		}
		fmt.Fprintf(a.stderr, "signals reconcile: %s has no reconcile run of its own (signals describe %s); these have: %s\n", name, name, strings.Join(with, ", "))
		return errUsage
	}
	c, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	if !*now {
		if d, err := c.ScheduleClient().GetHandle(ctx, api.ReconcileScheduleID(name)).Describe(ctx); err == nil && len(d.Info.NextActionTimes) > 0 {
			fmt.Fprintf(a.stdout, "next run %s (schedule %s)\n", d.Info.NextActionTimes[0].Local().Format(time.DateTime), api.ReconcileScheduleID(name))
		} else {
			fmt.Fprintf(a.stdout, "no schedule %s yet: the workers create it when they start\n", api.ReconcileScheduleID(name))
		}
		run, err := st.LatestReconcileRun(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			fmt.Fprintf(a.stdout, "no run yet: signals reconcile %s --now\n", name)
			return nil
		}
		if err != nil {
			return err
		}
		return a.printReport(ctx, st, run.ID, "table")
	}
	wf, err := a.startOrFollow(ctx, c, st, name)
	if err != nil {
		return err
	}
	if *noWait {
		return nil
	}
	var run store.ReconcileRun
	err = api.Follow(ctx, wf, 2*time.Second, &run, func() {
		// Each page is recorded as it is compared: PostgreSQL knows.
		if r, err := st.LatestReconcileRun(ctx, name); err == nil && r.FinishedAt == nil {
			fmt.Fprintf(a.stderr, "run %d: %s phase, %d records compared, %d requests to the target\n", r.ID, r.Phase, r.Compared, r.Requests)
		}
	})
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("stopped following; the run goes on in Temporal (workflow %s): signals reconcile show --integration %s", wf.GetID(), name)
	case err != nil:
		return fmt.Errorf("the reconcile run of %s failed: %w (signals reconcile %s --now resumes it)", name, err, name)
	}
	return a.printReport(ctx, st, run.ID, "table")
}

// startOrFollow follows the workflow working the integration's open run
// (the nightly one, say), or starts a run.
func (a *app) startOrFollow(ctx context.Context, c client.Client, st *store.Store, name string) (client.WorkflowRun, error) {
	if open, err := st.LatestReconcileRun(ctx, name); err == nil && open.FinishedAt == nil {
		d, err := c.DescribeWorkflowExecution(ctx, open.WorkflowID, "")
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			fmt.Fprintf(a.stderr, "reconcile run %d of %s is going (workflow %s): following it\n", open.ID, name, open.WorkflowID)
			return c.GetWorkflow(ctx, open.WorkflowID, ""), nil
		}
	}
	wf, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: api.ReconcileID(name), TaskQueue: api.TaskQueueIntegrations,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:            "Reconcile " + name + " (started by " + a.actor("") + ")",
	}, api.WorkflowReconcile, api.ReconcileInput{Integration: name, StartedBy: a.actor("")})
	if err != nil {
		return nil, fmt.Errorf("start the reconcile run of %s: %w", name, err)
	}
	fmt.Fprintf(a.stderr, "reconcile run of %s: workflow %s (run %s)\n", name, wf.GetID(), wf.GetRunID())
	return wf, nil
}

func (a *app) reconcileShow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("signals reconcile show", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	runID := fs.Int64("run", 0, "the run's ID (default: the latest)")
	integration := fs.String("integration", "", "the latest run of this integration")
	output := fs.String("o", "table", "table or json")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || (*output != "table" && *output != "json") {
		fmt.Fprintln(a.stderr, reconcileUsage)
		return errUsage
	}
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	if *runID == 0 {
		run, err := st.LatestReconcileRun(ctx, *integration)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no reconcile run yet: signals reconcile INTEGRATION --now starts one")
		}
		if err != nil {
			return err
		}
		*runID = run.ID
	}
	return a.printReport(ctx, st, *runID, *output)
}

func (a *app) printReport(ctx context.Context, st *store.Store, id int64, output string) error {
	rep, err := st.GetReconcileReport(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no reconcile run %d: signals reconcile show lists the latest", id)
	}
	if err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	writeReport(a.stdout, rep)
	return nil
}

// writeReport prints a report as tables: the run, counts per class, then
// the differences, oldest first.
func writeReport(w io.Writer, rep store.ReconcileReport) {
	r := rep.Run
	state := "finished " + r.FinishedAtString()
	if r.FinishedAt == nil {
		state = fmt.Sprintf("running or stopped (at %s %q); signals reconcile %s --now resumes it", r.Phase, r.Cursor, r.Integration)
	}
	fmt.Fprintf(w, "reconcile run %d of %s, started %s by %s, %s\n", r.ID, r.Integration, r.StartedAt.Local().Format(time.DateTime), r.StartedBy, state)
	fmt.Fprintf(w, "records compared: %d; requests to the target: %d\n\n", r.Compared, r.Requests)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tRECORDS\tMEANING")
	for _, c := range api.Classes {
		if n, ok := rep.Counts[c.Name]; ok && (n > 0 || c.Name == api.ClassInSync) {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Name, n, c.Meaning)
		}
	}
	tw.Flush()
	if len(rep.Differences) == 0 {
		fmt.Fprintln(w, "\nno differences")
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FOUND\tRECORD\tTARGET\tCLASS\tFIELD\tOWNER\tSOURCE\tTARGET VALUE\tLAST SYNCED\tACTION")
	for _, d := range rep.Differences {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.FoundAt.Local().Format(time.TimeOnly), dash(d.SourceKey), dash(d.TargetID), d.Class,
			dash(d.Field), dash(d.Owner), value(d.Source), value(d.Target), value(d.Baseline), d.Action)
	}
	tw.Flush()
}

// value quotes a value so a blank shows, and a missing one is "—".
func value(v *string) string {
	if v == nil {
		return "—"
	}
	s := *v
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return fmt.Sprintf("%q", s)
}
