// Command bench measures signalbox against the physical limit on the same
// machine — a bare Temporal workflow making the same external calls —, how
// it holds thousands of items waiting for a decision, and how customer sync
// backfills and polls against a CRM's request limit with two workers. It
// brings up its own stacks (dev server, PostgreSQL database, sandbox,
// workers, intake), prints its tables and writes docs/benchmarks.md.
// `make bench` runs it; -only customers runs the customer sync alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/chat"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store/storetest"
	"github.com/signalbox-dev/signalbox/workflows"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	items, concurrency, decisions, blocked, startConcurrency int
	out, binDir                                              string
	// only runs one section ("customers"); empty runs them all.
	only string
	// The customer-sync section: customers backfilled (0 skips it), the
	// sandbox's CRM request limit, each worker's SIGNALBOX_CRM_RATE, the
	// worker processes, and the bound on each of its waits.
	customers, crmLimit, customerWorkers int
	crmRate                              float64
	customerTimeout                      time.Duration
	// codec measures payload encryption's cost (its section).
	codec bool
	// The operator-console section: run it, its one-at-a-time inbox
	// requests, the operators at once and for how long.
	console                           bool
	consoleRequests, consoleOperators int
	consoleFor                        time.Duration
}

func run() error {
	var o options
	flag.IntVar(&o.items, "items", 300, "happy-path items per workflow (baseline and signalbox each)")
	flag.IntVar(&o.concurrency, "concurrency", 20, "items in flight at once on the happy path")
	flag.IntVar(&o.decisions, "decisions", 100, "blocked items decided one at a time, for decision-to-resume latency")
	flag.IntVar(&o.blocked, "blocked", 10_000, "items held Blocked at once (0 skips)")
	flag.IntVar(&o.startConcurrency, "start-concurrency", 50, "concurrent starts of the blocked items")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "where to write the report (empty: print only); -only replaces its section of the file")
	flag.StringVar(&o.binDir, "bin", "bin", "where the built programs, temporal and stripe-mock are")
	flag.StringVar(&o.only, "only", "", `run one section only: "customers" (the customer sync), "cluster" (scale-out on a Temporal cluster) "codec" (payload encryption) or "console" (the operator console)`)
	flag.BoolVar(&o.codec, "codec", true, "measure payload encryption: the codec per payload, and the lead path with and without keys")
	flag.BoolVar(&o.console, "console", true, "measure the operator console with the -blocked items waiting (skipped when -blocked=0)")
	flag.IntVar(&o.consoleRequests, "console-requests", 20, "inbox first-page requests, one at a time, in the console section")
	flag.IntVar(&o.consoleOperators, "console-operators", 50, "operators signed in at once in the console section")
	flag.DurationVar(&o.consoleFor, "console-for", 30*time.Second, "how long the operators load pages in the console section")
	flag.IntVar(&o.customers, "customers", 10_000, "customers backfilled in the customer-sync section (0 skips it)")
	flag.IntVar(&o.crmLimit, "crm-limit", 50, "the sandbox's CRM request limit per second in the customer-sync section")
	flag.Float64Var(&o.crmRate, "crm-rate", 50, "SIGNALBOX_CRM_RATE of each worker in the customer-sync section")
	flag.IntVar(&o.customerWorkers, "customer-workers", 2, "worker processes in the customer-sync section")
	flag.DurationVar(&o.customerTimeout, "customer-timeout", 30*time.Minute, "bound on each wait of the customer-sync section")
	flag.Parse()
	switch {
	case o.only != "" && o.only != "customers" && o.only != "cluster" && o.only != "codec" && o.only != "console":
		return fmt.Errorf(`-only %q: the sections that run alone are "customers", "cluster", "codec" and "console"`, o.only)
	case o.only == "console" && (o.blocked <= 0 || o.consoleRequests < 1 || o.consoleOperators < 1 || o.consoleFor <= 0):
		return errors.New("-only console needs -blocked, -console-requests, -console-operators and -console-for > 0")
	case o.only == "customers" && o.customers <= 0:
		return errors.New("-only customers needs -customers > 0")
	case o.customers > 0 && (o.crmLimit <= 0 || o.crmRate <= 0 || o.customerWorkers < 1):
		return errors.New("-crm-limit and -crm-rate must be > 0, -customer-workers ≥ 1")
	}

	ctx := context.Background()
	r := &report{Options: o, Started: time.Now()}
	if o.only == "" {
		if err := benchMain(ctx, o, r); err != nil {
			return err
		}
		// Printed now: a failure of the next section keeps these figures.
		fmt.Println(r.table())
	}
	if o.only == "codec" || (o.only == "" && o.codec) {
		res, err := benchCodec(ctx, o)
		if err != nil {
			return err
		}
		r.Codec = &res
		fmt.Print(r.codecSection())
		if o.only == "codec" {
			return writeSection(o, codecHeading, r.codecSection())
		}
	}
	if o.only == "console" || (o.only == "" && o.console && o.blocked > 0 && o.consoleOperators > 0) {
		res, err := benchConsole(ctx, o)
		if err != nil {
			return err
		}
		r.Console = &res
		fmt.Print(r.consoleSection())
		if o.only == "console" {
			return writeSection(o, consoleHeading, r.consoleSection())
		}
	}
	if o.only == "cluster" {
		res, err := benchCluster(ctx, o)
		if err != nil {
			return err
		}
		r.Cluster = &res
		fmt.Print(r.clusterSection())
		return writeSection(o, clusterHeading, r.clusterSection())
	}
	if o.customers > 0 {
		res, err := benchCustomers(ctx, o)
		if err != nil {
			return err
		}
		r.Customers = &res
	}
	r.Finished = time.Now()
	if r.Customers != nil {
		fmt.Println(r.customerTable())
		fmt.Print(r.customerTimeGoes())
	}
	if o.out == "" {
		return nil
	}
	if o.only != "" {
		return writeSection(o, customerHeading, r.customerSection())
	}
	if err := os.WriteFile(o.out, []byte(r.markdown(r.table())), 0o644); err != nil {
		return err
	}
	progress("wrote %s", o.out)
	return nil
}

