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

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows"
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
	if _, _, ok := workflows.SplitItemID(id); !ok {
		return fmt.Errorf("%q is not an item ID: they look like lead-to-crm:<key> (see signals list)", id)
	}
	c, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	state, live, err := workflows.ReadItem(ctx, c, id)
	if errors.Is(err, workflows.ErrNoItem) {
		return fmt.Errorf("no item %s (find IDs with signals list)", id)
	}
	if err != nil {
		return err
	}
	var trail []store.AuditEvent
	var trailErr error
	if s, err := a.store(ctx); err != nil {
		trailErr = err
	} else {
		trail, trailErr = s.AuditTrail(ctx, id)
	}
	if *output == "json" {
		out := map[string]any{"state": state, "audit": trail, "live": live}
		if trailErr != nil {
			out["auditError"] = trailErr.Error()
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printState(a.stdout, state, live, a.now())
	fmt.Fprintln(a.stdout)
	if trailErr != nil {
		fmt.Fprintf(a.stdout, "Audit trail: unavailable (%v)\n", trailErr)
		return nil
	}
	printTrail(a.stdout, trail)
	return nil
}

func printState(w io.Writer, s workflows.ItemState, live bool, now time.Time) {
	fmt.Fprintf(w, "%s  %s", s.WorkflowID, s.Status)
	if s.Exception != nil {
		fmt.Fprintf(w, " (%s)", s.Exception.Kind)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "integration %s, owner %s, started %s (%s ago)\n", s.Integration, s.Owner, s.StartedAt.Format(time.RFC3339), humanDuration(now.Sub(s.StartedAt)))
	if !live {
		fmt.Fprintln(w, "(the item did not answer its status query — is a worker running? — so this is what visibility knows)")
	}
	if s.Step != "" && s.Status == workflows.StatusRunning {
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
				fmt.Fprintf(w, "    %s\n", workflows.DecideCommand(s.WorkflowID, a))
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
			fmt.Fprintf(w, "  %s  %s by %s via %s — %s (%s)\n", d.At.Format(time.RFC3339), d.Action, d.Actor, d.Via, d.Reason, outcome)
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
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Action, change, oneLine(e.Reason))
	}
	_ = tw.Flush()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func joinActions(actions []workflows.Action) string {
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
