package spine

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/connectors/billing"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/store"
	"go.temporal.io/sdk/client"
)

// Integration is everything about one integration that runs: the spec it
// declares (api), its workflow, the activities it calls and the task queue
// each runs on, and how items start. Workers, the starter and the test fixture
// read it; nothing else lists integrations.
type Integration struct {
	Spec api.Spec
	// Workflow is the workflow function, registered as Spec.WorkflowType.
	Workflow any
	// Activities are the activity structs the workflow calls, by task queue;
	// those on api.TaskQueueIntegrations run as local activities.
	Activities []Activities
	Intake     Intake
	// Poll, when set, finds records changed in either system and hands
	// them to their items; a Temporal Schedule runs it.
	Poll *Poll
	// Reconcile, when set, compares its records nightly (see Reconcile).
	Reconcile *Reconcile
}

// Poll is a workflow a Temporal Schedule (api.ScheduleID) starts every
// Every, skipping a run while the previous one still runs.
type Poll struct {
	WorkflowType string
	Workflow     any
	// Every is how often, from the worker's configuration.
	Every func(config.Worker) time.Duration
}

// Activities is one activity struct and the task queue its methods run on.
type Activities struct {
	Queue string
	// Type is the struct's pointer type; Build makes it for a worker.
	Type  reflect.Type
	Build func(Deps) any
}

// On declares that the activities of T run on queue, built by build.
func On[T any](queue string, build func(Deps) T) Activities {
	return Activities{Queue: queue, Type: reflect.TypeFor[T](), Build: func(d Deps) any { return build(d) }}
}

// Deps are what a worker builds activity structs from: its connections,
// made once per process from configuration.
type Deps struct {
	Store   *store.Store
	Policy  activities.Policy
	CRM     *crm.Client
	Billing *billing.Client
	// Chat is the notification activity, built whole by the worker.
	Chat *activities.Chat
	// Temporal is the worker's client: a poll starts items with it.
	Temporal client.Client
	// DecisionKeys are the operators' public keys; see activities.Spine.
	DecisionKeys map[string]ed25519.PublicKey
	// ConsoleKeys are the trusted consoles' public keys; see activities.Spine.
	ConsoleKeys map[string]ed25519.PublicKey
}

// Intake says how the starter starts an integration's items: over HTTP and
// from its command line. An empty Intake means its items are started only by
// signal (invoice-payments: by Stripe's webhooks and reconcile runs).
type Intake struct {
	// Route is the HTTP route (a net/http pattern). A route with {id} takes
	// the item's key from the path; one without takes a record in the body.
	Route string
	// Command is the starter's command for one item; Usage says its arguments.
	Command, Usage string
	// Decode reads a submitted record (route without {id}): it returns the
	// record's own ID (the key unless an Idempotency-Key is given) and the
	// item's input for a starter.
	Decode func(body []byte) (id string, input func(startedBy string) any, err error)
	// Check refuses a key (route with {id}) whose record cannot be synced now;
	// Input is the item's input for a key.
	Check func(ctx context.Context, st Records, key string) error
	Input func(key, startedBy string) any
	// Bulk, when set, is the starter's command that starts an item for
	// every record in one of Statuses (the first is the default), which
	// Keys lists.
	Bulk     string
	Statuses []string
	Keys     func(ctx context.Context, st Records, status string) ([]string, error)
}

// Records is the source of truth an intake reads: PostgreSQL.
type Records = *store.Store

// own are the activities of the spine itself, which every
// integration uses: its audit trail and policy (local) and notifications.
func own() []Activities {
	return []Activities{
		On(api.TaskQueueIntegrations, func(d Deps) *activities.Spine {
			return &activities.Spine{Store: d.Store, Policy: d.Policy, DecisionKeys: d.DecisionKeys, ConsoleKeys: d.ConsoleKeys}
		}),
		On(api.TaskQueueChat, func(d Deps) *activities.Chat { return d.Chat }),
		On(api.TaskQueueIntegrations, func(d Deps) *activities.Items { return &activities.Items{Client: d.Temporal} }),
		On(api.TaskQueueIntegrations, func(d Deps) *activities.Reconciles { return &activities.Reconciles{Store: d.Store, Client: d.Temporal} }),
	}
}

// Registrations lists, for the integrations given, every activity struct
// once with its queue: the spine's own first.
func Registrations(integrations []Integration) []Activities {
	var out []Activities
	seen := map[reflect.Type]string{}
	for _, a := range append(own(), allActivities(integrations)...) {
		if q, ok := seen[a.Type]; ok {
			if q != a.Queue {
				panic(fmt.Sprintf("activities %s declared on queues %s and %s", a.Type, q, a.Queue))
			}
			continue
		}
		seen[a.Type] = a.Queue
		out = append(out, a)
	}
	return out
}

func allActivities(integrations []Integration) []Activities {
	var out []Activities
	for _, in := range integrations {
		out = append(out, in.Activities...)
	}
	return out
}

// queueOf is the queue the activity method fn runs on, as the integration
// (or the spine) declares it.
func (it *Item) queueOf(fn any) (string, bool) {
	name := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	for _, a := range append(own(), it.integration.Activities...) {
		t := a.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if strings.HasPrefix(name, t.PkgPath()+".(*"+t.Name()+").") {
			return a.Queue, true
		}
	}
	return "", false
}
