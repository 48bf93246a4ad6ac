package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/signalbox-dev/signalbox/api"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
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
	to := fs.String("to", "", "for reassign: the team to hand the item to")
	set := setFlag{}
	fs.Var(set, "set", "for amend: field=value (repeatable)")
	query := fs.String("query", "", "decide every waiting item this visibility query finds")
	yes := fs.Bool("yes", false, "with --query: do not ask for confirmation")
	parallel := fs.Int("parallel", defaultParallel, "with --query: decisions in flight at once")
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
	if (*to != "") != (action == string(api.ActionReassign)) {
		fmt.Fprintln(a.stderr, "--to goes with reassign, and reassign needs it: signals reassign ID --to TEAM --reason \"...\"")
		return errUsage
	}
	if *to != "" {
		*choice = *to
	}
	d := api.Decision{Action: api.Action(action), Actor: a.actor(*as), Reason: *reason,
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
	if a.opKey, err = loadOperatorKey(a.cfg.OperatorKeyFile); err != nil {
		return err
	}
	if k := a.opKey; k != nil && k.operator != "" && k.operator != d.Actor {
		fmt.Fprintf(a.stderr, "refused: the key in SIGNALBOX_OPERATOR_KEY_FILE is %s's, but you decide as %s\n", k.operator, d.Actor)
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
	if _, _, ok := api.SplitItemID(id); !ok {
		return fmt.Errorf("%q is not an item ID: they look like lead-to-crm:<key> (see signals list)", id)
	}
	signed, err := a.sign(ctx, c, id, d)
	if err != nil {
		return err
	}
	outcome, err := sendDecision(ctx, c, id, signed)
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
func sendDecision(ctx context.Context, c client.Client, id string, d api.Decision) (api.DecisionOutcome, error) {
	var outcome api.DecisionOutcome
	// One update ID for every attempt: a decision delivered twice is applied once.
	opts := client.UpdateWorkflowOptions{UpdateID: uuid.NewString(), WorkflowID: id, UpdateName: api.UpdateDecide, Args: []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted}
	var err error
	for attempt := 1; ; attempt++ {
		var handle client.WorkflowUpdateHandle
		handle, err = c.UpdateWorkflow(ctx, opts)
		if err == nil {
			err = handle.Get(ctx, &outcome)
		}
		// The workflow task that carried the update failed, e.g. because the
		// item's alert finished as the decision ended it: the update was not
		// applied, and sending it again is safe.
		var notReady *serviceerror.WorkflowNotReady
		if !errors.As(err, &notReady) || attempt == 5 {
			break
		}
		select {
		case <-ctx.Done():
			return outcome, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	if err == nil {
		return outcome, nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && api.ErrorType(appErr.Type()) == api.ErrorDecisionRefused {
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

// defaultParallel is how many decisions --query keeps in flight. Each one
// waits for a workflow task on the worker, so a few dozen keep a small server
// busy and more only queue there: on 2 cores, 32 in flight decided 87 items/s
// and 128 decided 32/s with some waiting 26 s (docs/benchmarks.md).
const defaultParallel = 32

// tally counts a bulk run's outcomes as they arrive.
type tally struct{ decided, refused, failed int }

func (t tally) done() int { return t.decided + t.refused + t.failed }

// progressLine is the bulk run's progress: "decided 3200/10000, refused 2, failed 0, 410/s".
func progressLine(t tally, total int, elapsed time.Duration) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(t.done()) / elapsed.Seconds()
	}
	return fmt.Sprintf("decided %d/%d, refused %d, failed %d, %.0f/s", t.decided, total, t.refused, t.failed, rate)
}

// bulkResult is one item's outcome in a bulk run; reason is set when refused,
// err when the decision could not be delivered.
type bulkResult struct {
	id, reason string
	err        error
	attempted  bool
}

// decideMany applies d to every running item the query finds, after showing
// the count and asking for confirmation unless yes is set. It reports progress
// on stderr every second and, at the end, every refusal and failure.
func (a *app) decideMany(ctx context.Context, c client.Client, d api.Decision, query string, yes bool, parallel int) error {
	full := fmt.Sprintf("%s IS NOT NULL AND ExecutionStatus = 'Running' AND (%s)", api.AttrIntegrationName.GetName(), query)
	began := time.Now()
	items, _, err := listItems(ctx, c, full, 1_000_000, true)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintln(a.stdout, "no running items match; nothing to do")
		return nil
	}
	fmt.Fprintf(a.stdout, "%d running item(s) match (listed in %s): %s %s as %s.\n", len(items), time.Since(began).Round(time.Millisecond), d.Action, plural(len(items)), d.Actor)
	if !yes {
		fmt.Fprint(a.stdout, "Proceed? [y/N] ")
		answer, _ := bufio.NewReader(a.stdin).ReadString('\n')
		if answer = strings.ToLower(strings.TrimSpace(answer)); answer != "y" && answer != "yes" {
			fmt.Fprintln(a.stdout, "nothing done")
			return nil
		}
	}

	results := make([]bulkResult, len(items))
	var mu sync.Mutex
	var counts tally
	began = time.Now()
	stopProgress := a.everySecond(func() {
		mu.Lock()
		line := progressLine(counts, len(items), time.Since(began))
		mu.Unlock()
		fmt.Fprintln(a.stderr, line)
	})
	eachParallel(ctx, len(items), parallel, func(i int) {
		r := bulkResult{id: items[i].WorkflowID, attempted: true}
		signed, err := a.sign(ctx, c, r.id, d)
		if err == nil {
			_, err = sendDecision(ctx, c, r.id, signed)
		}
		var refused *refusedError
		mu.Lock()
		switch {
		case err == nil:
			counts.decided++
		case errors.As(err, &refused):
			r.reason = refused.reason
			counts.refused++
		default:
			r.err = err
			counts.failed++
		}
		mu.Unlock()
		results[i] = r
	})
	stopProgress()
	fmt.Fprintf(a.stderr, "%s, in %s\n", progressLine(counts, len(items), time.Since(began)), time.Since(began).Round(100*time.Millisecond))
	return a.reportBulk(results)
}

// reportBulk prints how many were decided, then every refused item under its
// reason and every failure, and returns errRefused if any was not decided.
func (a *app) reportBulk(results []bulkResult) error {
	decided, skipped := 0, 0
	refusals := map[string][]string{}
	var failures []string
	for _, r := range results {
		switch {
		case !r.attempted:
			skipped++
		case r.err != nil:
			failures = append(failures, fmt.Sprintf("%s: %v", r.id, r.err))
		case r.reason != "":
			refusals[r.reason] = append(refusals[r.reason], r.id)
		default:
			decided++
		}
	}
	fmt.Fprintf(a.stdout, "done: %d\n", decided)
	for _, reason := range slices.Sorted(maps.Keys(refusals)) {
		ids := refusals[reason]
		slices.Sort(ids)
		fmt.Fprintf(a.stdout, "refused: %d — %s\n", len(ids), reason)
		for _, id := range ids {
			fmt.Fprintf(a.stdout, "  %s\n", id)
		}
	}
	slices.Sort(failures)
	for _, f := range failures {
		fmt.Fprintf(a.stdout, "failed: %s\n", f)
	}
	if skipped > 0 {
		fmt.Fprintf(a.stdout, "not attempted (interrupted): %d\n", skipped)
	}
	if decided < len(results) {
		return errRefused
	}
	return nil
}

// everySecond calls fn each second until the returned function is called.
func (a *app) everySecond(fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				fn()
			case <-done:
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func plural(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}
