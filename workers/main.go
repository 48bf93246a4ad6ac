// Command workers runs signalbox's Temporal workers: one for the integration
// workflows and one per external target, each target's activities capped to
// the rate its vendor allows.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/connectors/billing"
	"github.com/signalbox-dev/signalbox/connectors/chat"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
	"github.com/signalbox-dev/signalbox/metrics"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// connectPatience is how long the worker keeps trying to reach Temporal at start.
const connectPatience = 2 * time.Minute

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config.Worker
	if err := config.Load(&cfg); err != nil {
		return err
	}
	integrations, err := workflows.Integrations()
	if err != nil {
		return err
	}
	if _, err := workflows.ParseRoutes(cfg.LeadRoutes); err != nil {
		return fmt.Errorf("config: SIGNALBOX_LEAD_ROUTES: %w", err)
	}
	for kind := range cfg.SLAs {
		if !slices.ContainsFunc(api.Specs(), func(s api.Spec) bool { _, ok := s.Exception(api.ExceptionKind(kind)); return ok }) {
			return fmt.Errorf("config: SIGNALBOX_SLAS: no integration raises %q", kind)
		}
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Level()}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Bounds memory however many items wait (a waiting item costs ~50 KiB
	// cached); set before any worker exists, as the SDK requires.
	worker.SetStickyWorkflowCacheSize(cfg.WorkflowCacheSize)
	var exporter *metrics.Exporter
	if cfg.MetricsAddr != "" {
		if exporter, err = metrics.New(logger); err != nil {
			return err
		}
		defer func() { _ = exporter.Shutdown(context.Background()) }()
	}
	var c client.Client
	if exporter != nil {
		// The workers, built on this client, report the SDK's metrics and
		// their workflows' to the exporter.
		c, err = exporter.Dial(ctx, cfg.Temporal, logger, connectPatience)
	} else {
		c, err = cfg.Temporal.Dial(ctx, logger, connectPatience)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(connectPatience)
	err = patiently(ctx, deadline, logger, "check search attributes", func() error {
		return ensureSearchAttributes(ctx, c.OperatorService(), cfg.Namespace, cfg.RegisterSearchAttributes, logger)
	})
	if err != nil {
		return err
	}
	pool, err := store.Open(ctx, cfg.Database.URL)
	if err != nil {
		return err
	}
	defer pool.Close()

	// Items that waited before the audit trail recorded their deciding team
	// get it now, as their workflow picked it: the console's inbox finds
	// them by it.
	filled, err := store.New(pool).FillWaitingDeciders(ctx, func(integration, kind, assigned string) string {
		spec, err := api.SpecByName(integration)
		if err != nil {
			return ""
		}
		return spec.DecidingTeam(api.ExceptionKind(kind), assigned)
	})
	if err != nil {
		return err
	}
	if filled > 0 {
		logger.Info("named the deciding team of items waiting since before this version", "items", filled)
	}

	var ready atomic.Bool
	stopServing, err := serve(cfg, &ready, exporter)
	if err != nil {
		return err
	}
	defer stopServing()
	var workers []worker.Worker
	var queues []string
	err = patiently(ctx, deadline, logger, "start workers", func() error {
		workers, queues, err = newWorkers(c, cfg, store.New(pool), integrations, exporter)
		if err != nil {
			return &misconfigured{err}
		}
		for i, w := range workers {
			if err := w.Start(); err != nil {
				for _, started := range workers[:i] {
					started.Stop()
				}
				return fmt.Errorf("start worker: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = patiently(ctx, deadline, logger, "set up the poll schedules", func() error {
		return ensureSchedules(ctx, c, cfg, integrations, logger)
	})
	if err != nil {
		return err
	}
	if exporter != nil {
		if err := countWaiting(ctx, c, cfg, integrations, exporter, logger); err != nil {
			return err
		}
	}
	ready.Store(true)
	logger.Info("workers running", "namespace", cfg.Namespace, "queues", strings.Join(queues, ","),
		"crmRate", cfg.CRM.Rate, "chatRate", cfg.Chat.Rate, "billingRate", cfg.Billing.Rate)
	if cfg.DecisionKeys.SignedOnly() {
		logger.Info("decisions must be signed: only those signed by the actor's key, or by a trusted console for the operator it authenticated, are applied",
			"operatorsWithKeys", len(cfg.DecisionKeys.DecisionKeys), "consoles", strings.Join(cfg.DecisionKeys.ConsoleKeys.Teams(), ","))
	} else {
		logger.Info("decisions' actors are asserted, not verified: set SIGNALBOX_DECISION_KEYS to require signatures")
	}
	if cfg.DeploymentName != "" {
		logger.Info("worker versioning: polling as a version of the deployment; make it current to take new items",
			"deployment", cfg.DeploymentName, "buildId", cfg.Build(),
			"command", "temporal worker deployment set-current-version --deployment-name "+cfg.DeploymentName+" --build-id "+cfg.Build())
	}
	<-ctx.Done()
	ready.Store(false)
	logger.Info("stopping workers")
	for _, w := range workers {
		w.Stop()
	}
	return nil
}

// patiently runs fn until it succeeds or the deadline passes, so that a worker
// starting while Temporal restarts waits for it instead of exiting. Errors
// that say what is wrong with the namespace are not retried.
func patiently(ctx context.Context, deadline time.Time, logger *slog.Logger, what string, fn func() error) error {
	wait := 250 * time.Millisecond
	for {
		err := fn()
		var config *misconfigured
		if err == nil || errors.As(err, &config) || time.Now().Add(wait).After(deadline) {
			return err
		}
		logger.Warn("retrying", "step", what, "in", wait, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// misconfigured is a problem only a person can fix: retrying will not help.
type misconfigured struct{ error }

func (m *misconfigured) Unwrap() error { return m.error }

// serve answers GET /healthz on SIGNALBOX_WORKER_HEALTH_ADDR (200 while
// ready is set, else 503) and GET /metrics on SIGNALBOX_METRICS_ADDR, each
// when set. They are two settings so that the probes of an orchestrator
// and Prometheus's scrapes can reach different ports, and metrics are
// served while the workers start (not ready yet); set to one address, one
// server answers both.
func serve(cfg config.Worker, ready *atomic.Bool, exporter *metrics.Exporter) (stop func(), err error) {
	muxes := map[string]*http.ServeMux{}
	variables := map[string][]string{}
	mux := func(addr, variable string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		variables[addr] = append(variables[addr], variable)
		return muxes[addr]
	}
	if cfg.WorkerHealthAddr != "" {
		mux(cfg.WorkerHealthAddr, "SIGNALBOX_WORKER_HEALTH_ADDR").HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			if !ready.Load() {
				http.Error(w, "starting or stopping", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok\n"))
		})
	}
	if exporter != nil {
		mux(cfg.MetricsAddr, "SIGNALBOX_METRICS_ADDR").Handle("GET /metrics", exporter.Handler())
	}
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	for addr, m := range muxes {
		s, err := metrics.Serve(addr, strings.Join(variables[addr], " and "), m)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stop, nil
}

// countWaiting exports the counts of waiting items, refreshed from
// visibility every SIGNALBOX_METRICS_REFRESH until ctx ends.
func countWaiting(ctx context.Context, c client.Client, cfg config.Worker, integrations []spine.Integration, exporter *metrics.Exporter, logger *slog.Logger) error {
	w := &metrics.Waiting{Visibility: c, Namespace: cfg.Namespace, Logger: logger,
		SLA: func(_ api.Spec, e api.ExceptionSpec) time.Duration {
			if o, ok := cfg.SLAs[string(e.Kind)]; ok {
				return o.SLA
			}
			return e.SLA
		}}
	for _, in := range integrations {
		w.Specs = append(w.Specs, in.Spec)
	}
	if err := w.Register(exporter.Meter()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	go w.Run(ctx, cfg.MetricsRefresh)
	return nil
}

// newWorkers builds one worker per task queue: the workflow worker (the
// integrations' workflows and local activities) and one per target, capped to
// the rate its vendor allows. What runs where comes from the integrations.
func newWorkers(c client.Client, cfg config.Worker, st *store.Store, integrations []spine.Integration, exporter *metrics.Exporter) (workers []worker.Worker, queues []string, err error) {
	targets := map[string]config.Target{api.TaskQueueCRM: cfg.CRM, api.TaskQueueCRMPoll: cfg.CRM, api.TaskQueueChat: cfg.Chat, api.TaskQueueBilling: cfg.Billing}
	policy := activities.Policy{
		Operators:                cfg.Operators,
		Targets:                  map[string]activities.TargetPolicy{},
		InvoiceApprovalThreshold: cfg.InvoiceApprovalThreshold,
		LeadRoutes:               cfg.LeadRoutes,
		SLAs:                     map[string]activities.SLA{},
	}
	for queue, t := range targets {
		policy.Targets[queue] = activities.TargetPolicy{Timeout: t.Timeout, RetryWindow: t.RetryWindow}
	}
	for kind, o := range cfg.SLAs {
		policy.SLAs[kind] = activities.SLA{SLA: o.SLA, Deadline: o.Deadline}
	}
	// Each target's HTTP client spaces the requests of every worker process
	// at the target's rate (send times reserved in PostgreSQL, so that two
	// processes do not each send at the vendor's limit); the server also caps
	// a queue's activities across all workers.
	httpClient := func(queue string, t config.Target) *http.Client {
		hc := rest.SharedHTTPClient(t.Timeout, t.Rate, store.SendSlots{Store: st, Target: queue})
		if exporter != nil {
			rest.Observed(hc, exporter.Vendor(queue))
		}
		return hc
	}
	keys, err := cfg.DecisionKeys.PublicKeys() // checked by Validate
	if err != nil {
		return nil, nil, err
	}
	consoleKeys, err := cfg.DecisionKeys.ConsolePublicKeys()
	if err != nil {
		return nil, nil, err
	}
	deps := spine.Deps{
		DecisionKeys: keys,
		ConsoleKeys:  consoleKeys,
		Temporal:     c,
		Store:        st,
		Policy:       policy,
		CRM:          crm.New(cfg.CRMBaseURL, cfg.CRMToken, httpClient(api.TaskQueueCRM, cfg.CRM)),
		Billing:      billing.New(cfg.BillingBaseURL, cfg.BillingAPIKey, httpClient(api.TaskQueueBilling, cfg.Billing)),
		Chat: &activities.Chat{Client: chat.New(cfg.ChatWebhooks, cfg.ChatWebhookBaseURL, httpClient(api.TaskQueueChat, cfg.Chat)), Store: st,
			UIBaseURL: cfg.UIBaseURL, Namespace: cfg.Namespace, Lease: cfg.Chat.Timeout + 5*time.Second, AlertInterval: cfg.AlertInterval},
	}
	const stopTimeout = 10 * time.Second
	// Under Worker Versioning every worker of the process polls as one
	// version of the deployment; items auto-upgrade to the current version.
	var deployment worker.DeploymentOptions
	if cfg.DeploymentName != "" {
		deployment = worker.DeploymentOptions{UseVersioning: true,
			Version:                   worker.WorkerDeploymentVersion{DeploymentName: cfg.DeploymentName, BuildID: cfg.Build()},
			DefaultVersioningBehavior: workflow.VersioningBehaviorAutoUpgrade}
	}
	byQueue := map[string]worker.Worker{
		api.TaskQueueIntegrations: worker.New(c, api.TaskQueueIntegrations, worker.Options{LocalActivityWorkerOnly: true, WorkerStopTimeout: stopTimeout,
			DeploymentOptions: deployment}),
	}
	workers, queues = []worker.Worker{byQueue[api.TaskQueueIntegrations]}, []string{api.TaskQueueIntegrations}
	for _, wf := range spine.Workflows(integrations) {
		byQueue[api.TaskQueueIntegrations].RegisterWorkflowWithOptions(wf.Fn, workflow.RegisterOptions{Name: wf.Name})
	}
	for _, a := range spine.Registrations(integrations) {
		w, ok := byQueue[a.Queue]
		if !ok {
			t, known := targets[a.Queue]
			if !known {
				return nil, nil, fmt.Errorf("activities %s run on task queue %q, which has no settings in config.Worker", a.Type, a.Queue)
			}
			w = worker.New(c, a.Queue, worker.Options{
				DisableWorkflowWorker:              true,
				TaskQueueActivitiesPerSecond:       t.Rate,
				MaxConcurrentActivityExecutionSize: t.Concurrency,
				WorkerStopTimeout:                  stopTimeout,
				DeploymentOptions:                  deployment,
			})
			byQueue[a.Queue] = w
			workers, queues = append(workers, w), append(queues, a.Queue)
		}
		w.RegisterActivity(a.Build(deps))
	}
	return workers, queues, nil
}

// ensureSchedules creates each integration's schedules — its poll, its
// nightly reconcile run — or updates their times to the configured ones. A
// run still going when the next is due is not overlapped: that one is skipped.
func ensureSchedules(ctx context.Context, c client.Client, cfg config.Worker, integrations []spine.Integration, logger *slog.Logger) error {
	for _, in := range integrations {
		if in.Poll != nil {
			id, every := api.ScheduleID(in.Spec.Name), in.Poll.Every(cfg)
			err := ensureSchedule(ctx, c, id, client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
				&client.ScheduleWorkflowAction{ID: id, Workflow: in.Poll.WorkflowType, TaskQueue: api.TaskQueueIntegrations,
					Args: []any{map[string]any{}}, StaticSummary: "Poll " + in.Spec.Source + " and " + in.Spec.Target + " for changed records of " + in.Spec.Name})
			if err != nil {
				return err
			}
			logger.Info("poll scheduled", "schedule", id, "every", every)
		}
		if in.Reconcile != nil {
			id := api.ReconcileScheduleID(in.Spec.Name)
			hour, minute := cfg.ReconcileTime()
			err := ensureSchedule(ctx, c, id, client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
				Hour: []client.ScheduleRange{{Start: hour}}, Minute: []client.ScheduleRange{{Start: minute}}}}},
				&client.ScheduleWorkflowAction{ID: api.ReconcileID(in.Spec.Name), Workflow: api.WorkflowReconcile, TaskQueue: api.TaskQueueIntegrations,
					Args: []any{api.ReconcileInput{Integration: in.Spec.Name, StartedBy: "schedule"}}, StaticSummary: "Reconcile " + in.Spec.Name + ": compare " + in.Spec.Source + ", " + in.Spec.Target + " and the last synced values"})
			if err != nil {
				return err
			}
			logger.Info("reconcile run scheduled", "schedule", id, "at", cfg.ReconcileAt+" UTC")
		}
	}
	return nil
}

// ensureSchedule creates schedule id, or sets its spec when it exists.
func ensureSchedule(ctx context.Context, c client.Client, id string, spec client.ScheduleSpec, action *client.ScheduleWorkflowAction) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{ID: id, Spec: spec, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, Action: action})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		err = c.ScheduleClient().GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
			DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
				s := u.Description.Schedule
				s.Spec = &spec
				return &client.ScheduleUpdate{Schedule: &s}, nil
			},
		})
	}
	if err != nil {
		return fmt.Errorf("set up schedule %s: %w", id, err)
	}
	return nil
}

