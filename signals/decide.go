package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/workflows"
)

// setFlag collects repeated --set field=value flags.
type setFlag map[string]string

func (s setFlag) String() string { return joinMap(s) }

func (s setFlag) Set(v string) error {
	field, value, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(field) == "" {
		return fmt.Errorf("want field=value, got %q", v)
	}
	if _, dup := s[field]; dup {
		return fmt.Errorf("field %s is set twice", field)
	}
	s[field] = value
	return nil
}

func (a *app) decide(ctx context.Context, action string, args []string) error {
	fs := flag.NewFlagSet("signals "+action, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	reason := fs.String("reason", "", "why (required; goes to the audit trail)")
	as := fs.String("as", "", "decide as this operator (default $SIGNALBOX_OPERATOR, else your OS user)")
	choice := fs.String("choice", "", "the option to approve with, where the exception offers choices")
	externalRef := fs.String("external-ref", "", "for resolve: where the item was fixed by hand")
	set := setFlag{}
	fs.Var(set, "set", "for amend: field=value (repeatable)")
	query := fs.String("query", "", "decide every waiting item this visibility query finds")
	yes := fs.Bool("yes", false, "with --query: do not ask for confirmation")
	parallel := fs.Int("parallel", 16, "with --query: decisions in flight at once")
	ids, err := parseArgs(fs, args)
	if err != nil {
		return errUsage
	}
	if (len(ids) == 1) == (*query != "") || len(ids) > 1 {
		fmt.Fprintf(a.stderr, "usage: signals %s ID --reason \"...\"   or   signals %s --query '...' --reason \"...\"\n", action, action)
		return errUsage
	}
	if *parallel < 1 {
		fmt.Fprintln(a.stderr, "--parallel must be at least 1")
		return errUsage
	}
	d := workflows.Decision{Action: workflows.Action(action), Actor: a.actor(*as), Reason: *reason,
		Choice: *choice, ExternalRef: *externalRef}
	if len(set) > 0 {
		d.Set = set
	}
	// The item checks everything again; checking the payload here saves a round
	// trip and gives the same message.
	if err := d.Complete(); err != nil {
		fmt.Fprintf(a.stderr, "refused: %s\n", message(err))
		return errRefused
	}
	c, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	if *query != "" {
		return a.decideMany(ctx, c, d, *query, *yes, *parallel)
	}
	id := ids[0]
	if _, _, ok := workflows.SplitItemID(id); !ok {
		return fmt.Errorf("%q is not an item ID: they look like lead-to-crm:<key> (see signals list)", id)
	}
	outcome, err := sendDecision(ctx, c, id, d)
	if err != nil {
		var refused *refusedError
		if errors.As(err, &refused) {
			fmt.Fprintf(a.stderr, "refused: %s\n", refused.reason)
			return errRefused
		}
		return err
	}
	fmt.Fprintf(a.stdout, "%s: %s\n", id, outcome.Message)
	return nil
}

// refusedError is a decision the item refused.
type refusedError struct{ reason string }

func (e *refusedError) Error() string { return "refused: " + e.reason }

// sendDecision delivers d through the decide update and waits for its outcome.
func sendDecision(ctx context.Context, c client.Client, id string, d workflows.Decision) (workflows.DecisionOutcome, error) {
	var outcome workflows.DecisionOutcome
	handle, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: workflows.UpdateDecide, Args: []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(ctx, &outcome)
	}
	if err == nil {
		return outcome, nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == workflows.ErrDecisionRefused {
		return outcome, &refusedError{reason: appErr.Message()}
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		// Temporal answers NotFound both for unknown IDs and for ended items.
		return outcome, &refusedError{reason: fmt.Sprintf("%s is not waiting for a decision: it has ended or does not exist (see signals show %s)", id, id)}
	}
	return outcome, fmt.Errorf("decide %s: %w", id, err)
}

// message is an error's text without the SDK's decoration.
func message(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// decideMany applies d to every running item the query finds, after showing
// the count and asking for confirmation unless yes is set.
func (a *app) decideMany(ctx context.Context, c client.Client, d workflows.Decision, query string, yes bool, parallel int) error {
	full := fmt.Sprintf("%s IS NOT NULL AND ExecutionStatus = 'Running' AND (%s)", workflows.AttrIntegrationName.GetName(), query)
	items, _, err := listItems(ctx, c, full, 1_000_000)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintln(a.stdout, "no running items match; nothing to do")
		return nil
	}
	fmt.Fprintf(a.stdout, "%d running item(s) match: %s %s as %s.\n", len(items), d.Action, plural(len(items)), d.Actor)
	if !yes {
		fmt.Fprint(a.stdout, "Proceed? [y/N] ")
		answer, _ := bufio.NewReader(a.stdin).ReadString('\n')
		if answer = strings.ToLower(strings.TrimSpace(answer)); answer != "y" && answer != "yes" {
			fmt.Fprintln(a.stdout, "nothing done")
			return nil
		}
	}
	type result struct {
		id      string
		outcome workflows.DecisionOutcome
		err     error
	}
	results := make([]result, len(items))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, len(items)) {
		wg.Go(func() {
			for i := range work {
				id := items[i].WorkflowID
				o, err := sendDecision(ctx, c, id, d)
				results[i] = result{id: id, outcome: o, err: err}
			}
		})
	}
	for i := range items {
		work <- i
	}
	close(work)
	wg.Wait()

	done, refusals := 0, map[string][]string{}
	var failures []string
	for _, r := range results {
		var refused *refusedError
		switch {
		case r.err == nil:
			done++
		case errors.As(r.err, &refused):
			refusals[refused.reason] = append(refusals[refused.reason], r.id)
		default:
			failures = append(failures, fmt.Sprintf("%s: %v", r.id, r.err))
		}
	}
	fmt.Fprintf(a.stdout, "done: %d\n", done)
	reasons := make([]string, 0, len(refusals))
	for reason := range refusals {
		reasons = append(reasons, reason)
	}
	sort.Strings(reasons)
	refusedCount := 0
	for _, reason := range reasons {
		ids := refusals[reason]
		refusedCount += len(ids)
		sort.Strings(ids)
		fmt.Fprintf(a.stdout, "refused: %d — %s\n", len(ids), reason)
		for _, id := range ids[:min(len(ids), 10)] {
			fmt.Fprintf(a.stdout, "  %s\n", id)
		}
		if len(ids) > 10 {
			fmt.Fprintf(a.stdout, "  … and %d more\n", len(ids)-10)
		}
	}
	sort.Strings(failures)
	for _, f := range failures {
		fmt.Fprintf(a.stdout, "failed: %s\n", f)
	}
	if refusedCount > 0 || len(failures) > 0 {
		return errRefused
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}
