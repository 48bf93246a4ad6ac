package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows"
)

// waitFor is how long an end-to-end wait may take before the test fails.
const waitFor = 60 * time.Second

// uniqueKey makes source keys no other test (or earlier run) uses.
func uniqueKey(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

func lead(key string) workflows.Lead {
	return workflows.Lead{ID: key, Email: key + "@example.com", FirstName: "Ada", LastName: "Lovelace-" + key, Company: "Engines", Consent: true}
}

// post sends body as JSON to the intake and decodes the answer.
func post(t *testing.T, s stackLike, path string, body any, header map[string]string) (int, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.IntakeURL()+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out := map[string]any{}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// stackLike is what the helpers need of a stack (the shared one or a test's own).
type stackLike interface {
	IntakeURL() string
	SandboxURL() string
}

// waitStatus polls the item until it reaches want.
func waitStatus(t *testing.T, id string, want workflows.Status) workflows.ItemState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var last workflows.ItemState
	for {
		s, _, err := workflows.ReadItem(ctx, shared.Client, id)
		if err == nil {
			last = s
			if s.Status == want {
				return s
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not reach %s within %s; last seen %s (exception %+v)", id, want, waitFor, last.Status, last.Exception)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitResult blocks until the item's workflow completes.
func waitResult(t *testing.T, id string) workflows.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var r workflows.Result
	require.NoError(t, shared.Client.GetWorkflow(ctx, id, "").Get(ctx, &r))
	return r
}

// waitVisible polls visibility until query matches want executions.
func waitVisible(t *testing.T, query string, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var got int64
	for {
		resp, err := shared.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err == nil {
			if got = resp.GetCount(); got == want {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("visibility query %q matched %d, want %d (last error: %v)", query, got, want, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type contact struct {
	ID         string            `json:"id"`
	Properties map[string]string `json:"properties"`
}

// contactsWithEmail lists the sandbox CRM's contacts with this email.
func contactsWithEmail(t *testing.T, s stackLike, email string) []contact {
	t.Helper()
	var out struct{ Contacts []contact }
	getJSON(t, s.SandboxURL()+"/_sandbox/contacts", &out)
	var found []contact
	for _, c := range out.Contacts {
		if strings.EqualFold(c.Properties["email"], email) {
			found = append(found, c)
		}
	}
	return found
}

type message struct {
	Team, Text, IdempotencyKey string
}

// messagesAbout lists the sandbox chat messages that mention text.
func messagesAbout(t *testing.T, s stackLike, text string) []message {
	t.Helper()
	var out struct{ Messages []message }
	getJSON(t, s.SandboxURL()+"/_sandbox/messages", &out)
	var found []message
	for _, m := range out.Messages {
		if strings.Contains(m.Text, text) {
			found = append(found, m)
		}
	}
	return found
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

// db opens the stack's database for the test.
func db(t *testing.T) *store.Store {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return store.New(pool)
}

func auditTrail(t *testing.T, id string) []store.AuditEvent {
	t.Helper()
	trail, err := db(t).AuditTrail(context.Background(), id)
	require.NoError(t, err)
	return trail
}

// transitions lists an audit trail as "action from→to actor".
func transitions(trail []store.AuditEvent) []string {
	out := make([]string, len(trail))
	for i, e := range trail {
		out[i] = fmt.Sprintf("%s %s→%s %s", e.Action, e.FromStatus, e.ToStatus, e.Actor)
	}
	return out
}

// signals runs the operator CLI against the shared stack.
func signals(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	stdout, stderr, code, err := shared.Command(ctx, stdin, "signals", args...)
	require.NoError(t, err)
	return stdout, stderr, code
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// runTemporal runs the pinned temporal CLI.
func runTemporal(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(root, "bin", "temporal"), args...).CombinedOutput()
	return string(out), err
}
