package main

// The customer-sync section: a backfill, an incremental poll after 1% of the
// records changed on each side, and a poll over unchanged records, against a
// CRM that enforces a vendor request limit, with two worker processes. It
// brings up a stack of its own (its rate settings differ from the other
// sections'), and measures from what the system did: the sandbox's request
// log and stats, PostgreSQL, and Temporal visibility and histories.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

// customerResult is what the customer-sync section measured.
type customerResult struct {
	Customers int
	// Limit is the sandbox's CRM request limit (per second, as it reported
	// it); Rate each worker's SIGNALBOX_CRM_RATE; Workers the worker processes.
	Limit   int
	Rate    float64
	Workers int
	// Started and Duration are the section's.
	Started     time.Time
	Duration    time.Duration
	Insert      time.Duration
	Backfill    backfillResult
	Incremental pollRun
	Unchanged   pollRun
	Reconcile   reconcileResult
}

// reconcileResult is a reconcile run over every synced customer.
type reconcileResult struct {
	// Elapsed is from the run's start to its workflow's close.
	Elapsed time.Duration
	Run     store.ReconcileRun
	Counts  map[string]int64
	CRM     crmWindow
}

// backfillResult is what `starter customers --backfill` did into an empty CRM.
type backfillResult struct {
	// AllCompanies is from the command's start to the creation of the last
	// company (its createdate in the CRM); Command to the command's exit.
	AllCompanies, Command time.Duration
	// Create are the CRM requests up to the last company's creation; Whole
	// those of the whole command.
	Create, Whole crmWindow
	// Items counts CustomerSync workflows started meanwhile.
	Items int
	Poll  trace
	// StarterDone is the command's last line.
	StarterDone string
	OtherPolls  int
}

// pollRun is one poll triggered through the schedule and what it caused.
type pollRun struct {
	// PGEdits and CRMEdits are the records changed before the poll, on each side.
	PGEdits, CRMEdits int
	// Visible is from the trigger to the last change seen on the other side
	// (the company's last-modified date, the customer's updated_at); Poll to
	// the poll's close; Closed to the poll's and every item's close.
	Visible, Poll, Closed time.Duration
	CRM                   crmWindow
	// CompanyWrites counts successful company updates (single and batch),
	// CompaniesWritten the companies they wrote, CompanyWritesElsewhere
	// those to companies whose customer was not edited in PostgreSQL.
	CompanyWrites, CompaniesWritten, CompanyWritesElsewhere int
	// CustomerWrites counts version bumps of customers after the edits,
	// CustomersWritten the customers, CustomerWritesElsewhere those of
	// customers whose company was not edited in the CRM.
	CustomerWrites, CustomersWritten, CustomerWritesElsewhere int
	// PGVisible and CRMVisible split Visible by the side edited.
	PGVisible, CRMVisible time.Duration
	// PGItems and CRMItems are when the first and the last item of the
	// customers edited on each side started, after the trigger.
	PGItems, CRMItems [2]time.Duration
	// RewritesAfter429 counts the company writes that repeated a successful
	// one after the read that follows it (UpdateCompany: PATCH, then GET)
	// was answered 429.
	RewritesAfter429 int
	// Items counts CustomerSync workflows started (visibility).
	Items      int
	ItemTrace  trace
	PollTrace  trace
	OtherPolls int
}

// crmWindow counts the CRM API requests of a span of the run.
type crmWindow struct {
	Requests int
	// Answered429 counts requests the log shows answered 429; RateLimited the
	// growth of the stats' rateLimited["crm"] (the vendor limit's refusals).
	Answered429, RateLimited int
	ByEndpoint               map[string]int
	// ByEndpoint429 counts the requests answered 429 by endpoint; Repeats
	// the writes and searches that repeated an earlier one (same method,
	// path and body; reads of a record repeat by nature).
	ByEndpoint429, Repeats map[string]int
	// MaxInSecond is the most requests sent in any one second (by the
	// clients' send times), MaxArrivedInSecond the most that arrived in one
	// (the vendor's limit counts arrivals).
	MaxInSecond, MaxArrivedInSecond int
	// CloseSends counts requests sent less than 1/rate after the one before:
	// one process never does, so those are two processes sending at once.
	CloseSends int
	// ServedMSByEndpoint splits ServedMS.
	ServedMSByEndpoint map[string]int64
	// Span is from the first request's send to the last's answer.
	Span time.Duration
	// ServedMS sums the sandbox's time answering them.
	ServedMS int64
}

// accepted counts the requests the vendor served: refused ones do not count
// against its limit, so they are no part of the ideal time.
func (w crmWindow) accepted() int { return w.Requests - w.Answered429 }

