package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/codec"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/store"
)

// cancelReason is what a running item is cancelled with before its
// executions are deleted.
const cancelReason = "personal data erased on request"

// goneWait is how long an erasure waits to see its deletions done.
const goneWait = 3 * time.Second

// erasureIntegration names, in the audit trail, the rows of erasures
// themselves (workflow ID "erasure:<id>": signals show erasure:<id>).
const erasureIntegration = "erasure"

// erase removes or masks the personal data keyed to an email address:
// everywhere in PostgreSQL (store.ErasurePlan), and in Temporal by deleting
// every execution whose history holds it, once the running items among them
// were cancelled. The actor must be an operator of every team that owns an
// integration holding the data.
func (a *app) erase(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("signals erase", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	email := fs.String("email", "", "the person's email address (matched in any case)")
	as := fs.String("as", "", "erase as this operator (default $SIGNALBOX_OPERATOR, else your OS user)")
	reason := fs.String("reason", "", "why (required; goes to the audit trail, the address masked)")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	dryRun := fs.Bool("dry-run", false, "only report what would be erased")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for items under way to stop, and for cancelled ones to end")
	const usageLine = `usage: signals erase --email ADDRESS --reason "why" [--as ACTOR] [--yes] [--dry-run] [--wait 2m]`
	rest, err := parseArgs(fs, args)
	if err != nil {
		return errUsage
	}
	problem := ""
	switch addr, perr := mail.ParseAddress(strings.TrimSpace(*email)); {
	case len(rest) > 0:
		problem = "signals erase takes no arguments besides its flags"
	case strings.TrimSpace(*email) == "":
		problem = "--email is required"
	case perr != nil || addr.Address != strings.TrimSpace(*email):
		problem = "--email must be one address, like name@example.com"
	case !*dryRun && strings.TrimSpace(*reason) == "":
		problem = "--reason is required: it goes to the audit trail"
	case len(*reason) > api.MaxReasonLen:
		problem = fmt.Sprintf("--reason must be at most %d characters", api.MaxReasonLen)
	case *wait <= 0:
		problem = "--wait must be positive"
	}
	if problem != "" {
		fmt.Fprintf(a.stderr, "%s\n%s\n", problem, usageLine)
		return errUsage
	}
	actor := a.actor(*as)
	if actor == "" || len(actor) > api.MaxActorLen || strings.ContainsAny(actor, " \t\r\n") {
		fmt.Fprintf(a.stderr, "--as must be one word of at most %d characters\n%s\n", api.MaxActorLen, usageLine)
		return errUsage
	}
	if err := operatorAnywhere(a.cfg.Operators, actor); err != nil {
		fmt.Fprintf(a.stderr, "refused: %v\n", err)
		return errRefused
	}
	if !*yes && !*dryRun && !isTerminal(a.stdin) {
		fmt.Fprintln(a.stderr, "refused: erasing asks for confirmation and there is no terminal to ask on: "+
			"pass --yes to erase without asking (--dry-run shows what would be erased)")
		return errRefused
	}
	needle := store.NormalizeEmail(*email)

	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	c, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	opts, err := a.cfg.Temporal.ClientOptions(nil)
	if err != nil {
		return err
	}
	t := &temporalOps{svc: c.WorkflowService(), namespace: a.cfg.Temporal.Namespace, identity: "signals erase (" + actor + ")", poll: 250 * time.Millisecond}
	if p, ok := opts.DataConverter.(converter.PayloadCodecProvider); ok {
		t.codec = p.Codec()
	}

	// The same team check for a dry run as for an erasure, and before any
	// plan is printed: the plan is the person's data. What PostgreSQL holds
	// names teams already: an actor who is not an operator of one of them is
	// refused before the longer search.
	db, err := st.ErasePersonalData(ctx, store.ErasureRequest{Email: needle, Scheme: erasureScheme()})
	if err != nil {
		return err
	}
	teams := teamsOf(slices.Concat(db.Integrations, integrationsOf(db.Items), integrationsOf(db.Mentioning)))
	if missing := missingTeams(a.cfg.Operators, actor, teams); len(missing) > 0 {
		return a.refuseTeams(actor, missing, teams)
	}
	plan, err := a.planErasure(ctx, st, t, needle)
	if err != nil {
		return err
	}
	if missing := missingTeams(a.cfg.Operators, actor, plan.teams); len(missing) > 0 {
		return a.refuseTeams(actor, missing, plan.teams)
	}
	a.printPlan(plan, actor)
	if plan.undecodable > 0 {
		fmt.Fprintf(a.stderr, "refused: %d execution(s) hold encrypted payloads signals cannot decrypt, so they could not be searched: "+
			"set SIGNALBOX_PAYLOAD_KEYS to the workers' keys and run erase again\n", plan.undecodable)
		return errRefused
	}
	if blocked := plan.blocked(); len(blocked) > 0 {
		fmt.Fprintf(a.stderr, "refused, nothing was changed: %d item(s) of other people mention this person and still run: %s; "+
			"signals erase neither cancels nor deletes another person's item: decide them first (signals show %s), then run erase again\n",
			len(blocked), strings.Join(blocked, ", "), blocked[0])
		return errRefused
	}
	if *dryRun {
		fmt.Fprintln(a.stdout, "dry run: nothing was changed")
		return nil
	}
	if !plan.empty() {
		ok, err := a.confirmErasure(*yes)
		if err != nil || !ok {
			return err
		}
	}

	done, err := a.executeErasure(ctx, st, t, plan, needle, actor, *reason, *wait)
	if err != nil {
		return err
	}
	a.printDone(plan, done, actor)
	if len(done.db.Residue) > 0 {
		fmt.Fprintf(a.stderr, "failed: the address is still held in %s, which signals erase does not erase "+
			"(an operator's name in audit_events.actor is kept: it says who acted); erase it by hand, or teach store.ErasePersonalData to\n",
			joinCounts(done.db.Residue))
		return errRefused
	}
	return nil
}

func (a *app) refuseTeams(actor string, missing, teams []string) error {
	fmt.Fprintf(a.stderr, "refused, no plan shown and nothing changed: %s is not an operator of team %s (SIGNALBOX_OPERATORS): the person's data is in integrations of teams %s, "+
		"and erasing it, or looking at what would be erased (--dry-run), takes an operator of each\n", actor, strings.Join(missing, ", "), strings.Join(teams, ", "))
	return errRefused
}

// teamsOf lists the owner teams of integrations (names that are none are
// left out).
func teamsOf(integrations []string) []string {
	teams := map[string]bool{}
	for _, integration := range integrations {
		if s, err := api.SpecByName(integration); err == nil {
			teams[s.Owner] = true
		}
	}
	return slices.Sorted(maps.Keys(teams))
}

// integrationsOf lists the integrations of items' workflow IDs.
func integrationsOf(ids []string) []string {
	var out []string
	for _, id := range ids {
		if integration, ok := itemIntegration(id); ok {
			out = append(out, integration)
		}
	}
	return out
}

// operatorAnywhere refuses an actor that is no operator of any team: only
// operators may look for a person's data at all.
func operatorAnywhere(ops config.Operators, actor string) error {
	if len(ops) == 0 {
		return errors.New("SIGNALBOX_OPERATORS is not set: signals erase needs to know each team's operators (the workers' setting)")
	}
	for _, names := range ops {
		if slices.Contains(names, actor) {
			return nil
		}
	}
	return fmt.Errorf("%s is not an operator of any team (SIGNALBOX_OPERATORS)", actor)
}

// missingTeams lists the teams of which actor is not an operator.
func missingTeams(ops config.Operators, actor string, teams []string) []string {
	var out []string
	for _, team := range teams {
		if !slices.Contains(ops[team], actor) {
			out = append(out, team)
		}
	}
	return out
}

// erasureScheme is how the store's tables map to integrations and items.
func erasureScheme() store.ErasureScheme {
	lead := api.LeadToCRMSpec()
	var fields []string
	for _, f := range []string{"email", "firstName", "lastName", "phone", "jobTitle"} {
		fields = append(fields, lead.TargetName(f))
	}
	return store.ErasureScheme{ItemID: api.ItemID, Invoices: api.IntegrationInvoiceToBilling, Customers: api.IntegrationCustomerSync,
		People: map[string][]string{lead.Name: fields}}
}

// erasurePlan is what an erasure will do.
type erasurePlan struct {
	// db is the erasure in PostgreSQL, rolled back.
	db store.Erasure
	// items hold the person's data in Temporal or PostgreSQL, by workflow ID:
	// the person's own, and other people's that mention them.
	items []*erasureItem
	// others are executions that are no item (polls, reconcile runs) whose
	// histories hold the address.
	others []execRun
	// teams own the integrations involved.
	teams []string
	// scanned counts the executions searched; undecodable those whose
	// payloads could not be decrypted.
	scanned, undecodable int
}

func (p erasurePlan) empty() bool {
	return p.db.Rows() == 0 && len(p.items) == 0 && len(p.others) == 0
}

// blocked lists the items of other people that mention the person in a
// history still running: they are neither cancelled nor deleted, and the
// erasure waits until they are decided.
func (p erasurePlan) blocked() []string {
	var out []string
	for _, it := range p.items {
		if !it.own && it.open() {
			out = append(out, it.id)
		}
	}
	return out
}

// erasureItem is an item whose data is erased.
type erasureItem struct {
	id, integration string
	// own: its record is the person's: its input holds the address, or
	// PostgreSQL names it the person's (a lead's link, an invoice billed to
	// the address, a customer billed at it). Its waiting runs are cancelled
	// and all its runs deleted. An item that is not the person's only
	// mentions them (another lead that found their contact as a similar
	// one): it is never cancelled, and only its runs whose history holds the
	// address are deleted, once closed.
	own bool
	// runs are those the erasure deletes: every run of the person's own
	// item; the runs of another's item whose history holds the address.
	runs []execRun
}

func (it *erasureItem) open() bool {
	return slices.ContainsFunc(it.runs, func(r execRun) bool { return r.open })
}

// execRun is one run of a workflow as visibility lists it.
type execRun struct {
	workflowID, runID string
	open              bool
	status            api.Status
}

func runFrom(info *workflowpb.WorkflowExecutionInfo) execRun {
	v := api.VisibleItemFrom(info)
	return execRun{workflowID: v.WorkflowID, runID: v.RunID, open: v.Execution == executionRunning, status: v.Status}
}

// itemIntegration is the integration of an item's workflow ID, if it is one.
func itemIntegration(workflowID string) (string, bool) {
	integration, _, ok := api.SplitItemID(workflowID)
	if !ok {
		return "", false
	}
	_, err := api.SpecByName(integration)
	return integration, err == nil
}

// workflowIntegration is the integration a workflow that is no item works
// for: a poll ("customer-sync-poll…") or a reconcile run
// ("reconcile:lead-to-crm…").
func workflowIntegration(workflowID string) string {
	for _, s := range api.Specs() {
		if strings.HasPrefix(workflowID, api.ScheduleID(s.Name)) || strings.HasPrefix(workflowID, api.ReconcileID(s.Name)) {
			return s.Name
		}
	}
	return ""
}

// planErasure finds the person's data: it searches every execution's
// history in the namespace (retention bounds them), then asks PostgreSQL
// what erasing would change, without changing it.
func (a *app) planErasure(ctx context.Context, st *store.Store, t *temporalOps, needle string) (erasurePlan, error) {
	var plan erasurePlan
	began := a.now()
	found, err := t.scan(ctx, needle, func(done, total int) {
		if a.now().Sub(began) > time.Second {
			fmt.Fprintf(a.stderr, "searched %d/%d executions\n", done, total)
		}
	})
	if err != nil {
		return plan, err
	}
	plan.scanned, plan.undecodable, plan.others = found.scanned, found.undecodable, found.others
	plan.db, err = st.ErasePersonalData(ctx, store.ErasureRequest{Email: needle, Scheme: erasureScheme(), Items: slices.Sorted(maps.Keys(found.own))})
	if err != nil {
		return plan, err
	}
	own := map[string]bool{}
	for _, id := range plan.db.Items {
		own[id] = true
	}
	ids := map[string]bool{}
	for _, set := range [][]string{plan.db.Items, plan.db.Mentioning, slices.Collect(maps.Keys(found.own)), slices.Collect(maps.Keys(found.mentioning))} {
		for _, id := range set {
			ids[id] = true
		}
	}
	integrations := slices.Clone(plan.db.Integrations)
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		integration, ok := itemIntegration(id)
		if !ok {
			continue // not an item's (the store names items only); nothing in Temporal to find by it
		}
		runs, err := t.runsOf(ctx, id)
		if err != nil {
			return plan, err
		}
		it := &erasureItem{id: id, integration: integration, own: own[id] || found.own[id], runs: runs}
		if !it.own {
			// Another person's item: only its runs whose history holds the
			// address are the erasure's, as visibility lists them now.
			it.runs = slices.DeleteFunc(runs, func(r execRun) bool {
				return !slices.ContainsFunc(found.mentioning[id], func(m execRun) bool { return m.runID == r.runID })
			})
		}
		plan.items = append(plan.items, it)
		integrations = append(integrations, integration)
	}
	for _, r := range plan.others {
		integrations = append(integrations, workflowIntegration(r.workflowID))
	}
	plan.teams = teamsOf(integrations)
	return plan, nil
}

