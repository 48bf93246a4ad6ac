package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// message is one chat message the webhook emulator accepted.
type message struct {
	Team           string    `json:"team"`
	Text           string    `json:"text"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	At             time.Time `json:"at"`
}

type chatState struct {
	messages []message
}

func newChatState() *chatState { return &chatState{} }

// duplicates counts messages whose idempotency key was already delivered.
func (c *chatState) duplicates() int {
	seen := map[string]bool{}
	n := 0
	for _, m := range c.messages {
		if m.IdempotencyKey == "" {
			continue
		}
		if seen[m.IdempotencyKey] {
			n++
		}
		seen[m.IdempotencyKey] = true
	}
	return n
}

// chatPost answers like a Slack incoming webhook: "ok", or a short error code.
// Like Slack, it posts again when the same message arrives twice.
func (s *Server) chatPost(r *http.Request, body []byte) result {
	var in struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return result{status: http.StatusBadRequest, body: "invalid_payload"}
	}
	if strings.TrimSpace(in.Text) == "" {
		return result{status: http.StatusBadRequest, body: "no_text"}
	}
	team := r.PathValue("team")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat.messages = append(s.chat.messages, message{Team: team, Text: in.Text, IdempotencyKey: r.Header.Get("Idempotency-Key"), At: s.now().UTC()})
	return result{status: http.StatusOK, body: "ok", effect: true}
}

func (s *Server) getMessages(w http.ResponseWriter, r *http.Request) {
	team := r.URL.Query().Get("team")
	s.mu.Lock()
	out := []message{}
	for _, m := range s.chat.messages {
		if team == "" || m.Team == team {
			out = append(out, m)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"messages": out})
}
