package spine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/signalbox-dev/signalbox/api"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/metrics"
	"github.com/signalbox-dev/signalbox/store"
)

// recentDecisions is how many decisions the status query keeps.
const recentDecisions = 10

// The spine's activities, by method value.
var (
	spineActivities *activities.Spine
	chatActivities  *activities.Chat
)

// Item is the spine of one running integration item: its status, its exception
// and decisions, and the audit trail of every change.
type Item struct {
	integration Integration
	spec        api.Spec
	state       api.ItemState
	policy      activities.Policy
	runID       string
	seq         int
	inbox       []*ticket
	hooks       Hooks
	logger      log.Logger
	// meter records the item's metrics; it records nothing on replay.
	meter client.MetricsHandler
	// signals delivers decision signals; signalBusy is true while one is handled.
	signals    workflow.ReceiveChannel
	signalBusy bool
	// usedSignatures are the signatures of decisions accepted so far: a
	// signed decision is applied once.
	usedSignatures map[string]bool
}

// ticket is a decision waiting for the item to apply it.
type ticket struct {
	decision api.Decision
	via      string
	// identity is how the actor is known: api.IdentityVerified or IdentityAsserted.
	identity string
	// exc is the exception the decision was authorised for: it applies to
	// that exception only, never to one raised after it.
	exc     *api.ExceptionState
	team    string
	done    bool
	outcome api.DecisionOutcome
	err     error
}

// Ended is returned when a decision ended the item (reject, resolve, cancel),
// or when the integration ended it (see End). Kind is the exception it ended,
// Ref the external reference of a resolve and Actor who decided.
type Ended struct {
	Status api.Status
	Kind   api.ExceptionKind
	Ref    string
	// Actor is who decided it.
	Actor string
}

func (e Ended) Error() string { return "item ended: " + string(e.Status) }

// Restart is returned by a step whose source changed under it: the
// integration starts its work over from reading the source (Do passes it on).
type Restart struct{ Why string }

func (r Restart) Error() string { return "start over: " + r.Why }

// Hooks are what an integration adds to the spine.
type Hooks struct {
	// Amend checks (and with apply, makes) an amendment of the input; nil when
	// the integration has nothing to amend.
	Amend func(set map[string]string, apply bool) error
	// Ended, if set, runs when a decision ended the item (Rejected,
	// ManuallyResolved, Cancelled), e.g. to write that back to the source;
	// end says which exception it ended, and where a resolved item was fixed.
	Ended func(ctx workflow.Context, it *Item, end Ended) error
	// Leftover, if set, runs last, after everything the item records as it
	// ends, in the workflow task that completes it: work signalled
	// meanwhile (which would be lost with the run) is passed on, by
	// returning a continue-as-new error.
	Leftover func(ctx workflow.Context) error
}

// Run is the frame of every integration workflow: it begins the item,
// registers its handlers, runs the integration's work and records the outcome.
// work returns nil when the item is synced; every step error it meets inside
// Do becomes an exception that waits for a person.
func Run(ctx workflow.Context, integration Integration, in api.ItemInput, h Hooks, work func(workflow.Context, *Item) error) (api.Result, error) {
	it, err := beginItem(ctx, integration, in, h)
	if err != nil {
		return api.Result{}, err
	}
	err = work(ctx, it)
	var end Ended
	switch {
	case err == nil:
		err = it.transition(ctx, api.StatusSynced, api.ActorSystem, "synced", "", nil)
	case errors.As(err, &end):
		err = nil
		if h.Ended != nil {
			err = h.Ended(ctx, it, end)
		}
	case temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled):
		return it.cancelled(ctx)
	case workflow.IsContinueAsNewError(err):
		// The work goes on in a new run of the item (its history stays
		// short); that run begins the item's audit trail again.
		ev := it.event(api.ActorSystem, "continued", it.state.Status, it.state.Status, "continued in a new run", nil)
		if aerr := it.audit(ctx, "Audit: continued in a new run", ev); aerr != nil {
			return api.Result{}, aerr
		}
		if derr := it.drain(ctx); derr != nil {
			return api.Result{}, derr
		}
		return api.Result{}, err
	}
	if err != nil {
		return api.Result{}, err
	}
	if err := it.drain(ctx); err != nil {
		return api.Result{}, err
	}
	if h.Leftover != nil {
		if err := h.Leftover(ctx); err != nil {
			return api.Result{}, err
		}
	}
	return api.Result{Status: it.state.Status, ExternalIDs: it.state.ExternalIDs}, nil
}