// printPlan shows what will be erased: rows per table, items and their runs.
// The address itself is never printed. It is printed only to an operator of
// every team owning the data.
func (a *app) printPlan(p erasurePlan, actor string) {
	w := a.stdout
	if p.empty() {
		fmt.Fprintf(w, "Nothing left to erase: no row of signalbox's tables and none of the %d executions in Temporal holds the address.\n", p.scanned)
		if len(p.db.Residue) > 0 {
			fmt.Fprintf(w, "Left as they are, as signals erase does not erase them: %s.\n", joinCounts(p.db.Residue))
		}
		return
	}
	fmt.Fprintln(w, "Personal data of the address given (it is never printed, nor stored):")
	fmt.Fprintln(w)
	printChanges(w, p.db.Changes)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "In Temporal (%d executions searched):\n", p.scanned)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ITEM\tHOLDS\tRUNS\tNOW\tTHEN")
	for _, it := range p.items {
		var holds, now, then string
		switch {
		case it.own:
			holds, now, then = "the person's record", "no execution left (retention)", "nothing to delete"
			if len(it.runs) > 0 {
				now, then = "closed", "executions deleted"
			}
			for _, r := range it.runs {
				if r.open {
					now, then = string(r.status)+" (running)", fmt.Sprintf("cancelled (%q), then deleted", cancelReason)
				}
			}
		case len(it.runs) == 0:
			holds, now, then = "mentions the person (in PostgreSQL only)", "-", "another person's item: left as it is, the address masked in its rows"
		case it.open():
			holds, now, then = "mentions the person", "running", "not cancelled, not deleted: another person's item; decide it first"
			for _, r := range it.runs {
				if r.open {
					now = string(r.status) + " (running)"
				}
			}
		default:
			holds, now, then = "mentions the person", "closed", "another person's item, ended: the executions whose history holds the address deleted, its rows kept, the address masked"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", it.id, holds, len(it.runs), now, then)
	}
	for _, r := range p.others {
		state := "closed"
		if r.open {
			state = "running: waited for"
		}
		fmt.Fprintf(tw, "  %s (run %s)\tmentions the person\t1\t%s\texecution deleted\n", r.workflowID, r.runID, state)
	}
	tw.Flush()
	if len(p.items) == 0 && len(p.others) == 0 {
		fmt.Fprintln(w, "  no execution holds the address")
	}
	if blocked := p.blocked(); len(blocked) > 0 {
		fmt.Fprintf(w, "\nItems of other people that mention this person — decide them first (signals show %s), then run erase again:\n", blocked[0])
		for _, id := range blocked {
			fmt.Fprintf(w, "  %s (signals show %s)\n", id, id)
		}
		fmt.Fprintln(w, "Their histories hold the address (a contact found similar, a decision's reason); signals erase does not cancel another person's item, "+
			"and a running execution cannot be deleted. Nothing is erased while one runs.")
	}
	if len(p.db.Residue) > 0 {
		fmt.Fprintf(w, "\nLeft as they are, as signals erase does not erase them: %s.\n", joinCounts(p.db.Residue))
	}
	if len(p.db.Elsewhere) > 0 {
		fmt.Fprintf(w, "\nLinked records in other systems, which signals erase does not touch (erase them there if the request covers them): %s\n",
			strings.Join(p.db.Elsewhere, ", "))
	}
	if len(p.teams) > 0 {
		fmt.Fprintf(w, "\nOwning teams: %s; %s is an operator of each.\n", strings.Join(p.teams, ", "), actor)
	}
}

