package workflows

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/workflows/spine"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/store"
)

// fixture runs one workflow in the test suite's environment with every
// activity mocked, and records what the workflow did: audit rows, search
// attribute upserts, notifications.
type fixture struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	mu       sync.Mutex
	audit    []store.AuditEvent
	statuses []api.Status
	kinds    []string
	teams    []string // AssignedTeam upserts
	notified []activities.NotifyInput
	updates  map[string]*updateResult
	// policy is what Begin answers; operators are the operators configured
	// now (the Operators activity).
	policy    activities.Policy
	operators map[string][]string
	// keys, when set, are the operators' public keys: decisions must be signed.
	keys        map[string]ed25519.PublicKey
	consoleKeys map[string]ed25519.PublicKey
	resolutions []activities.RecordResolutionInput
	baselines   []store.Link // links saved without a write
	// deferAlerts answers that many alerts "deferred" (aggregated).
	deferAlerts int
	// onAudit, if set, sees every audit row as it is recorded.
	onAudit func([]store.AuditEvent)
	notify  *testsuite.MockCallWrapper
}

// quiet lets a test whose item posts nothing pass without a Notify call.
func (f *fixture) quiet() { f.notify.Maybe() }

type updateResult struct {
	accepted bool
	rejected error
	outcome  api.DecisionOutcome
	err      error
	done     bool
}

var testPolicy = activities.Policy{
	Operators: map[string][]string{"sales": {"alice", "bob"}, "finance": {"carol"}},
	Targets: map[string]activities.TargetPolicy{
		api.TaskQueueCRM:     {Timeout: 5 * time.Second, RetryWindow: 2 * time.Minute},
		api.TaskQueueChat:    {Timeout: 5 * time.Second, RetryWindow: 2 * time.Minute},
		api.TaskQueueBilling: {Timeout: 5 * time.Second, RetryWindow: 2 * time.Minute},
	},
	InvoiceApprovalThreshold: 500_000,
}

// chatActivities is the spine's notification activity, by method value.
var chatActivities *activities.Chat

// choiceNames lists the names of choices.
func choiceNames(choices []api.Choice) []string {
	var names []string
	for _, c := range choices {
		names = append(names, c.Name)
	}
	return names
}

var testStart = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// notifyDelay makes every Notify take d of workflow time.
type notifyDelay time.Duration

func newFixture(t *testing.T, workflowID string, opts ...notifyDelay) *fixture {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflowID, TaskQueue: api.TaskQueueIntegrations})
	f := &fixture{t: t, env: env, updates: map[string]*updateResult{}, operators: testPolicy.Operators, policy: testPolicy}

	// Registered as the workers register them, from the integrations' code.
	integrations, err := Integrations()
	require.NoError(t, err)
	for _, a := range spine.Registrations(integrations) {
		env.RegisterActivity(a.Build(spine.Deps{Chat: &activities.Chat{}}))
	}
	for _, wf := range spine.Workflows(integrations) {
		env.RegisterWorkflowWithOptions(wf.Fn, workflow.RegisterOptions{Name: wf.Name})
	}

	// Every item begins, audits and notifies someone: these mocks must be
	// called (AssertExpectations when the test ends); the integrations' own
	// fakes say which of theirs may go uncalled.
	env.OnActivity(spineActivities.Begin, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BeginInput) (activities.BeginResult, error) {
		f.record(in.Events...)
		return activities.BeginResult{Policy: f.policy}, nil
	})
	env.OnActivity(spineActivities.RecordAudit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RecordAuditInput) error {
		f.record(in.Events...)
		f.mu.Lock()
		hook := f.onAudit
		f.mu.Unlock()
		if hook != nil {
			hook(in.Events)
		}
		return nil
	})
	f.notify = env.OnActivity(chatActivities.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) (activities.NotifyResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.notified = append(f.notified, in)
		if f.deferAlerts > 0 && in.Digest != nil {
			f.deferAlerts--
			return activities.NotifyResult{DeferredUntil: f.env.Now().Add(10 * time.Minute)}, nil
		}
		return activities.NotifyResult{Posted: true}, nil
	})
	for _, d := range opts {
		f.notify.After(time.Duration(d))
	}
	// Operators is the real activity on f.operators and the keys: the
	// configuration as it is now.
	env.OnActivity(spineActivities.Operators, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.OperatorsInput) (activities.OperatorsResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s := &activities.Spine{Policy: activities.Policy{Operators: f.operators}, DecisionKeys: f.keys, ConsoleKeys: f.consoleKeys}
		return s.Operators(ctx, in)
	}).Maybe()
	env.OnActivity(spineActivities.RecordResolution, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RecordResolutionInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.resolutions = append(f.resolutions, in)
		return nil
	}).Maybe()
	env.OnActivity(spineActivities.SaveBaseline, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SaveBaselineInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.baselines = append(f.baselines, in.Link)
		return nil
	}).Maybe()
	t.Cleanup(func() {
		if !t.Failed() {
			env.AssertExpectations(t)
		}
	})
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		f.mu.Lock()
		defer f.mu.Unlock()
		if v, ok := sa.GetKeyword(api.AttrAssignedTeam); ok {
			f.teams = append(f.teams, v)
		}
		if v, ok := sa.GetKeyword(api.AttrIntegrationStatus); ok {
			f.statuses = append(f.statuses, api.Status(v))
		}
		for k, v := range sa.GetUntypedValues() {
			if k.GetName() == api.AttrExceptionKind.GetName() {
				kind, _ := v.(string) // nil: unset
				f.kinds = append(f.kinds, kind)
			}
		}
	}).Return(nil).Maybe()
	return f
}

