package activities

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/api"
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
	// AlertInterval is the least time between two alerts of one team and
	// exception kind; alerts in between are reported by the next one.
	AlertInterval time.Duration
}

// Digest marks a notification as an alert that an item waits: alerts of one
// team and kind are aggregated (see Chat.AlertInterval).
type Digest struct {
	Kind string
	// Since is when the item began to wait.
	Since time.Time
	// List is the command that lists every item of the kind.
	List string
}

// NotifyInput is one message to a team's channel.
type NotifyInput struct {
	Team string
	// Key identifies the message across retries and re-runs: "<workflow ID>/<step>".
	Key        string
	WorkflowID string
	Text       string
	// Digest, when set, aggregates the message with other alerts of its team and kind.
	Digest *Digest `json:",omitempty"`
}

// NotifyResult says whether this call posted.
type NotifyResult struct {
	// Posted is false when an earlier attempt already delivered the message.
	Posted bool
	// DeferredUntil, when set, says that an alert of the same team and kind
	// went out recently: ask again then, when one message covers them all.
	DeferredUntil time.Time `json:",omitzero"`
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
		return NotifyResult{}, temporal.NewApplicationError("another attempt is sending notification "+in.Key+"; retrying once it has", string(api.ErrorBusy))
	}
	text := in.Text
	var slot store.DigestSlot
	if in.Digest != nil {
		slot, err = a.Store.TakeDigestSlot(ctx, in.Key, in.Team, in.Digest.Kind, in.Digest.Since, a.AlertInterval)
		if err != nil {
			a.release(ctx, in.Key)
			return NotifyResult{}, Classify(err)
		}
		if !slot.Taken {
			return NotifyResult{DeferredUntil: slot.Until}, nil
		}
		if n := len(slot.Covered); n > 0 {
			text += fmt.Sprintf("\n…and %d more waiting on %s for team %s, the oldest since %s: `%s`",
				n, in.Digest.Kind, in.Team, slot.Oldest.Format(time.RFC3339), in.Digest.List)
		}
	}
	if link := a.itemURL(in.WorkflowID); link != "" {
		text += "\n<" + link + "|Open in Temporal UI>"
	}
	if err := a.Client.Post(ctx, in.Team, chat.Message{Text: text}, in.Key); err != nil {
		a.release(ctx, in.Key)
		if slot.Taken {
			if rerr := a.Store.ReleaseDigestSlot(context.WithoutCancel(ctx), in.Team, in.Digest.Kind, slot); rerr != nil {
				activity.GetLogger(ctx).Warn("could not release the alert slot; the next alert waits out the interval", "team", in.Team, "error", rerr)
			}
		}
		return NotifyResult{}, Classify(err)
	}
	if err := a.Store.MarkCovered(ctx, slot.Covered); err != nil {
		return NotifyResult{}, Classify(err)
	}
	return NotifyResult{Posted: true}, Classify(a.Store.MarkNotificationSent(ctx, in.Key))
}

// release gives up the claim of a notification that was not sent, so that a
// retry need not wait out the lease.
func (a *Chat) release(ctx context.Context, key string) {
	if err := a.Store.ReleaseNotification(context.WithoutCancel(ctx), key); err != nil {
		activity.GetLogger(ctx).Warn("could not release the notification claim; a retry waits out the lease", "key", key, "error", err)
	}
}

func (a *Chat) itemURL(workflowID string) string {
	if a.UIBaseURL == "" || workflowID == "" {
		return ""
	}
	return strings.TrimSuffix(a.UIBaseURL, "/") + "/namespaces/" + url.PathEscape(a.Namespace) + "/workflows/" + url.PathEscape(workflowID)
}
