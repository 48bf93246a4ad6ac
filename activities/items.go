package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
)

// Items starts integration items from within a worker: a poll hands the
// records it found changed to their items.
type Items struct {
	Client client.Client
}

// StartItemsInput names the items to start, or to tell to sync again.
type StartItemsInput struct {
	Integration string
	Keys        []string
	StartedBy   string
}

// StartItemsResult counts the items handed the keys.
type StartItemsResult struct {
	Handed int
}

// StartItems starts the item of each key, or, when it runs already, signals
// it to sync again once it is done (api.SignalResync): a change found while
// an item runs is never dropped.
func (a *Items) StartItems(ctx context.Context, in StartItemsInput) (StartItemsResult, error) {
	spec, err := api.SpecByName(in.Integration)
	if err != nil {
		return StartItemsResult{}, err
	}
	var r StartItemsResult
	for _, key := range in.Keys {
		opts := api.StartOptions(spec, key)
		_, err := a.Client.SignalWithStartWorkflow(ctx, opts.ID, api.SignalResync, nil, opts, spec.WorkflowType, api.ItemInput{StartedBy: in.StartedBy})
		if err != nil {
			return r, fmt.Errorf("hand %s to its item: %w", opts.ID, err)
		}
		r.Handed++
	}
	return r, nil
}