func printChanges(w io.Writer, changes []store.TableChange) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "In PostgreSQL: no row holds it.")
		return
	}
	fmt.Fprintln(w, "In PostgreSQL:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TABLE\tROWS\tWHAT")
	for _, c := range changes {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", c.Table, c.Rows, c.Action)
	}
	tw.Flush()
}

// confirmErasure asks on the terminal, unless yes; without a terminal it
// refuses rather than erase unasked.
func (a *app) confirmErasure(yes bool) (bool, error) {
	if yes {
		return true, nil
	}
	if !isTerminal(a.stdin) {
		fmt.Fprintln(a.stderr, "refused: erasing asks for confirmation and there is no terminal to ask on: pass --yes to erase without asking")
		return false, errRefused
	}
	fmt.Fprint(a.stdout, "Erase all of it? This cannot be undone. [y/N] ")
	answer, _ := bufio.NewReader(a.stdin).ReadString('\n')
	if answer = strings.ToLower(strings.TrimSpace(answer)); answer != "y" && answer != "yes" {
		fmt.Fprintln(a.stdout, "nothing erased")
		return false, nil
	}
	return true, nil
}

// isTerminal reports whether r is a terminal a person answers on.
func isTerminal(r io.Reader) bool {
	if t, ok := r.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// erasureDone is what an erasure did.
type erasureDone struct {
	id        string
	db        store.Erasure
	cancelled []string
	// deleted counts the runs deleted; gone those Temporal had deleted
	// already (retention); pending those it has not finished deleting.
	deleted, gone, pending int
}

// executeErasure stops the items that hold the data, deletes every
// execution that holds it, then erases it in PostgreSQL with the audit
// events of the erasure, in one transaction. Temporal goes first: run again
// after a failure, the rows still there find what is left.
func (a *app) executeErasure(ctx context.Context, st *store.Store, t *temporalOps, p erasurePlan, needle, actor, reason string, wait time.Duration) (erasureDone, error) {
	done := erasureDone{id: uuid.NewString()}
	deadline := time.Now().Add(wait)

	// Items under way (their steps running) are left to reach a wait or
	// their end: cancelling one in the middle of a step could leave a
	// target's write half-recorded (a Stripe invoice made for an invoice
	// marked cancelled). Waiting ones are cancelled.
	var underWay []string
	var toCancel []execRun
	for _, it := range p.items {
		if !it.own {
			// Another person's item is never cancelled: planErasure refused
			// while one of its runs that hold the address was running.
			if it.open() {
				return done, fmt.Errorf("%s (another person's item) still runs; nothing was erased: decide it first, then run signals erase again", it.id)
			}
			continue
		}
		for _, r := range it.runs {
			if !r.open {
				continue
			}
			state, err := t.settle(ctx, r, deadline)
			if err != nil {
				return done, err
			}
			switch state {
			case runWaiting:
				toCancel = append(toCancel, r)
			case runUnderWay:
				underWay = append(underWay, r.workflowID)
			}
		}
	}
	for _, r := range p.others {
		if r.open {
			closed, err := t.waitClosed(ctx, r, deadline)
			if err != nil {
				return done, err
			}
			if !closed {
				underWay = append(underWay, r.workflowID+" (run "+r.runID+")")
			}
		}
	}
	if len(underWay) > 0 {
		fmt.Fprintf(a.stderr, "refused: still under way after %s, nothing erased: %s; run signals erase again once they wait for a decision or have ended\n",
			wait, strings.Join(underWay, ", "))
		return done, errRefused
	}
	for _, r := range toCancel {
		if err := t.cancel(ctx, r); err != nil {
			return done, err
		}
		done.cancelled = append(done.cancelled, r.workflowID)
	}
	for _, r := range toCancel {
		closed, err := t.waitClosed(ctx, r, deadline)
		if err != nil {
			return done, err
		}
		if !closed {
			return done, fmt.Errorf("%s was cancelled but has not ended within %s (is a worker running?); nothing was deleted: run signals erase again", r.workflowID, wait)
		}
	}

	// Every run of every item, listed again: a run that began meanwhile
	// must not be missed.
	var runs []execRun
	deletedOf := map[string]int{}
	for _, it := range p.items {
		if !it.own {
			// Only its runs whose history holds the address, closed.
			runs = append(runs, it.runs...)
			deletedOf[it.id] = len(it.runs)
			continue
		}
		current, err := t.runsOf(ctx, it.id)
		if err != nil {
			return done, err
		}
		for _, r := range current {
			if r.open {
				return done, fmt.Errorf("%s was started again during the erasure; nothing more was deleted: run signals erase again", it.id)
			}
		}
		runs = append(runs, current...)
		deletedOf[it.id] = len(current)
	}
	runs = append(runs, p.others...)
	for _, r := range runs {
		gone, err := t.delete(ctx, r)
		if err != nil {
			return done, err
		}
		if gone {
			done.gone++
		} else {
			done.deleted++
		}
	}
	// Temporal deletes asynchronously, once its queues have acknowledged
	// the run's close (up to half a minute later): a short look says how
	// many are gone already, the rest are reported as under way.
	confirm := time.Now().Add(goneWait)
	if deadline.Before(confirm) {
		confirm = deadline
	}
	for _, r := range runs {
		if ok, err := t.waitGone(ctx, r, confirm); err != nil {
			return done, err
		} else if !ok {
			done.pending++
		}
	}

	mask := store.NewAddress(needle).Mask
	var found, mentioning []string
	for _, it := range p.items {
		found = append(found, it.id)
		if !it.own {
			mentioning = append(mentioning, it.id)
		}
	}
	var err error
	done.db, err = st.ErasePersonalData(ctx, store.ErasureRequest{Email: needle, Scheme: erasureScheme(), Items: ownItems(p), Commit: true,
		Audit: func(e store.Erasure) ([]store.AuditEvent, error) {
			at := a.now().UTC()
			changes := map[string]int64{}
			for _, c := range e.Changes {
				changes[c.Table+" "+c.Action] = c.Rows
			}
			events := []store.AuditEvent{{Integration: erasureIntegration, WorkflowID: erasureIntegration + ":" + done.id, RunID: done.id, Seq: 1, At: at,
				Actor: actor, Action: "personal_data_erased", Reason: mask(reason), Details: map[string]any{
					"subject": "an email address", "rows": changes, "items": found, "mentioning": mentioning, "cancelled": done.cancelled,
					"executionsDeleted": done.deleted, "executionsGoneAlready": done.gone, "elsewhere": e.Elsewhere, "teams": p.teams}}}
			for _, it := range p.items {
				holds := "the person's record"
				if !it.own {
					holds = "mentions the person"
				}
				events = append(events, store.AuditEvent{Integration: it.integration, WorkflowID: it.id, RunID: "erasure-" + done.id, Seq: 1, At: at,
					Actor: actor, Action: "personal_data_erased", Reason: mask(reason), Details: map[string]any{
						"erasure": erasureIntegration + ":" + done.id, "holds": holds, "cancelled": slices.Contains(done.cancelled, it.id),
						"executionsDeleted": deletedOf[it.id]}})
			}
			return events, nil
		}})
	return done, err
}

// ownItems are the items whose record is the person's, for PostgreSQL.
func ownItems(p erasurePlan) []string {
	var out []string
	for _, it := range p.items {
		if it.own {
			out = append(out, it.id)
		}
	}
	return out
}

// printDone reports what was erased.
func (a *app) printDone(p erasurePlan, d erasureDone, actor string) {
	w := a.stdout
	if p.empty() && d.db.Rows() == 0 {
		fmt.Fprintf(w, "The request is recorded as erasure:%s in the audit trail (signals show erasure:%s).\n", d.id, d.id)
		return
	}
	fmt.Fprintf(w, "\nErased as %s, recorded as erasure:%s in the audit trail (signals show erasure:%s):\n", actor, d.id, d.id)
	printChanges(w, d.db.Changes)
	fmt.Fprintf(w, "In Temporal: %d item(s) cancelled first", len(d.cancelled))
	if len(d.cancelled) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(d.cancelled, ", "))
	}
	fmt.Fprintf(w, "; %d execution(s) deleted", d.deleted)
	if d.gone > 0 {
		fmt.Fprintf(w, ", %d already gone", d.gone)
	}
	if d.pending > 0 {
		fmt.Fprintf(w, " (Temporal is still deleting %d: it does so asynchronously, usually within a minute)", d.pending)
	}
	fmt.Fprintln(w, ".")
	if len(d.db.Elsewhere) > 0 {
		fmt.Fprintf(w, "Not erased, in other systems: %s.\n", strings.Join(d.db.Elsewhere, ", "))
	}
}

