package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// parseArgs parses flags that may come before or after the positional ID.
func parseArgs(fs *flag.FlagSet, args []string) (positional []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func (a *app) show(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("signals show", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	output := fs.String("o", "text", "output: text or json")
	ids, err := parseArgs(fs, args)
	if err != nil {
		return errUsage
	}
	if len(ids) != 1 || (*output != "text" && *output != "json") {
		fmt.Fprintln(a.stderr, "usage: signals show ID [-o text|json]")
		return errUsage
	}
	id := ids[0]
	if _, _, ok := api.SplitItemID(id); !ok {
		return fmt.Errorf("%q is not an item ID: they look like lead-to-crm:<key> (see signals list)", id)
	}
	c, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	state, live, err := api.ReadItem(ctx, c, id)
	if errors.Is(err, api.ErrNoItem) {
		return a.showTrailOnly(ctx, id, *output)
	}
	if err != nil {
		return err
	}
	run := describeRun(ctx, c, id)
	note := runNote(state, run)
	var trail []store.AuditEvent
	var trailErr error
	if s, err := a.store(ctx); err != nil {
		trailErr = err
	} else {
		trail, trailErr = s.AuditTrail(ctx, id)
	}
	if *output == "json" {
		out := map[string]any{"state": state, "audit": trail, "live": live, "execution": run.execution}
		if note != "" {
			out["note"] = note
		}
		if trailErr != nil {
			out["auditError"] = trailErr.Error()
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printState(a.stdout, state, live, a.now())
	if note != "" {
		fmt.Fprintf(a.stdout, "\n%s\n", note)
	}
	fmt.Fprintln(a.stdout)
	if trailErr != nil {
		fmt.Fprintf(a.stdout, "Audit trail: unavailable (%v)\n", trailErr)
		return nil
	}
	printTrail(a.stdout, trail)
	return nil
}

// showTrailOnly shows a record that Temporal has no workflow for, from its
// audit trail: one synced in a batch, or one whose history Temporal no
// longer keeps.
func (a *app) showTrailOnly(ctx context.Context, id, output string) error {
	s, err := a.store(ctx)
	if err != nil {
		return err
	}
	trail, err := s.AuditTrail(ctx, id)
	if err != nil {
		return err
	}
	if len(trail) == 0 {
		return fmt.Errorf("no item %s (find IDs with signals list)", id)
	}
	if output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"audit": trail, "live": false, "note": "no workflow: only the audit trail"})
	}
	last := trail[len(trail)-1]
	fmt.Fprintf(a.stdout, "%s: no workflow in Temporal (synced without one, in a batch, or its history has expired)\n", id)
	fmt.Fprintf(a.stdout, "last outcome: %s %s, %s\n\n", last.Action, last.ToStatus, last.At.Local().Format(time.DateTime))
	printTrail(a.stdout, trail)
	return nil
}

// runInfo is what Temporal says about an item's latest run.
type runInfo struct {
	execution string // Running, Terminated, ...; empty when unknown
	// taskAttempt is the attempt of its pending workflow task, 0 if none.
	taskAttempt int32
}

func describeRun(ctx context.Context, c client.Client, id string) runInfo {
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return runInfo{}
	}
	return runInfo{
		execution:   api.VisibleItemFrom(desc.RawResponse.GetWorkflowExecutionInfo()).Execution,
		taskAttempt: desc.RawResponse.GetPendingWorkflowTask().GetAttempt(),
	}
}

// runNote explains an item that cannot move on by itself — its run ended
// before the item finished, or its workflow task keeps failing — and what an
// operator can do; it is empty otherwise.
func runNote(s api.ItemState, run runInfo) string {
	again := fmt.Sprintf("start it again from its source (%s, key %s): the new run re-syncs it — it updates the target, never duplicates it — and raises the exception again if it still applies",
		sourceOf(s.Integration), s.SourceKey)
	switch {
	case run.execution == executionRunning && run.taskAttempt >= 3:
		return fmt.Sprintf("Stuck: its workflow task has failed %d times in a row (a bug, or a code change that breaks replay), so the item makes no progress and decisions wait.\n"+
			"What to do: see the worker's log and the item's history in the Temporal UI; deploy a fixed worker and it resumes where it stopped. If it cannot be fixed, terminate it and %s.",
			run.taskAttempt-1, again)
	case stranded(api.VisibleItem{Status: s.Status, Execution: run.execution}):
		return fmt.Sprintf("Stranded: its run %s while the item was %s, so nothing will move it on and no decision can reach it.\n"+
			"What to do: %s. The audit trail keeps what happened so far.",
			howRunEnded(run.execution), s.Status, again)
	}
	return ""
}