// ideal is the time the accepted requests need at the vendor's limit.
func (w crmWindow) ideal(limit int) time.Duration {
	return time.Duration(float64(w.accepted()) / float64(limit) * float64(time.Second))
}

// custBench is the section's stack and connections.
type custBench struct {
	o       options
	s       *stack.Stack
	worker2 *stack.Process
	pool    *pgxpool.Pool
	st      *store.Store
	ids     []string
	web     *http.Client
	polls   map[string]bool
}

const (
	customerIDFormat = "CUST-%06d"
	crmIndustry      = "RETAIL"
)

// benchCustomers runs the customer-sync section on a stack of its own.
func benchCustomers(ctx context.Context, o options) (res customerResult, err error) {
	res = customerResult{Customers: o.customers, Rate: o.crmRate, Workers: o.customerWorkers, Started: time.Now()}
	defer func() { res.Duration = time.Since(res.Started) }()
	dbURL, drop, err := storetest.NewDatabase(storetest.ServerURL())
	if err != nil {
		return res, err
	}
	defer func() { _ = drop() }()
	dataDir, err := os.MkdirTemp("", "signalbox-bench-customers-")
	if err != nil {
		return res, err
	}
	defer keepLogsOnFailure(dataDir, &err)
	progress("customer sync: starting a stack with the CRM limited to %d requests/s and %d workers at SIGNALBOX_CRM_RATE=%g (logs in %s)",
		o.crmLimit, o.customerWorkers, o.crmRate, dataDir)
	s, err := stack.Start(ctx, stack.Options{
		BinDir: o.binDir, TemporalCLI: filepath.Join(o.binDir, "temporal"), StripeMock: filepath.Join(o.binDir, "stripe-mock"),
		DataDir: dataDir, DatabaseURL: dbURL,
		Env: []string{"SIGNALBOX_LOG_LEVEL=warn",
			fmt.Sprintf("SIGNALBOX_SANDBOX_CRM_LIMIT=%d", o.crmLimit),
			fmt.Sprintf("SIGNALBOX_CRM_RATE=%g", o.crmRate),
			// Only the polls the bench triggers run: a scheduled one in the
			// middle would blur what each measured.
			"SIGNALBOX_CUSTOMER_SYNC_EVERY=24h"},
	})
	if err != nil {
		return res, fmt.Errorf("customer sync: start the stack: %w", err)
	}
	defer s.Stop()
	b := &custBench{o: o, s: s, web: &http.Client{Timeout: time.Minute}, polls: map[string]bool{}}
	for i := 2; i <= o.customerWorkers; i++ {
		p, err := b.startWorker(ctx, dataDir, i)
		if err != nil {
			return res, err
		}
		defer func() { _ = p.Stop(15 * time.Second) }()
		b.worker2 = p
	}
	var lim struct {
		CRMPerSecond int `json:"crmPerSecond"`
	}
	if err := b.getJSON(ctx, "/_sandbox/limit", &lim); err != nil {
		return res, err
	}
	if lim.CRMPerSecond != o.crmLimit {
		return res, fmt.Errorf("the sandbox reports a CRM limit of %d/s, not the %d/s it was started with", lim.CRMPerSecond, o.crmLimit)
	}
	res.Limit = lim.CRMPerSecond
	if b.pool, err = store.Open(ctx, dbURL); err != nil {
		return res, fmt.Errorf("customer sync: open the bench's database: %w", err)
	}
	defer b.pool.Close()
	b.st = store.New(b.pool)

	if res.Insert, err = b.insertCustomers(ctx); err != nil {
		return res, err
	}
	if res.Backfill, err = b.backfill(ctx); err != nil {
		return res, err
	}
	if res.Incremental, err = b.incremental(ctx); err != nil {
		return res, err
	}
	if res.Unchanged, err = b.unchanged(ctx); err != nil {
		return res, err
	}
	if res.Reconcile, err = b.reconcile(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// reconcile runs customer sync's reconcile run over the synced customers and
// their companies: batch reads of the linked companies, then the company list.
func (b *custBench) reconcile(ctx context.Context) (reconcileResult, error) {
	var r reconcileResult
	mark, err := b.lastSeq(ctx)
	if err != nil {
		return r, err
	}
	progress("customer sync: reconcile run over %d customers", len(b.ids))
	t0 := time.Now()
	wf, err := b.s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: api.ReconcileID(api.IntegrationCustomerSync), TaskQueue: api.TaskQueueIntegrations},
		api.WorkflowReconcile, api.ReconcileInput{Integration: api.IntegrationCustomerSync, StartedBy: "bench"})
	if err != nil {
		return r, fmt.Errorf("customer sync: start the reconcile run: %w", err)
	}
	if err := wf.Get(ctx, &r.Run); err != nil {
		return r, fmt.Errorf("customer sync: the reconcile run failed: %w", err)
	}
	r.Elapsed = time.Since(t0)
	rep, err := b.st.GetReconcileReport(ctx, r.Run.ID)
	if err != nil {
		return r, err
	}
	r.Counts = rep.Counts
	reqs, err := b.crmRequests(ctx, mark)
	if err != nil {
		return r, err
	}
	r.CRM = window(reqs, b.gap(), func(sbRequest) bool { return true })
	progress("customer sync: reconcile run %d compared %d records in %s with %d CRM requests", r.Run.ID, r.Run.Compared, r.Elapsed.Round(time.Millisecond), r.CRM.Requests)
	return r, nil
}