func joinCounts(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s (%d rows)", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// temporalOps is what an erasure asks of Temporal, through the workflow
// service.
type temporalOps struct {
	svc       workflowservice.WorkflowServiceClient
	namespace string
	identity  string
	// codec decrypts payloads (SIGNALBOX_PAYLOAD_KEYS); nil when none.
	codec converter.PayloadCodec
	poll  time.Duration
}

// scanFound is what a search of the namespace's histories found.
type scanFound struct {
	// own are items whose input holds the address (in one of their runs).
	own map[string]bool
	// mentioning are the other items whose history holds it elsewhere (an
	// activity's result, a decision, an exception's details), with the runs
	// whose history holds it.
	mentioning  map[string][]execRun
	others      []execRun
	scanned     int
	undecodable int
}

// scanParallel is how many histories are read at once.
const scanParallel = 8

// scan reads the history of every execution in the namespace, looking for
// the address in every event: its payloads (decrypted when a codec is set,
// JSON ones decoded) and its other fields (a failure's message).
func (t *temporalOps) scan(ctx context.Context, needle string, progress func(done, total int)) (scanFound, error) {
	addr := formsOf(store.NewAddress(needle))
	found := scanFound{own: map[string]bool{}, mentioning: map[string][]execRun{}}
	all, err := t.list(ctx, "")
	if err != nil {
		return found, err
	}
	type result struct {
		run                execRun
		inInput, anywhere  bool
		undecodable, known bool
		err                error
	}
	results := make([]result, len(all))
	var mu sync.Mutex
	finished := 0
	eachParallel(ctx, len(all), scanParallel, func(i int) {
		r := result{run: all[i], known: true}
		r.inInput, r.anywhere, r.undecodable, r.err = t.historyHolds(ctx, all[i], addr)
		if errors.Is(r.err, errGone) {
			r.known, r.err = false, nil
		}
		results[i] = r
		mu.Lock()
		finished++
		if finished%100 == 0 {
			progress(finished, len(all))
		}
		mu.Unlock()
	})
	if err := ctx.Err(); err != nil {
		return found, err
	}
	for _, r := range results {
		if r.err != nil {
			return found, r.err
		}
		if !r.known {
			continue // deleted since it was listed
		}
		found.scanned++
		if r.undecodable {
			found.undecodable++
		}
		if !r.anywhere {
			continue
		}
		if _, ok := itemIntegration(r.run.workflowID); !ok {
			found.others = append(found.others, r.run)
			continue
		}
		if r.inInput {
			found.own[r.run.workflowID] = true
		} else {
			found.mentioning[r.run.workflowID] = append(found.mentioning[r.run.workflowID], r.run)
		}
	}
	for id := range found.own {
		delete(found.mentioning, id)
	}
	return found, nil
}

// errGone is an execution deleted meanwhile (or by retention).
var errGone = errors.New("execution gone")

// historyHolds reads a run's history and says whether its input, and
// whether any event, holds the address; undecodable when a payload could
// not be decrypted.
func (t *temporalOps) historyHolds(ctx context.Context, r execRun, addr addressForms) (inInput, anywhere, undecodable bool, err error) {
	var token []byte
	for {
		resp, err := t.svc.GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{Namespace: t.namespace,
			Execution: &commonpb.WorkflowExecution{WorkflowId: r.workflowID, RunId: r.runID}, MaximumPageSize: 1000, NextPageToken: token,
			HistoryEventFilterType: enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT})
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return false, false, false, errGone
		}
		if err != nil {
			return false, false, false, fmt.Errorf("read the history of %s (run %s): %w", r.workflowID, r.runID, err)
		}
		for _, ev := range resp.GetHistory().GetEvents() {
			holds, bad := t.holds(ev, addr)
			undecodable = undecodable || bad
			anywhere = anywhere || holds
			if started := ev.GetWorkflowExecutionStartedEventAttributes(); started != nil && holds {
				inInput, _ = t.holds(started.GetInput(), addr)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return inInput, anywhere, undecodable, nil
		}
	}
}