// ensureSearchAttributes checks that the namespace has signalbox's custom search
// attributes with the right types and, when register is set, creates the
// missing ones.
func ensureSearchAttributes(ctx context.Context, ops operatorservice.OperatorServiceClient, namespace string, register bool, logger *slog.Logger) error {
	resp, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, want := range api.SearchAttributes() {
		got, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = want
		case got != want:
			return &misconfigured{fmt.Errorf("search attribute %s exists in namespace %s with type %s, but signalbox needs %s: remove it or use another namespace",
				name, namespace, typeName(got), typeName(want))}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, 0, len(missing))
	for name := range missing {
		names = append(names, name)
	}
	sort.Strings(names)
	if !register {
		var create strings.Builder
		for _, name := range names {
			fmt.Fprintf(&create, " --name %s --type %s", name, typeName(missing[name]))
		}
		return &misconfigured{fmt.Errorf("namespace %s lacks search attributes %s: create them with `temporal operator search-attribute create --namespace %s%s` (or on Temporal Cloud with tcld), or set SIGNALBOX_REGISTER_SEARCH_ATTRIBUTES=true",
			namespace, strings.Join(names, ", "), namespace, create.String())}
	}
	_, err = ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) { // another worker may have added them first
		return fmt.Errorf("register search attributes %s in namespace %s: %w (create them by hand, see README)", strings.Join(names, ", "), namespace, err)
	}
	logger.Info("registered search attributes", "namespace", namespace, "names", strings.Join(names, ","))
	return nil
}

func typeName(t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD:
		return "Keyword"
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return "Datetime"
	default:
		return strings.TrimPrefix(t.String(), "INDEXED_VALUE_TYPE_")
	}
}
