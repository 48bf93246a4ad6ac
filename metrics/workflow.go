package metrics

import (
	"slices"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
)

// What workflow code records. h is workflow.GetMetricsHandler(ctx): it
// records nothing while the workflow replays, so each event counts once
// however often its history is replayed, and it adds the SDK's labels
// (namespace, task_queue, workflow_type). Recording adds no command to the
// history: recorded histories replay unchanged.

// Decision outcomes.
const (
	Applied = "applied"
	Refused = "refused"
)

// ItemStarted records that a run of an item began work.
func ItemStarted(h client.MetricsHandler, integration string) {
	h.WithTags(map[string]string{LabelIntegration: integration}).Counter(ItemsStarted).Inc(1)
}

// ItemEnded records that an item reached terminal status.
func ItemEnded(h client.MetricsHandler, integration string, status api.Status) {
	h.WithTags(map[string]string{LabelIntegration: integration, LabelStatus: string(status)}).Counter(ItemsEnded).Inc(1)
}

// ExceptionRaised records an exception the item now waits on in status.
func ExceptionRaised(h client.MetricsHandler, integration string, kind api.ExceptionKind, status api.Status) {
	h.WithTags(map[string]string{LabelIntegration: integration, LabelException: string(kind), LabelStatus: string(status)}).
		Counter(ExceptionsRaised).Inc(1)
}

// Decision records a decision applied or refused, arrived by via (update,
// signal or deadline). An action that is none of api.Actions (a malformed
// signal) is counted as "invalid", so no sender can add series.
func Decision(h client.MetricsHandler, integration string, action api.Action, outcome, via string) {
	if !slices.Contains(api.Actions, action) {
		action = "invalid"
	}
	h.WithTags(map[string]string{LabelIntegration: integration, LabelAction: string(action), LabelOutcome: outcome, LabelVia: via}).
		Counter(Decisions).Inc(1)
}

// DecisionWaited records how long an exception waited for the decision
// applied to it.
func DecisionWaited(h client.MetricsHandler, integration string, kind api.ExceptionKind, waited time.Duration) {
	h.WithTags(map[string]string{LabelIntegration: integration, LabelException: string(kind)}).Timer(DecisionWait).Record(waited)
}
