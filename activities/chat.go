package activities

import (
	"context"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/connectors/chat"
	"github.com/signalbox-dev/signalbox/store"
)

// Chat holds the activity that notifies teams.
type Chat struct {
	Client *chat.Client
	Store  *store.Store
	// UIBaseURL and Namespace build the link to the item in the Temporal UI.
	UIBaseURL string
	Namespace string
	// Lease is how long an attempt holds a notification while posting it; it
	// must outlast one post (the chat timeout).
	Lease time.Duration
}

// NotifyInput is one message to a team's channel.
type NotifyInput struct {
	Team string
	// Key identifies the message across retries and re-runs: "<workflow ID>/<step>".
	Key        string
	WorkflowID string
	Text       string
}

// NotifyResult says whether this call posted.
type NotifyResult struct {
	// Posted is false when an earlier attempt already delivered the message.
	Posted bool
}

// Notify posts the message once per key. The key is claimed in PostgreSQL for
// a lease before posting and marked delivered after, so retries, re-runs and
// two deliveries of the same attempt do not post again; only a crash between
// the post and the mark can repeat it (after the lease), because chat webhooks
// offer no idempotency of their own.
func (a *Chat) Notify(ctx context.Context, in NotifyInput) (NotifyResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (NotifyResult, error) { return a.notify(ctx, in) })
}

func (a *Chat) notify(ctx context.Context, in NotifyInput) (NotifyResult, error) {
	claim, err := a.Store.ClaimNotification(ctx, in.Key, in.Team, in.WorkflowID, a.Lease)
	switch {
	case err != nil:
		return NotifyResult{}, Classify(err)
	case claim == store.AlreadySent:
		activity.GetLogger(ctx).Info("notification already delivered", "key", in.Key)
		return NotifyResult{}, nil
	case claim == store.Busy:
		return NotifyResult{}, temporal.NewApplicationError("another attempt is sending notification "+in.Key+"; retrying once it has", ErrInternal)
	}
	text := in.Text
	if link := a.itemURL(in.WorkflowID); link != "" {
		text += "\n<" + link + "|Open in Temporal UI>"
	}
	if err := a.Client.Post(ctx, in.Team, chat.Message{Text: text}, in.Key); err != nil {
		if rerr := a.Store.ReleaseNotification(context.WithoutCancel(ctx), in.Key); rerr != nil {
			activity.GetLogger(ctx).Warn("could not release the notification claim; a retry waits out the lease", "key", in.Key, "error", rerr)
		}
		return NotifyResult{}, Classify(err)
	}
	return NotifyResult{Posted: true}, Classify(a.Store.MarkNotificationSent(ctx, in.Key))
}

func (a *Chat) itemURL(workflowID string) string {
	if a.UIBaseURL == "" || workflowID == "" {
		return ""
	}
	return strings.TrimSuffix(a.UIBaseURL, "/") + "/namespaces/" + url.PathEscape(a.Namespace) + "/workflows/" + url.PathEscape(workflowID)
}