// startWorker starts one more worker process on the stack, with extra
// settings.
func (b *custBench) startWorker(ctx context.Context, dataDir string, n int, extra ...string) (*stack.Process, error) {
	addr, err := stack.FreeAddr()
	if err != nil {
		return nil, err
	}
	p := &stack.Process{
		Name: fmt.Sprintf("worker %d", n), Path: filepath.Join(b.o.binDir, "workers"),
		Env:     append(append(append([]string(nil), b.s.Env...), "SIGNALBOX_WORKER_HEALTH_ADDR="+addr), extra...),
		LogPath: filepath.Join(dataDir, fmt.Sprintf("workers-%d.log", n)), ReadyURL: "http://" + addr + "/healthz",
	}
	if err := p.Start(ctx); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", n, err)
	}
	return p, nil
}

// benchCustomer is customer i as the bench stores it.
func benchCustomer(i int) store.Customer {
	id := fmt.Sprintf(customerIDFormat, i)
	domain := strings.ToLower(id) + ".example"
	return store.Customer{ID: id, LegalName: fmt.Sprintf("Bench Customer %06d GmbH", i), Domain: domain, BillingEmail: "ap@" + domain,
		PaymentTerms: "net30", CreditLimit: int64(10_000 + i), Phone: fmt.Sprintf("+49 30 %07d", i), AddressLine1: fmt.Sprintf("Hauptstr. %d", i%500+1),
		City: "Berlin", PostalCode: "10115", Country: "DE"}
}

func (b *custBench) insertCustomers(ctx context.Context) (time.Duration, error) {
	n := b.o.customers
	progress("customer sync: inserting %d customers into PostgreSQL", n)
	b.ids = make([]string, n)
	var done atomic.Int64
	wall, err := fanOut(n, 8, func(i int) error {
		c := benchCustomer(i)
		b.ids[i] = c.ID
		if _, err := b.st.InsertCustomer(ctx, c); err != nil {
			return err
		}
		if d := done.Add(1); d%2000 == 0 && int(d) < n {
			progress("customer sync: %d/%d customers inserted", d, n)
		}
		return nil
	})
	if err != nil {
		return wall, fmt.Errorf("customer sync: insert customers: %w", err)
	}
	progress("customer sync: %d customers inserted in %s", n, wall.Round(time.Millisecond))
	return wall, nil
}