// holds reports whether msg holds the address, in any case, as an address
// of its own (store.Address), as written or as Go's JSON encoder writes it
// ("&", "<", ">" as "\u0026", "\u003c", "\u003e"), in any of its texts (a
// failure's message, a payload's metadata and data). A payload is decrypted
// first when a codec is set; when its encoding is JSON, its strings and
// object keys are decoded before they are searched (any escape, such as
// "\u0040", read as what it stands for). undecodable: a payload could not be
// decrypted (or, with no codec, was encrypted).
func (t *temporalOps) holds(msg proto.Message, addr addressForms) (found, undecodable bool) {
	if msg == nil {
		return false, false
	}
	s := &searcher{addressForms: addr, codec: t.codec}
	found = s.message(msg.ProtoReflect())
	return found, s.undecodable
}

// addressForms are the forms of the address searched for.
type addressForms struct {
	addr store.Address
	// escaped finds the address as Go's JSON encoder (the Temporal SDK's)
	// writes it, where that differs: "tom&jerry@example.com" is written
	// "tom\u0026jerry@example.com"; nil when it does not.
	escaped *store.Address
}

func formsOf(addr store.Address) addressForms {
	f := addressForms{addr: addr}
	raw, err := json.Marshal(addr.Email())
	if escaped := strings.Trim(string(raw), `"`); err == nil && escaped != addr.Email() {
		a := store.NewAddress(escaped)
		f.escaped = &a
	}
	return f
}

