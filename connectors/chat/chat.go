// Package chat posts messages to teams' channels through Slack-compatible
// incoming webhooks.
package chat

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// Message is what is posted; Text uses Slack's mrkdwn.
type Message struct {
	Text string `json:"text"`
}

// Client posts to the webhook of each team.
type Client struct {
	api      *rest.Client
	webhooks map[string]string
	baseURL  string
}

// New returns a client that posts to webhooks[team], or to baseURL/<team> for a
// team without its own webhook (the sandbox serves those); config requires baseURL.
func New(webhooks map[string]string, baseURL string, hc *http.Client) *Client {
	return &Client{
		api:      rest.NewClient("chat", "", hc, nil),
		webhooks: webhooks,
		baseURL:  strings.TrimSuffix(baseURL, "/"),
	}
}

// Post sends msg to the team's channel. The idempotency key goes out as the
// Idempotency-Key header; Slack ignores it, but targets that honour it (and the
// sandbox, which counts duplicates) can use it.
func (c *Client) Post(ctx context.Context, team string, msg Message, idempotencyKey string) error {
	hook, ok := c.webhooks[team]
	if !ok {
		hook = c.baseURL + "/" + url.PathEscape(team)
	}
	return c.api.Do(ctx, rest.Request{
		Method: http.MethodPost,
		Path:   hook,
		Header: http.Header{"Idempotency-Key": {idempotencyKey}},
		Body:   msg,
	}, nil)
}