func howRunEnded(execution string) string {
	switch execution {
	case "Terminated":
		return "was terminated (from the Temporal UI or CLI)"
	case "Failed":
		return "failed (its history in the Temporal UI holds the error)"
	case "TimedOut":
		return "timed out (it ran past its workflow execution timeout)"
	case "Canceled":
		return "was cancelled in Temporal before it could record Cancelled"
	default:
		return "ended (" + executionWords(execution) + ") without recording a final status — a bug; please report it"
	}
}

func sourceOf(integration string) string {
	if spec, err := api.SpecByName(integration); err == nil && spec.Source != "" {
		return spec.Source
	}
	return "its source"
}

func printState(w io.Writer, s api.ItemState, live bool, now time.Time) {
	fmt.Fprintf(w, "%s  %s", s.WorkflowID, s.Status)
	if s.Exception != nil {
		fmt.Fprintf(w, " (%s)", s.Exception.Kind)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "integration %s, owner %s, started %s (%s ago)\n", s.Integration, s.Owner, s.StartedAt.Format(time.RFC3339), humanDuration(now.Sub(s.StartedAt)))
	if !live {
		fmt.Fprintln(w, "(the item did not answer its status query — is a worker running? — so this is what visibility knows)")
	}
	if s.Step != "" && s.Status == api.StatusRunning {
		fmt.Fprintf(w, "step: %s\n", s.Step)
	}
	if e := s.Exception; e != nil {
		fmt.Fprintf(w, "\nException %s: %s\n", e.Kind, e.Summary)
		fmt.Fprintf(w, "  waiting since %s (%s) for team %s\n", e.Since.Format(time.RFC3339), humanDuration(now.Sub(e.Since)), e.Deciders)
		for _, k := range slices.Sorted(maps.Keys(e.Details)) {
			fmt.Fprintf(w, "  %s: %s\n", k, e.Details[k])
		}
		if !e.Deadline.IsZero() {
			fmt.Fprintf(w, "  deadline %s, then: %s\n", e.Deadline.Format(time.RFC3339), e.AtDeadline)
		}
		if len(e.Decisions) > 0 {
			fmt.Fprintf(w, "  allowed decisions: %s\n", joinActions(e.Decisions))
			for _, c := range e.Choices {
				fmt.Fprintf(w, "    --choice %s: %s\n", c.Name, c.Description)
			}
			fmt.Fprintln(w, "  decide:")
			for _, a := range e.Decisions {
				fmt.Fprintf(w, "    %s\n", api.DecideCommand(s.WorkflowID, a))
			}
		}
	}
	if len(s.ExternalIDs) > 0 {
		fmt.Fprintf(w, "external IDs: %s\n", joinMap(s.ExternalIDs))
	}
	if len(s.Attempts) > 0 {
		counts := map[string]string{}
		for k, v := range s.Attempts {
			counts[k] = fmt.Sprint(v)
		}
		fmt.Fprintf(w, "step runs: %s\n", joinMap(counts))
	}
	if len(s.Decisions) > 0 {
		fmt.Fprintln(w, "\nRecent decisions:")
		for _, d := range s.Decisions {
			outcome := "applied"
			if !d.Applied {
				outcome = "refused: " + d.Refusal
			}
			fmt.Fprintf(w, "  %s  %s by %s via %s — %s (%s)\n", d.At.Format(time.RFC3339), printable(string(d.Action)),
				withIdentity(printable(d.Actor), d.Identity), d.Via, oneLine(d.Reason), oneLine(outcome))
		}
	}
}

func printTrail(w io.Writer, trail []store.AuditEvent) {
	if len(trail) == 0 {
		fmt.Fprintln(w, "Audit trail: no rows yet")
		return
	}
	fmt.Fprintln(w, "Audit trail:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tACTOR\tACTION\tSTATUS\tREASON")
	for _, e := range trail {
		change := e.ToStatus
		if e.FromStatus != "" && e.FromStatus != e.ToStatus {
			change = e.FromStatus + " → " + e.ToStatus
		}
		identity, _ := e.Details["identity"].(string)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), withIdentity(printable(e.Actor), identity), printable(e.Action), change, oneLine(e.Reason))
	}
	_ = tw.Flush()
}

// withIdentity marks an actor "verified" (the decision carried their
// signature) or "asserted" (their name was taken as given).
func withIdentity(actor, identity string) string {
	if identity == "" {
		return actor
	}
	return actor + " (" + identity + ")"
}

// oneLine is free text (a reason) on one line of at most 120 bytes, with
// no control characters: text someone typed must not pass for another row.
func oneLine(s string) string {
	s = printable(strings.ReplaceAll(s, "\n", " "))
	if len(s) > 120 {
		s = strings.ToValidUTF8(s[:117], "") + "..."
	}
	return s
}

// printable replaces control characters (line breaks, tabs, terminal
// escapes) with '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func joinActions(actions []api.Action) string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

func joinMap(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}