// searcher looks for an address in a protobuf message.
type searcher struct {
	addressForms
	codec converter.PayloadCodec
	// undecodable: a payload could not be decrypted.
	undecodable bool
}

// text reports whether a text that is no JSON payload holds the address.
func (s *searcher) text(v string) bool {
	return s.addr.Holds(v) || (s.escaped != nil && s.escaped.Holds(v))
}

// message looks in every string and bytes field of m, at any depth (map
// keys too), and in every payload.
func (s *searcher) message(m protoreflect.Message) bool {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		return s.payload(p)
	}
	found := false
	var value func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool
	value = func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Kind() {
		case protoreflect.StringKind:
			return s.text(v.String())
		case protoreflect.BytesKind:
			return s.text(string(v.Bytes()))
		case protoreflect.MessageKind, protoreflect.GroupKind:
			return s.message(v.Message())
		}
		return false
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			for i, l := 0, v.List(); i < l.Len() && !found; i++ {
				found = value(fd, l.Get(i))
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				found = s.text(k.String()) || value(fd.MapValue(), mv)
				return !found
			})
		default:
			found = value(fd, v)
		}
		return !found
	})
	return found
}

// payload looks in a payload: decrypted first (with a codec), its metadata
// as text, and its data as text, its strings and keys decoded first when it
// is JSON.
func (s *searcher) payload(p *commonpb.Payload) bool {
	if s.codec != nil {
		plain, err := s.codec.Decode([]*commonpb.Payload{p})
		if err != nil || len(plain) != 1 {
			s.undecodable = true
			return false
		}
		p = plain[0]
	}
	encoding := string(p.GetMetadata()[converter.MetadataEncoding])
	if encoding == codec.Encoding {
		// Encrypted, and no key here decrypts it: what it holds is unknown.
		s.undecodable = true
		return false
	}
	for k, v := range p.GetMetadata() {
		if s.text(k) || s.text(string(v)) {
			return true
		}
	}
	if strings.HasPrefix(encoding, "json/") {
		if holds, err := store.JSONHolds(p.GetData(), s.text); err == nil {
			return holds
		}
		// Not JSON after all: read as text below.
	}
	return s.text(string(p.GetData()))
}

