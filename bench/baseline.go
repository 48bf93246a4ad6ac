package main

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/connectors/chat"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/workflows"
)

// The baseline is the physical limit signalbox is measured against: a bare
// workflow making the same three calls to the same sandbox endpoints — search,
// create, post — on task queues shaped like signalbox's, with none of the
// spine: no search attributes, no audit, no links, no notification records.
const (
	baselineWorkflow = "BareLead"
	queueWorkflows   = "bench-integrations"
	queueCRM         = "bench-crm"
	queueChat        = "bench-chat"
)

// bareActivities call the sandbox with signalbox's own connectors.
type bareActivities struct {
	crm  *crm.Client
	chat *chat.Client
}

func (a *bareActivities) BareSearch(ctx context.Context, email string) (string, error) {
	found, err := a.crm.Search(ctx, []crm.FilterGroup{crm.Equals(crm.Properties{crm.PropEmail: email})}, []string{crm.PropEmail})
	if err != nil || len(found) == 0 {
		return "", err
	}
	return found[0].ID, nil
}

func (a *bareActivities) BareCreate(ctx context.Context, props crm.Properties) (string, error) {
	c, err := a.crm.Create(ctx, props)
	if id, ok := crm.ExistingID(err); ok {
		return id, nil
	}
	return c.ID, err
}

func (a *bareActivities) BarePost(ctx context.Context, text string) error {
	return a.chat.Post(ctx, "bench", chat.Message{Text: text}, "")
}

var bare *bareActivities

// BareLead is the baseline workflow.
func BareLead(ctx workflow.Context, lead workflows.Lead) (string, error) {
	opts := workflow.ActivityOptions{StartToCloseTimeout: 15 * time.Second, RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second}}
	crmCtx := workflow.WithActivityOptions(ctx, withQueue(opts, queueCRM))
	props := lead.Properties()
	var id string
	if err := workflow.ExecuteActivity(crmCtx, bare.BareSearch, props[crm.PropEmail]).Get(ctx, &id); err != nil {
		return "", err
	}
	if id == "" {
		if err := workflow.ExecuteActivity(crmCtx, bare.BareCreate, props).Get(ctx, &id); err != nil {
			return "", err
		}
	}
	chatCtx := workflow.WithActivityOptions(ctx, withQueue(opts, queueChat))
	return id, workflow.ExecuteActivity(chatCtx, bare.BarePost, fmt.Sprintf("Lead %s synced to CRM contact %s.", lead.ID, id)).Get(ctx, nil)
}

func withQueue(o workflow.ActivityOptions, queue string) workflow.ActivityOptions {
	o.TaskQueue = queue
	return o
}