// writeSection replaces one section of the report file: the others stay as
// they were measured.
func writeSection(o options, heading, section string) error {
	if o.out == "" {
		return nil
	}
	old, err := os.ReadFile(o.out)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(old) == 0 {
		old = []byte(markdownHeader)
	}
	if err := os.WriteFile(o.out, []byte(spliceSection(string(old), heading, section)), 0o644); err != nil {
		return err
	}
	progress("wrote %s", o.out)
	return nil
}

// benchMain runs the sections against bare Temporal and the waiting items,
// on a stack of their own.
func benchMain(ctx context.Context, o options, r *report) error {
	dbURL, drop, err := storetest.NewDatabase(storetest.ServerURL())
	if err != nil {
		return err
	}
	defer func() { _ = drop() }()
	dataDir, err := os.MkdirTemp("", "signalbox-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	progress("starting the stack (logs in %s)", dataDir)
	s, err := stack.Start(ctx, stack.Options{
		BinDir: o.binDir, TemporalCLI: filepath.Join(o.binDir, "temporal"), StripeMock: filepath.Join(o.binDir, "stripe-mock"),
		DataDir: dataDir, DatabaseURL: dbURL,
		Env: []string{"SIGNALBOX_OPERATORS=sales=alice", "SIGNALBOX_LOG_LEVEL=warn",
			// No vendor limit in the way: the benchmark measures signalbox, not the limiter.
			"SIGNALBOX_CRM_RATE=100000", "SIGNALBOX_CHAT_RATE=100000", "SIGNALBOX_CRM_CONCURRENCY=64", "SIGNALBOX_CHAT_CONCURRENCY=64"},
	})
	if err != nil {
		return err
	}
	defer s.Stop()

	stopBaseline, err := startBaselineWorker(s)
	if err != nil {
		return err
	}
	defer stopBaseline()

	progress("warming up both paths")
	warm := o
	warm.items = 2 * o.concurrency
	if _, err := happyPath(ctx, s.Client, warm, "bench-bare", startBaseline); err != nil {
		return err
	}
	if _, err := happyPath(ctx, s.Client, warm, "bench-lead", startLead(true)); err != nil {
		return err
	}
	progress("happy path: %d baseline items at concurrency %d", o.items, o.concurrency)
	if r.Baseline, err = happyPath(ctx, s.Client, o, "bench-bare", startBaseline); err != nil {
		return err
	}
	progress("happy path: %d signalbox items at concurrency %d", o.items, o.concurrency)
	if r.Signalbox, err = happyPath(ctx, s.Client, o, "bench-lead", startLead(true)); err != nil {
		return err
	}
	progress("decision to resume: %d items", o.decisions)
	if r.Resume, err = decisionToResume(ctx, s.Client, o.decisions); err != nil {
		return err
	}
	if o.blocked > 0 {
		progress("holding %d items Blocked", o.blocked)
		if r.Blocked, err = holdBlocked(ctx, s, o); err != nil {
			return err
		}
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// startBaselineWorker runs the baseline's workers in this process.
func startBaselineWorker(s *stack.Stack) (func(), error) {
	bare = &bareActivities{
		crm:  crm.New(s.SandboxURL(), "sandbox-token", rest.HTTPClient(10*time.Second, 0)),
		chat: chat.New(nil, s.SandboxURL()+"/services", rest.HTTPClient(10*time.Second, 0)),
	}
	w := worker.New(s.Client, queueWorkflows, worker.Options{})
	w.RegisterWorkflowWithOptions(BareLead, workflow.RegisterOptions{Name: baselineWorkflow})
	c := worker.New(s.Client, queueCRM, worker.Options{DisableWorkflowWorker: true, MaxConcurrentActivityExecutionSize: 64})
	c.RegisterActivity(bare)
	h := worker.New(s.Client, queueChat, worker.Options{DisableWorkflowWorker: true, MaxConcurrentActivityExecutionSize: 64})
	h.RegisterActivity(bare)
	for _, x := range []worker.Worker{w, c, h} {
		if err := x.Start(); err != nil {
			return nil, err
		}
	}
	return func() { w.Stop(); c.Stop(); h.Stop() }, nil
}

// starter starts one item and returns its workflow run.
type starter func(ctx context.Context, c client.Client, key string) (client.WorkflowRun, error)

func benchLead(key string, consent bool) workflows.Lead {
	return workflows.Lead{ID: key, Email: key + "@bench.example", FirstName: "Ada", LastName: "Lovelace " + key, Company: "Engines", Consent: consent}
}

func startBaseline(ctx context.Context, c client.Client, key string) (client.WorkflowRun, error) {
	return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bare:" + key, TaskQueue: queueWorkflows}, baselineWorkflow, benchLead(key, true))
}

func startLead(consent bool) starter {
	return func(ctx context.Context, c client.Client, key string) (client.WorkflowRun, error) {
		spec := api.LeadToCRMSpec()
		return c.ExecuteWorkflow(ctx, api.StartOptions(spec, key), spec.WorkflowType,
			workflows.LeadInput{ItemInput: api.ItemInput{StartedBy: "bench"}, Lead: benchLead(key, consent)})
	}
}

// pathResult is what one happy-path run measured.
type pathResult struct {
	Items      int
	Wall       time.Duration
	Latencies  []time.Duration
	EventsMean float64
}

func (p pathResult) throughput() float64 { return float64(p.Items) / p.Wall.Seconds() }

// happyPath runs items at a fixed concurrency, each from start to result.
func happyPath(ctx context.Context, c client.Client, o options, prefix string, start starter) (pathResult, error) {
	res := pathResult{Items: o.items, Latencies: make([]time.Duration, o.items)}
	stamp := time.Now().UnixNano()
	keys := make([]string, o.items)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d-%05d", prefix, stamp, i)
	}
	var err error
	res.Wall, err = fanOut(o.items, o.concurrency, func(i int) error {
		t0 := time.Now()
		run, err := start(ctx, c, keys[i])
		if err == nil {
			err = run.Get(ctx, nil)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", keys[i], err)
		}
		res.Latencies[i] = time.Since(t0)
		return nil
	})
	if err != nil {
		return res, err
	}
	sample := min(20, len(keys))
	total := 0
	ids := make([]string, sample)
	for i := range sample {
		ids[i] = keys[i*len(keys)/sample]
		if prefix == "bench-bare" {
			ids[i] = "bare:" + ids[i]
		} else {
			ids[i] = api.ItemID(api.IntegrationLeadToCRM, ids[i])
		}
	}
	for _, id := range ids {
		n, err := historyLength(ctx, c, id)
		if err != nil {
			return res, err
		}
		total += n
	}
	res.EventsMean = float64(total) / float64(sample)
	return res, nil
}

// fanOut runs fn for 0..n-1 with the given concurrency and returns the wall
// time and every error.
func fanOut(n, concurrency int, fn func(i int) error) (time.Duration, error) {
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	began := time.Now()
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	wall := time.Since(began)
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return wall, errors.Join(all...)
}

func historyLength(ctx context.Context, c client.Client, id string) (int, error) {
	iter := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for iter.HasNext() {
		if _, err := iter.Next(); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// decisionToResume decides blocked items one at a time and measures from the
// decide Update's call to the start of the next activity (its
// ActivityTaskStarted event).
func decisionToResume(ctx context.Context, c client.Client, n int) ([]time.Duration, error) {
	stamp := time.Now().UnixNano()
	ids := make([]string, n)
	for i := range ids {
		key := fmt.Sprintf("bench-resume-%d-%04d", stamp, i)
		ids[i] = api.ItemID(api.IntegrationLeadToCRM, key)
		if _, err := startLead(false)(ctx, c, key); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		if err := waitStatus(ctx, c, id, api.StatusBlocked); err != nil {
			return nil, err
		}
	}
	out := make([]time.Duration, 0, n)
	for _, id := range ids {
		t0 := time.Now()
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: api.UpdateDecide,
			Args: []any{api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "benchmark"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("decide %s: %w", id, err)
		}
		started, err := firstActivityStartedAfter(ctx, c, id, t0)
		if err != nil {
			return nil, err
		}
		out = append(out, started.Sub(t0))
	}
	return out, nil
}

func firstActivityStartedAfter(ctx context.Context, c client.Client, id string, after time.Time) (time.Time, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		iter := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			e, err := iter.Next()
			if err != nil {
				return time.Time{}, err
			}
			if e.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED && e.GetEventTime().AsTime().After(after) {
				return e.GetEventTime().AsTime(), nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%s: no activity started after the decision", id)
}

func waitStatus(ctx context.Context, c client.Client, id string, want api.Status) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		s, _, err := api.ReadItem(ctx, c, id)
		if err == nil && s.Status == want {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not reach %s", id, want)
}

// blockedResult is what holding many items Blocked measured.
type blockedResult struct {
	Items                   int
	StartWall, BlockedWall  time.Duration
	WorkerRSSBefore, RSS    int64 // bytes
	ListWall, CountWall     time.Duration
	ApproveWall, SyncedWall time.Duration
	Bulk                    bulkOutcome
}

// holdBlocked starts many items that wait for consent, measures the worker's
// memory and the operator CLI while they wait, then approves them all in bulk.
func holdBlocked(ctx context.Context, s *stack.Stack, o options) (blockedResult, error) {
	res := blockedResult{Items: o.blocked}
	var err error
	res.WorkerRSSBefore, err = rss(s.Worker.PID())
	if err != nil {
		return res, err
	}
	prefix := fmt.Sprintf("bench-blocked-%d", time.Now().UnixNano())
	began := time.Now()
	res.StartWall, err = fanOut(o.blocked, o.startConcurrency, func(i int) error {
		_, err := startLead(false)(ctx, s.Client, fmt.Sprintf("%s-%05d", prefix, i))
		return err
	})
	if err != nil {
		return res, err
	}
	query := fmt.Sprintf("SourceKey STARTS_WITH '%s-'", prefix)
	if err := waitCount(ctx, s.Client, query+" AND IntegrationStatus = 'Blocked'", int64(o.blocked), 30*time.Minute); err != nil {
		return res, err
	}
	res.BlockedWall = time.Since(began)
	runtime.GC()
	if res.RSS, err = rss(s.Worker.PID()); err != nil {
		return res, err
	}
	if res.ListWall, err = timed(ctx, s, "", "signals", "list", "--status", "Blocked"); err != nil {
		return res, err
	}
	if res.CountWall, err = timed(ctx, s, "", "signals", "count", "--status", "Blocked"); err != nil {
		return res, err
	}
	progress("approving %d items in bulk", o.blocked)
	began = time.Now()
	res.Bulk, err = bulkApprove(ctx, s, query)
	if err != nil {
		return res, err
	}
	res.ApproveWall = time.Since(began)
	progress("signals approve --query: %s", res.Bulk.Progress)
	if err := waitCount(ctx, s.Client, query+" AND IntegrationStatus = 'Synced'", int64(o.blocked-res.Bulk.Refused-res.Bulk.Failed), 30*time.Minute); err != nil {
		return res, err
	}
	res.SyncedWall = time.Since(began)
	return res, nil
}

// bulkOutcome is what `signals approve --query` reported.
type bulkOutcome struct {
	Done, Refused, Failed int
	// Progress is its last progress line (stderr).
	Progress string
}

// bulkApprove runs `signals approve --query` with its default concurrency, as
// an operator would, and reads the counts it reports; refusals are results,
// not errors.
func bulkApprove(ctx context.Context, s *stack.Stack, query string) (bulkOutcome, error) {
	var b bulkOutcome
	stdout, stderr, code, err := s.Command(ctx, "", "signals", "approve", "--query", query, "--reason", "benchmark", "--as", "alice", "--yes")
	if err != nil {
		return b, err
	}
	for _, line := range strings.Split(stdout, "\n") {
		var n int
		switch {
		case strings.HasPrefix(line, "done: "):
			fmt.Sscanf(line, "done: %d", &b.Done)
		case strings.HasPrefix(line, "refused: "):
			fmt.Sscanf(line, "refused: %d", &n)
			b.Refused += n
		case strings.HasPrefix(line, "failed: "):
			b.Failed++
		}
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) > 0 {
		b.Progress = lines[len(lines)-1]
	}
	if code != 0 && b.Refused+b.Failed == 0 {
		return b, fmt.Errorf("signals approve --query: exit %d: %s", code, stderr)
	}
	return b, nil
}

func timed(ctx context.Context, s *stack.Stack, stdin, name string, args ...string) (time.Duration, error) {
	t0 := time.Now()
	_, stderr, code, err := s.Command(ctx, stdin, name, args...)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s %s: exit %d: %s", name, strings.Join(args, " "), code, stderr)
	}
	return time.Since(t0), err
}

func waitCount(ctx context.Context, c client.Client, query string, want int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var got int64
	for time.Now().Before(deadline) {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err == nil {
			if got = resp.GetCount(); got >= want {
				return nil
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("%q counted %d of %d within %s", query, got, want, limit)
}

// rss is a process's resident set size, from /proc.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