func beginItem(ctx workflow.Context, integration Integration, in api.ItemInput, h Hooks) (*Item, error) {
	spec := integration.Spec
	info := workflow.GetInfo(ctx)
	_, key, ok := api.SplitItemID(info.WorkflowExecution.ID)
	if !ok {
		key = info.WorkflowExecution.ID
	}
	it := &Item{
		integration: integration,
		spec:        spec,
		runID:       info.WorkflowExecution.RunID,
		hooks:       h,
		logger:      workflow.GetLogger(ctx),
		meter:       workflow.GetMetricsHandler(ctx),
		state: api.ItemState{
			Integration: spec.Name, WorkflowID: info.WorkflowExecution.ID, SourceKey: key, Owner: spec.Owner,
			Status: api.StatusPending, Attempts: map[string]int{}, ExternalIDs: map[string]string{},
			StartedAt: info.WorkflowStartTime.UTC(), UpdatedAt: info.WorkflowStartTime.UTC(),
		},
	}
	if err := it.registerHandlers(ctx); err != nil {
		return nil, err
	}
	startedBy := in.StartedBy
	if startedBy == "" {
		startedBy = "unknown"
	}
	accepted := it.event(api.ActorSystem, "accepted", "", api.StatusPending, "started by "+startedBy, nil)
	accepted.At = it.state.StartedAt
	it.state.Status = api.StatusRunning
	it.state.UpdatedAt = workflow.Now(ctx).UTC()
	started := it.event(api.ActorSystem, "started", api.StatusPending, api.StatusRunning, "", nil)

	// The first upsert also sets the identity attributes, in case the starter did not.
	err := workflow.UpsertTypedSearchAttributes(ctx,
		api.AttrIntegrationName.ValueSet(spec.Name), api.AttrIntegrationOwner.ValueSet(spec.Owner),
		api.AttrSourceKey.ValueSet(key), api.AttrIntegrationStatus.ValueSet(string(api.StatusRunning)))
	if err != nil {
		return nil, err
	}
	if info.ContinuedExecutionRunID == "" {
		// A run continued as new goes on with an item already counted.
		metrics.ItemStarted(it.meter, spec.Name)
	}
	it.renderDetails(ctx)
	var begun activities.BeginResult
	err = it.Call(ctx, "Begin: audit Pending → Running", spineActivities.Begin, activities.BeginInput{Events: []store.AuditEvent{accepted, started}}, &begun)
	if err != nil {
		return nil, err
	}
	it.policy = begun.Policy
	return it, nil
}

// team is the team the item is assigned to, or the integration's owner.
func (it *Item) Team() string {
	if it.state.Team != "" {
		return it.state.Team
	}
	return it.spec.Owner
}

// setTeam assigns the item to team, published as AssignedTeam.
func (it *Item) setTeam(ctx workflow.Context, team string) error {
	it.state.Team = team
	if err := workflow.UpsertTypedSearchAttributes(ctx, api.AttrAssignedTeam.ValueSet(team)); err != nil {
		return err
	}
	it.renderDetails(ctx)
	return nil
}

// Assign assigns the item to team (a lead routed to a sales team) and audits
// it; its exceptions are decided by that team from then on.
func (it *Item) Assign(ctx workflow.Context, team, actor, reason string) error {
	it.state.UpdatedAt = workflow.Now(ctx).UTC()
	if err := it.setTeam(ctx, team); err != nil {
		return err
	}
	ev := it.event(actor, "assigned", it.state.Status, it.state.Status, reason, map[string]any{"team": team})
	return it.audit(ctx, "Audit assignment to "+team, ev)
}

// localCtx runs spine activities locally, retrying for as long as it takes:
// an audit row must never be skipped.
func localCtx(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
		Summary:             summary,
	})
}

// event builds the next audit event of the run.
func (it *Item) event(actor, action string, from, to api.Status, reason string, details map[string]any) store.AuditEvent {
	it.seq++
	return store.AuditEvent{
		Integration: it.spec.Name, WorkflowID: it.state.WorkflowID, RunID: it.runID, Seq: it.seq,
		At: it.state.UpdatedAt, Actor: actor, Action: action, FromStatus: string(from), ToStatus: string(to),
		Reason: reason, Details: details,
	}
}