// list pages through visibility.
func (t *temporalOps) list(ctx context.Context, query string) ([]execRun, error) {
	var out []execRun
	var token []byte
	for {
		resp, err := t.svc.ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: t.namespace, Query: query,
			PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list executions: %w (query: %q)", err, query)
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, runFrom(e))
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// runsOf lists every run of a workflow ID (a continued-as-new chain, the
// re-syncs of an item).
func (t *temporalOps) runsOf(ctx context.Context, workflowID string) ([]execRun, error) {
	if !itemIDPattern.MatchString(workflowID) {
		return nil, fmt.Errorf("%q is not a workflow ID signals can look up", workflowID)
	}
	return t.list(ctx, fmt.Sprintf("WorkflowId = '%s'", workflowID))
}

func (t *temporalOps) describe(ctx context.Context, r execRun) (*workflowpb.WorkflowExecutionInfo, error) {
	resp, err := t.svc.DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{Namespace: t.namespace,
		Execution: &commonpb.WorkflowExecution{WorkflowId: r.workflowID, RunId: r.runID}})
	if err != nil {
		return nil, err
	}
	return resp.GetWorkflowExecutionInfo(), nil
}

// How an open item's run stands once settled.
type runState int

const (
	runClosed   runState = iota // it ended
	runWaiting                  // it waits for a decision: cancel it
	runUnderWay                 // its steps still run
)