// backfill runs `starter customers --backfill` into the empty CRM and times
// it until every customer has a company.
func (b *custBench) backfill(ctx context.Context) (backfillResult, error) {
	var r backfillResult
	st, err := b.stats(ctx)
	if err != nil {
		return r, err
	}
	if st.Companies != 0 {
		return r, fmt.Errorf("customer sync: the CRM should be empty before the backfill; it holds %d companies", st.Companies)
	}
	mark, err := b.lastSeq(ctx)
	if err != nil {
		return r, err
	}
	items0, err := b.countWorkflows(ctx, "WorkflowType = 'CustomerSync'")
	if err != nil {
		return r, err
	}
	progress("customer sync: backfill of %d customers: starter customers --backfill", len(b.ids))
	cmd := exec.CommandContext(ctx, filepath.Join(b.o.binDir, "starter"), "customers", "--backfill")
	cmd.Env = b.s.Env
	out := &lineWriter{each: func(line string) { progress("  starter: %s", line) }}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("customer sync: start the backfill: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(b.o.customerTimeout)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var cmdErr error
wait:
	for {
		select {
		case cmdErr = <-exited:
			break wait
		case <-tick.C:
			if line, err := b.runningLine(ctx, mark); err == nil {
				progress("customer sync: backfill after %s: %s", time.Since(t0).Round(time.Second), line)
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			line, _ := b.runningLine(ctx, mark)
			return r, fmt.Errorf("customer sync: the backfill did not finish within %s (-customer-timeout); seen so far: %s; the starter's last line: %q",
				b.o.customerTimeout, line, out.last())
		}
	}
	r.Command = time.Since(t0)
	r.StarterDone = out.last()
	if cmdErr != nil {
		return r, fmt.Errorf("customer sync: starter customers --backfill: %v: %s", cmdErr, strings.TrimSpace(stderr.String()))
	}
	companies, err := b.companies(ctx)
	if err != nil {
		return r, err
	}
	var missing, doubled []string
	var last time.Time
	for _, id := range b.ids {
		cs := companies[id]
		switch {
		case len(cs) == 0:
			missing = append(missing, id)
		case len(cs) > 1:
			doubled = append(doubled, id)
		}
		for _, c := range cs {
			if c.created.After(last) {
				last = c.created
			}
		}
	}
	if len(missing) > 0 || len(doubled) > 0 {
		return r, fmt.Errorf("customer sync: after the backfill (%q) %d customers have no company (%s) and %d more than one (%s)",
			r.StarterDone, len(missing), examples(missing), len(doubled), examples(doubled))
	}
	r.AllCompanies = last.Sub(t0)
	reqs, err := b.crmRequests(ctx, mark)
	if err != nil {
		return r, err
	}
	st2, err := b.stats(ctx)
	if err != nil {
		return r, err
	}
	r.Whole = window(reqs, b.gap(), func(sbRequest) bool { return true })
	r.Whole.RateLimited = st2.RateLimited["crm"] - st.RateLimited["crm"]
	r.Create = window(reqs, b.gap(), func(q sbRequest) bool { return !q.At.After(last) })
	r.Create.RateLimited = r.Create.Answered429 // the stats do not split by time; the log does
	if r.Poll, err = b.traceWorkflow(ctx, api.ScheduleID(api.IntegrationCustomerSync)+"-backfill"); err != nil {
		return r, err
	}
	items1, err := b.countWorkflows(ctx, "WorkflowType = 'CustomerSync'")
	if err != nil {
		return r, err
	}
	r.Items = int(items1 - items0)
	if r.OtherPolls, err = b.otherPolls(ctx, t0, api.ScheduleID(api.IntegrationCustomerSync)+"-backfill"); err != nil {
		return r, err
	}
	progress("customer sync: every customer has its company after %s (command %s), %d CRM requests, %d answered 429",
		r.AllCompanies.Round(time.Millisecond), r.Command.Round(time.Millisecond), r.Whole.Requests, r.Whole.Answered429)
	return r, nil
}

// runningLine says how far a phase is, from the sandbox.
func (b *custBench) runningLine(ctx context.Context, mark int) (string, error) {
	st, err := b.stats(ctx)
	if err != nil {
		return "", err
	}
	reqs, err := b.crmRequests(ctx, mark)
	if err != nil {
		return "", err
	}
	w := window(reqs, b.gap(), func(sbRequest) bool { return true })
	return fmt.Sprintf("%d/%d companies, %d CRM requests (%d answered 429)", st.Companies, len(b.ids), w.Requests, w.Answered429), nil
}

// incremental edits 1% of the customers in PostgreSQL and 1% of the
// companies in the CRM (as a person), triggers one poll and times it until
// every change is on the other side.
func (b *custBench) incremental(ctx context.Context) (pollRun, error) {
	var r pollRun
	n := max(1, len(b.ids)/100)
	stride := len(b.ids) / n
	if stride < 2 {
		return r, fmt.Errorf("customer sync: -customers %d is too few to edit 1%% on each side apart", len(b.ids))
	}
	var pgEdit, crmEdit []string
	for k := range n {
		pgEdit = append(pgEdit, b.ids[k*stride])
		crmEdit = append(crmEdit, b.ids[k*stride+stride/2])
	}
	companies, err := b.companies(ctx)
	if err != nil {
		return r, err
	}
	progress("customer sync: incremental: editing %d customers in PostgreSQL (domain) and %d companies in the CRM (industry)", len(pgEdit), len(crmEdit))
	newDomain := map[string]string{}
	for _, id := range pgEdit {
		c, err := b.st.GetCustomer(ctx, id)
		if err != nil {
			return r, err
		}
		newDomain[id] = strings.ToLower(id) + ".v2.example"
		if _, err := b.st.UpdateCustomer(ctx, id, c.Version, map[string]string{"domain": newDomain[id]}); err != nil {
			return r, fmt.Errorf("customer sync: edit customer %s: %w", id, err)
		}
	}
	for _, id := range crmEdit {
		if err := b.editCompany(ctx, companies[id][0].ID, map[string]string{"industry": crmIndustry}); err != nil {
			return r, err
		}
	}
	r.PGEdits, r.CRMEdits = len(pgEdit), len(crmEdit)
	// visible counts the changes on the other side, and when the last of
	// each side's arrived (the company's last-modified date, the customer's
	// updated_at: the sync's writes are the last change of either).
	visible := func(ctx context.Context) (pg, crm int, lastPG, lastCRM time.Time, err error) {
		cos, err := b.companies(ctx)
		if err != nil {
			return 0, 0, lastPG, lastCRM, err
		}
		for _, id := range pgEdit {
			if cs := cos[id]; len(cs) == 1 && cs[0].props["domain"] == newDomain[id] {
				pg++
				lastPG = later(lastPG, cs[0].updated)
			}
		}
		cs, err := b.st.GetCustomers(ctx, crmEdit)
		if err != nil {
			return 0, 0, lastPG, lastCRM, err
		}
		for _, c := range cs {
			if c.Industry == crmIndustry {
				crm++
				lastCRM = later(lastCRM, c.UpdatedAt)
			}
		}
		return pg, crm, lastPG, lastCRM, nil
	}
	err = b.triggerAndWait(ctx, "incremental", &r, func(ctx context.Context, t0 time.Time) (bool, string, error) {
		pg, crm, lastPG, lastCRM, err := visible(ctx)
		if err != nil {
			return false, "", err
		}
		done := pg == len(pgEdit) && crm == len(crmEdit)
		if done {
			r.PGVisible, r.CRMVisible = lastPG.Sub(t0), lastCRM.Sub(t0)
			r.Visible = max(r.PGVisible, r.CRMVisible)
		}
		return done, fmt.Sprintf("%d/%d PostgreSQL edits on their companies, %d/%d CRM edits on their customers", pg, len(pgEdit), crm, len(crmEdit)), nil
	}, pgEdit, crmEdit)
	return r, err
}

// unchanged triggers a poll with nothing changed.
func (b *custBench) unchanged(ctx context.Context) (pollRun, error) {
	var r pollRun
	err := b.triggerAndWait(ctx, "unchanged", &r, nil, nil, nil)
	return r, err
}

// triggerAndWait triggers a poll, waits for it, for every item it started and
// for done (when given), and measures what they did. pgEdited and crmEdited
// are the customers edited on each side before it.
func (b *custBench) triggerAndWait(ctx context.Context, phase string, r *pollRun, done func(context.Context, time.Time) (bool, string, error), pgEdited, crmEdited []string) error {
	versions, err := b.versions(ctx)
	if err != nil {
		return err
	}
	mark, err := b.lastSeq(ctx)
	if err != nil {
		return err
	}
	st, err := b.stats(ctx)
	if err != nil {
		return err
	}
	running, err := b.countWorkflows(ctx, "WorkflowType = 'CustomerSync' AND ExecutionStatus = 'Running'")
	if err != nil {
		return err
	}
	if running > 0 {
		return fmt.Errorf("customer sync: %s: %d CustomerSync items still run before the poll", phase, running)
	}
	progress("customer sync: %s: triggering one poll", phase)
	t0 := time.Now()
	poll, err := b.triggerPoll(ctx)
	if err != nil {
		return fmt.Errorf("customer sync: %s: %w", phase, err)
	}
	pollDone := make(chan error, 1)
	go func() {
		pollDone <- b.s.Client.GetWorkflow(ctx, poll, "").Get(ctx, nil)
	}()
	deadline := time.Now().Add(b.o.customerTimeout)
	lastLine, lastCheck := time.Now(), time.Time{}
	pollClosed, changesDone := false, done == nil
	var seen string
	// quiet is when the poll was first seen closed, the changes through and
	// no item running; stuck when every running item was first seen Blocked.
	var quiet, stuck time.Time
	for {
		if !pollClosed {
			select {
			case err := <-pollDone:
				if err != nil {
					return fmt.Errorf("customer sync: %s: poll %s: %w", phase, poll, err)
				}
				pollClosed = true
			default:
			}
		}
		// Reading 10,000 companies holds the sandbox's lock a while: not too often.
		if !changesDone && time.Since(lastCheck) >= 2*time.Second {
			lastCheck = time.Now()
			ok, line, err := done(ctx, t0)
			if err != nil {
				return err
			}
			changesDone, seen = ok, line
		}
		running, err := b.countWorkflows(ctx, "WorkflowType = 'CustomerSync' AND ExecutionStatus = 'Running'")
		if err != nil {
			return err
		}
		switch {
		case !pollClosed || !changesDone || running > 0:
			quiet = time.Time{}
		case quiet.IsZero():
			quiet = time.Now()
		}
		// Visibility lags a little: quiet for a while is quiet.
		if !quiet.IsZero() && time.Since(quiet) >= 2*time.Second {
			break
		}
		blocked, err := b.countWorkflows(ctx, "WorkflowType = 'CustomerSync' AND ExecutionStatus = 'Running' AND IntegrationStatus = 'Blocked'")
		if err != nil {
			return err
		}
		switch {
		case !pollClosed || running == 0 || blocked < running:
			stuck = time.Time{}
		case stuck.IsZero():
			stuck = time.Now()
		}
		if !stuck.IsZero() && time.Since(stuck) >= 30*time.Second {
			items, _ := b.listWorkflows(ctx, "WorkflowType = 'CustomerSync' AND ExecutionStatus = 'Running' AND IntegrationStatus = 'Blocked'")
			var ids []string
			for _, it := range items {
				ids = append(ids, it.GetExecution().GetWorkflowId())
			}
			return fmt.Errorf("customer sync: %s: %d items wait for a person (Blocked; see signals show): %s; %s", phase, blocked, examples(ids), seen)
		}
		if time.Now().After(deadline) {
			line, _ := b.runningLine(ctx, mark)
			return fmt.Errorf("customer sync: %s: not done within %s (-customer-timeout): poll closed %v; %s; %d items running (%d Blocked, waiting for a person); %s",
				phase, b.o.customerTimeout, pollClosed, seen, running, blocked, line)
		}
		if time.Since(lastLine) >= 5*time.Second {
			lastLine = time.Now()
			pollState := "poll closed"
			if !pollClosed {
				pollState = "poll " + b.pollProgress(ctx, poll)
			}
			line, _ := b.runningLine(ctx, mark)
			progress("customer sync: %s after %s: %s; %s; %d items running; %s", phase, time.Since(t0).Round(time.Second), pollState, seen, running, line)
		}
		time.Sleep(500 * time.Millisecond)
	}
	reqs, err := b.crmRequests(ctx, mark)
	if err != nil {
		return err
	}
	st2, err := b.stats(ctx)
	if err != nil {
		return err
	}
	r.CRM = window(reqs, b.gap(), func(sbRequest) bool { return true })
	r.CRM.RateLimited = st2.RateLimited["crm"] - st.RateLimited["crm"]
	companies, err := b.companies(ctx)
	if err != nil {
		return err
	}
	companyOf := map[string]string{}
	for id, cs := range companies {
		for _, c := range cs {
			companyOf[c.ID] = id
		}
	}
	written := map[string]bool{}
	// after429 holds the companies whose read after a successful write was
	// refused with a 429 since that write.
	after429 := map[string]bool{}
	for _, q := range reqs {
		path := strings.TrimPrefix(q.Path, "/crm/v3/objects/companies/")
		if q.Endpoint == "crm.companies.get" && q.Status == http.StatusTooManyRequests && written[companyOf[path]] {
			after429[companyOf[path]] = true
		}
		if q.Status >= 300 {
			continue
		}
		switch q.Endpoint {
		case "crm.companies.update":
			id := companyOf[path]
			r.CompanyWrites++
			if written[id] && after429[id] {
				r.RewritesAfter429++
			}
			written[id], after429[id] = true, false
			if !slices.Contains(pgEdited, id) {
				r.CompanyWritesElsewhere++
			}
		case "crm.companies.batch.update":
			// The sync writes companies one by one; a batch would be counted
			// as one write per request (the log does not hold the inputs).
			r.CompanyWrites++
			r.CompanyWritesElsewhere++
		}
	}
	r.CompaniesWritten = len(written)
	after, err := b.versions(ctx)
	if err != nil {
		return err
	}
	for id, v := range after {
		if d := v - versions[id]; d > 0 {
			r.CustomerWrites += int(d)
			r.CustomersWritten++
			if !slices.Contains(crmEdited, id) {
				r.CustomerWritesElsewhere += int(d)
			}
		}
	}
	items, err := b.listWorkflows(ctx, "WorkflowType = 'CustomerSync'")
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.GetStartTime().AsTime().Before(t0) {
			continue
		}
		r.Items++
		since := it.GetStartTime().AsTime().Sub(t0)
		_, key, _ := api.SplitItemID(it.GetExecution().GetWorkflowId())
		for _, side := range []struct {
			edited []string
			span   *[2]time.Duration
		}{{pgEdited, &r.PGItems}, {crmEdited, &r.CRMItems}} {
			if slices.Contains(side.edited, key) {
				if side.span[1] == 0 || since < side.span[0] {
					side.span[0] = since
				}
				side.span[1] = max(side.span[1], since)
			}
		}
		t, err := b.traceRun(ctx, it.GetExecution().GetWorkflowId(), it.GetExecution().GetRunId())
		if err != nil {
			return err
		}
		r.ItemTrace.add(t)
	}
	if r.PollTrace, err = b.traceWorkflow(ctx, poll); err != nil {
		return err
	}
	// The server's times, not when the bench looked.
	r.Poll = r.PollTrace.Close.Sub(t0)
	r.Closed = later(r.PollTrace.Close, r.ItemTrace.Close).Sub(t0)
	if r.OtherPolls, err = b.otherPolls(ctx, t0, poll); err != nil {
		return err
	}
	progress("customer sync: %s: poll closed after %s, all closed after %s; %d items; %d company writes, %d customer writes; %d CRM requests, %d answered 429",
		phase, r.Poll.Round(time.Millisecond), r.Closed.Round(time.Millisecond), r.Items, r.CompanyWrites, r.CustomerWrites, r.CRM.Requests, r.CRM.Answered429)
	return nil
}

// gap is the spacing of one process's requests to the CRM.
func (b *custBench) gap() time.Duration { return time.Duration(float64(time.Second) / b.o.crmRate) }

// triggerPoll runs the customer-sync schedule now and returns the workflow ID
// of the poll it started.
func (b *custBench) triggerPoll(ctx context.Context) (string, error) {
	h := b.s.Client.ScheduleClient().GetHandle(ctx, api.ScheduleID(api.IntegrationCustomerSync))
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
		return "", fmt.Errorf("trigger schedule %s: %w", api.ScheduleID(api.IntegrationCustomerSync), err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		d, err := h.Describe(ctx)
		if err == nil {
			for _, a := range d.Info.RecentActions {
				if a.StartWorkflowResult != nil && !b.polls[a.StartWorkflowResult.WorkflowID] {
					b.polls[a.StartWorkflowResult.WorkflowID] = true
					return a.StartWorkflowResult.WorkflowID, nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("the schedule started no poll within a minute of its trigger")
}

func (b *custBench) pollProgress(ctx context.Context, id string) string {
	v, err := b.s.Client.QueryWorkflow(ctx, id, "", api.QueryProgress)
	if err != nil {
		return "progress unknown"
	}
	var p api.PollProgress
	if err := v.Get(&p); err != nil {
		return "progress unknown"
	}
	return p.String()
}

// otherPolls counts CustomerPoll runs started since t0 other than the one
// the bench started: a scheduled poll would blur the measurement.
func (b *custBench) otherPolls(ctx context.Context, t0 time.Time, ours string) (int, error) {
	runs, err := b.listWorkflows(ctx, "WorkflowType = 'CustomerPoll'")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range runs {
		if e.GetExecution().GetWorkflowId() != ours && !e.GetStartTime().AsTime().Before(t0) {
			n++
		}
	}
	return n, nil
}

// versions reads every customer's version.
func (b *custBench) versions(ctx context.Context) (map[string]int64, error) {
	rows, err := b.pool.Query(ctx, `SELECT id, version FROM customers`)
	if err != nil {
		return nil, fmt.Errorf("customer sync: read versions: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

func (b *custBench) countWorkflows(ctx context.Context, query string) (int64, error) {
	resp, err := b.s.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		return 0, fmt.Errorf("customer sync: count %q: %w", query, err)
	}
	return resp.GetCount(), nil
}

func (b *custBench) listWorkflows(ctx context.Context, query string) ([]*workflowExecutionInfo, error) {
	var out []*workflowExecutionInfo
	var token []byte
	for {
		resp, err := b.s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("customer sync: list %q: %w", query, err)
		}
		out = append(out, resp.GetExecutions()...)
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// The sandbox, through its own endpoints.

type sbRequest struct {
	Seq         int       `json:"seq"`
	At          time.Time `json:"at"`
	SentAt      time.Time `json:"sentAt"`
	Endpoint    string    `json:"endpoint"`
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	Status      int       `json:"status"`
	RateLimited bool      `json:"rateLimited"`
	DurationMS  int64     `json:"durationMs"`
	// Attempt counts the requests with the same identity so far (the
	// sandbox's: method, path and body): above 1, the same request again.
	Attempt int `json:"attempt"`
}

type sbStats struct {
	Requests    map[string]int `json:"requests"`
	RateLimited map[string]int `json:"rateLimited"`
	Companies   int            `json:"companies"`
}

type sbCompany struct {
	ID               string
	props            map[string]string
	created, updated time.Time
}

func (b *custBench) getJSON(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.s.SandboxURL()+path, nil)
	if err != nil {
		return err
	}
	resp, err := b.web.Do(req)
	if err != nil {
		return fmt.Errorf("customer sync: the sandbox did not answer GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("customer sync: GET %s: %s: %s", path, resp.Status, body)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (b *custBench) stats(ctx context.Context) (sbStats, error) {
	var st sbStats
	return st, b.getJSON(ctx, "/_sandbox/stats", &st)
}

// crmRequests lists the CRM API requests logged after seq.
func (b *custBench) crmRequests(ctx context.Context, after int) ([]sbRequest, error) {
	var out struct{ Requests []sbRequest }
	if err := b.getJSON(ctx, "/_sandbox/requests?endpoint=crm.*", &out); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out.Requests, func(q sbRequest) bool { return q.Seq <= after }), nil
}

// lastSeq is the sequence number of the last CRM request logged.
func (b *custBench) lastSeq(ctx context.Context) (int, error) {
	reqs, err := b.crmRequests(ctx, 0)
	if err != nil || len(reqs) == 0 {
		return 0, err
	}
	return reqs[len(reqs)-1].Seq, nil
}

// companies lists the CRM's live companies by the customer ID they carry.
func (b *custBench) companies(ctx context.Context) (map[string][]sbCompany, error) {
	var out struct {
		Companies []struct {
			ID         string             `json:"id"`
			Properties map[string]*string `json:"properties"`
			CreatedAt  time.Time          `json:"createdAt"`
			UpdatedAt  time.Time          `json:"updatedAt"`
			Archived   bool               `json:"archived"`
		}
	}
	if err := b.getJSON(ctx, "/_sandbox/companies", &out); err != nil {
		return nil, err
	}
	m := map[string][]sbCompany{}
	for _, c := range out.Companies {
		if c.Archived {
			continue
		}
		props := map[string]string{}
		for k, v := range c.Properties {
			if v != nil {
				props[k] = *v
			}
		}
		id := props["signalbox_customer_id"]
		m[id] = append(m[id], sbCompany{ID: c.ID, props: props, created: c.CreatedAt, updated: c.UpdatedAt})
	}
	return m, nil
}

// editCompany changes a company as a person in the CRM would (not an API
// request: neither logged nor limited).
func (b *custBench) editCompany(ctx context.Context, id string, props map[string]string) error {
	body, err := json.Marshal(map[string]any{"properties": props})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.s.SandboxURL()+"/_sandbox/companies/"+id+"/edit", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.web.Do(req)
	if err != nil {
		return fmt.Errorf("customer sync: edit company %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("customer sync: edit company %s: %s: %s", id, resp.Status, msg)
	}
	return nil
}

// window counts the requests that in says belong to it.
func window(reqs []sbRequest, gap time.Duration, in func(sbRequest) bool) crmWindow {
	w := crmWindow{ByEndpoint: map[string]int{}, ByEndpoint429: map[string]int{}, Repeats: map[string]int{}, ServedMSByEndpoint: map[string]int64{}}
	var sent, arrived []time.Time
	var first, last time.Time
	for _, q := range reqs {
		if !in(q) {
			continue
		}
		w.Requests++
		w.ByEndpoint[q.Endpoint]++
		if q.Status == http.StatusTooManyRequests {
			w.Answered429++
			w.ByEndpoint429[q.Endpoint]++
		}
		if q.Attempt > 1 && q.Method != http.MethodGet {
			w.Repeats[q.Endpoint]++
		}
		w.ServedMS += q.DurationMS
		w.ServedMSByEndpoint[q.Endpoint] += q.DurationMS
		arrived = append(arrived, q.At)
		t := q.SentAt
		if t.IsZero() {
			t = q.At
		}
		sent = append(sent, t)
		if first.IsZero() || t.Before(first) {
			first = t
		}
		last = later(last, q.At.Add(time.Duration(q.DurationMS)*time.Millisecond))
	}
	slices.SortFunc(sent, time.Time.Compare)
	slices.SortFunc(arrived, time.Time.Compare)
	w.MaxInSecond = maxInWindow(sent, time.Second)
	w.MaxArrivedInSecond = maxInWindow(arrived, time.Second)
	for i := 1; i < len(sent); i++ {
		if sent[i].Sub(sent[i-1]) < gap {
			w.CloseSends++
		}
	}
	if !first.IsZero() {
		w.Span = last.Sub(first)
	}
	return w
}

// maxInWindow is the most of the (sorted) times within any window of length w.
func maxInWindow(times []time.Time, w time.Duration) int {
	best := 0
	for i, j := 0, 0; j < len(times); j++ {
		for times[j].Sub(times[i]) >= w {
			i++
		}
		best = max(best, j-i+1)
	}
	return best
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func examples(ids []string) string {
	if len(ids) > 5 {
		return strings.Join(ids[:5], ", ") + ", …"
	}
	return strings.Join(ids, ", ")
}

// lineWriter hands each complete line written to it to each.
type lineWriter struct {
	mu      sync.Mutex
	buf     []byte
	lastOne string
	each    func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.lastOne = line
		w.each(line)
	}
}

func (w *lineWriter) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOne
}

// sortedKeys lists a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// keepLogsOnFailure removes a section's data directory when it succeeded,
// else keeps it and names it in the error.
func keepLogsOnFailure(dir string, err *error) {
	if *err == nil {
		os.RemoveAll(dir)
		return
	}
	*err = fmt.Errorf("%w\n(the stack's logs are kept in %s)", *err, dir)
}