func (f *fixture) record(events ...store.AuditEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audit = append(f.audit, events...)
}

// at runs fn once the workflow's clock has advanced by d.
func (f *fixture) at(d time.Duration, fn func()) {
	f.env.RegisterDelayedCallback(fn, d)
}

// decide sends the decide update under id and remembers how it ended.
func (f *fixture) decide(id string, d api.Decision) {
	r := &updateResult{}
	f.updates[id] = r
	f.env.UpdateWorkflow(api.UpdateDecide, id, &testsuite.TestUpdateCallback{
		OnAccept: func() { r.accepted = true },
		OnReject: func(err error) { r.rejected = err; r.done = true },
		OnComplete: func(v any, err error) {
			r.done = true
			r.err = err
			if err == nil {
				r.outcome = v.(api.DecisionOutcome)
			}
		},
	}, d)
}

func (f *fixture) signal(payload any) {
	f.env.SignalWorkflow(api.SignalDecision, payload)
}

func (f *fixture) state() api.ItemState {
	f.t.Helper()
	v, err := f.env.QueryWorkflow(api.QueryStatus)
	require.NoError(f.t, err)
	var s api.ItemState
	require.NoError(f.t, v.Get(&s))
	return s
}

func (f *fixture) result() api.Result {
	f.t.Helper()
	require.True(f.t, f.env.IsWorkflowCompleted())
	require.NoError(f.t, f.env.GetWorkflowError())
	var r api.Result
	require.NoError(f.t, f.env.GetWorkflowResult(&r))
	return r
}

// actions lists the audit trail as "action from→to by actor".
func (f *fixture) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.audit))
	for i, e := range f.audit {
		out[i] = e.Action + " " + e.FromStatus + "→" + e.ToStatus + " " + e.Actor
	}
	return out
}

// requireAuditSequence checks that audit rows are numbered 1..n in one run.
func (f *fixture) requireAuditSequence() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, e := range f.audit {
		require.Equal(f.t, i+1, e.Seq, "audit row %d", i)
		require.Equal(f.t, f.audit[0].RunID, e.RunID)
	}
}

func appError(msg string, typ api.ErrorType, nonRetryable bool, details ...any) error {
	return temporal.NewApplicationErrorWithOptions(msg, string(typ), temporal.ApplicationErrorOptions{NonRetryable: nonRetryable, Details: details})
}

// testWriter sends log lines to the test's log, shown only when it fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