// settle waits, until deadline, for an item's run to wait for a decision or
// to end.
func (t *temporalOps) settle(ctx context.Context, r execRun, deadline time.Time) (runState, error) {
	for {
		info, err := t.describe(ctx, r)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			return runClosed, nil
		case err != nil:
			return 0, fmt.Errorf("describe %s: %w", r.workflowID, err)
		case info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			return runClosed, nil
		case api.VisibleItemFrom(info).Status.Waiting():
			return runWaiting, nil
		}
		if !time.Now().Before(deadline) {
			return runUnderWay, nil
		}
		if err := sleep(ctx, t.poll); err != nil {
			return 0, err
		}
	}
}

// cancel asks Temporal to cancel the run: the item records Cancelled and
// ends. A run that ended meanwhile is fine.
func (t *temporalOps) cancel(ctx context.Context, r execRun) error {
	_, err := t.svc.RequestCancelWorkflowExecution(ctx, &workflowservice.RequestCancelWorkflowExecutionRequest{Namespace: t.namespace,
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: r.workflowID, RunId: r.runID}, Identity: t.identity,
		RequestId: uuid.NewString(), Reason: cancelReason})
	var notFound *serviceerror.NotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("cancel %s: %w", r.workflowID, err)
	}
	return nil
}

// waitClosed waits, until deadline, for a run to end.
func (t *temporalOps) waitClosed(ctx context.Context, r execRun, deadline time.Time) (bool, error) {
	return t.waitFor(ctx, r, deadline, func(info *workflowpb.WorkflowExecutionInfo) bool {
		return info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
}

// delete deletes a run's execution and history; gone: Temporal had
// deleted it already (retention, or an earlier erasure).
func (t *temporalOps) delete(ctx context.Context, r execRun) (gone bool, err error) {
	_, err = t.svc.DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{Namespace: t.namespace,
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: r.workflowID, RunId: r.runID}})
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("delete %s (run %s): %w", r.workflowID, r.runID, err)
	}
	return false, nil
}

// waitGone waits, until deadline, for Temporal to finish deleting a run
// (it deletes asynchronously).
func (t *temporalOps) waitGone(ctx context.Context, r execRun, deadline time.Time) (bool, error) {
	return t.waitFor(ctx, r, deadline, func(*workflowpb.WorkflowExecutionInfo) bool { return false })
}

// waitFor describes a run every poll until it is gone (true), done says so
// of what it describes (true), or deadline passes (false).
func (t *temporalOps) waitFor(ctx context.Context, r execRun, deadline time.Time, done func(*workflowpb.WorkflowExecutionInfo) bool) (bool, error) {
	for {
		info, err := t.describe(ctx, r)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			return true, nil
		case err != nil:
			return false, fmt.Errorf("describe %s: %w", r.workflowID, err)
		case done(info):
			return true, nil
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
		if err := sleep(ctx, t.poll); err != nil {
			return false, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