func (it *Item) audit(ctx workflow.Context, summary string, events ...store.AuditEvent) error {
	return it.Call(ctx, summary, spineActivities.RecordAudit, activities.RecordAuditInput{Events: events}, nil)
}

// transition moves the item to status `to`: it publishes the search attributes
// and the UI's current details, and writes the audit row.
func (it *Item) transition(ctx workflow.Context, to api.Status, actor, action, reason string, details map[string]any) error {
	from := it.state.Status
	it.state.Status = to
	it.state.UpdatedAt = workflow.Now(ctx).UTC()
	updates := []temporal.SearchAttributeUpdate{api.AttrIntegrationStatus.ValueSet(string(to))}
	switch {
	case to.Waiting():
		updates = append(updates, api.AttrExceptionKind.ValueSet(string(it.state.Exception.Kind)),
			api.AttrAttentionSince.ValueSet(it.state.Exception.Since))
	case from.Waiting():
		updates = append(updates, api.AttrExceptionKind.ValueUnset(), api.AttrAttentionSince.ValueUnset())
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		return err
	}
	if to.Terminal() {
		metrics.ItemEnded(it.meter, it.spec.Name, to)
	}
	it.renderDetails(ctx)
	return it.audit(ctx, fmt.Sprintf("Audit %s → %s", from, to), it.event(actor, action, from, to, reason, details))
}

// cancelled records a cancellation requested through Temporal and ends the run
// as cancelled.
func (it *Item) cancelled(ctx workflow.Context) (api.Result, error) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	it.state.Exception = nil
	if err := it.transition(dctx, api.StatusCancelled, api.ActorSystem, "cancelled", "cancellation requested through Temporal", nil); err != nil {
		return api.Result{}, err
	}
	it.refuseQueued("the item was cancelled")
	if it.hooks.Ended != nil {
		if err := it.hooks.Ended(dctx, it, Ended{Status: api.StatusCancelled}); err != nil {
			return api.Result{}, err
		}
	}
	return api.Result{Status: api.StatusCancelled, ExternalIDs: it.state.ExternalIDs}, temporal.NewCanceledError()
}

// drain refuses decisions still queued and waits until every handler has
// finished, so no update or signal is lost when the workflow completes.
func (it *Item) drain(ctx workflow.Context) error {
	it.refuseQueued(fmt.Sprintf("the item already ended as %s", it.state.Status))
	return workflow.Await(ctx, func() bool {
		return len(it.inbox) == 0 && it.signals.Len() == 0 && !it.signalBusy && workflow.AllHandlersFinished(ctx)
	})
}

func (it *Item) refuseQueued(why string) {
	for _, t := range it.inbox {
		t.finish(api.DecisionOutcome{}, api.Refusal("%s", why))
		it.remember(t.decision, t.via, t.identity, false, why)
	}
	it.inbox = nil
}

func (t *ticket) finish(outcome api.DecisionOutcome, err error) {
	t.done, t.outcome, t.err = true, outcome, err
}

// remember keeps a decision for the status query, and counts it.
func (it *Item) remember(d api.Decision, via, identity string, applied bool, refusal string) {
	outcome := metrics.Refused
	if applied {
		outcome = metrics.Applied
	}
	metrics.Decision(it.meter, it.spec.Name, d.Action, outcome, via)
	it.state.Decisions = append(it.state.Decisions, api.DecisionRecord{Decision: d, At: it.state.UpdatedAt, Via: via, Applied: applied, Refusal: refusal, Identity: identity})
	if n := len(it.state.Decisions); n > recentDecisions {
		it.state.Decisions = slices.Clone(it.state.Decisions[n-recentDecisions:])
	}
}

// snapshot copies the state for the query.
func (it *Item) snapshot() api.ItemState {
	s := it.state
	s.Attempts = maps.Clone(s.Attempts)
	s.ExternalIDs = maps.Clone(s.ExternalIDs)
	s.Decisions = slices.Clone(s.Decisions)
	if s.Exception != nil {
		e := *s.Exception
		s.Exception = &e
	}
	return s
}
