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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
	"github.com/signalbox-dev/signalbox/workflows"
)

// env is a running stack and its database, as the tests use them.
type env struct {
	*stack.Stack
	dbURL  string
	dbOnce sync.Once
	pool   *pgxpool.Pool
	dbErr  error
}

// close releases the env's database pool.
func (s *env) close() {
	if s.pool != nil {
		s.pool.Close()
	}
}

// waitFor is how long an end-to-end wait may take before the test fails.
const waitFor = 60 * time.Second

// uniqueKey makes source keys no other test (or earlier run) uses.
func uniqueKey(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

func lead(key string) workflows.Lead {
	return workflows.Lead{ID: key, Email: key + "@example.com", FirstName: "Ada", LastName: "Lovelace-" + key, Company: "Engines", Consent: true}
}

// tryPost sends body as JSON to the intake and returns the status; it may be
// called from any goroutine.
func (s *env) tryPost(path string, body any) (int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, s.IntakeURL()+path, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+stack.IntakeToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// post sends body as JSON to the intake and decodes the answer.
func (s *env) post(t *testing.T, path string, body any, header map[string]string) (int, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.IntakeURL()+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+stack.IntakeToken)
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

// waitStatus polls the item until it reaches want.
func (s *env) waitStatus(t *testing.T, id string, want api.Status) api.ItemState {
	t.Helper()
	return s.waitStatusIn(t, id, want)
}

// waitStatusIn polls the item until it reaches one of want.
func (s *env) waitStatusIn(t *testing.T, id string, want ...api.Status) api.ItemState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var last, matched api.ItemState
	for {
		state, live, err := api.ReadItem(ctx, s.Client, id)
		if err == nil {
			last = state
			if slices.Contains(want, state.Status) {
				// A state from visibility (the status query timed out on a
				// loaded machine) has no exception details: ask again.
				if live {
					return state
				}
				matched = state
			}
		}
		select {
		case <-ctx.Done():
			if matched.Status != "" {
				return matched
			}
			t.Fatalf("%s did not reach %v within %s; last seen %s (exception %+v)", id, want, waitFor, last.Status, last.Exception)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// postLeads posts n leads keyed prefix-000… through the intake, at most 20 at
// a time, and returns their keys.
func (s *env) postLeads(t *testing.T, prefix string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := range n {
		keys[i] = fmt.Sprintf("%s-%03d", prefix, i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			code, body := s.post(t, "/v1/leads", lead(keys[i]), nil)
			require.Equal(t, http.StatusAccepted, code, body)
		})
	}
	wg.Wait()
	return keys
}

// requireLeadsSynced waits for the leads' items to end, each Synced.
func (s *env) requireLeadsSynced(t *testing.T, keys []string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for _, key := range keys {
		var r api.Result
		require.NoError(t, s.Client.GetWorkflow(ctx, api.ItemID(api.IntegrationLeadToCRM, key), "").Get(ctx, &r))
		require.Equal(t, api.StatusSynced, r.Status, key)
	}
}

// waitResult blocks until the item's workflow completes.
func (s *env) waitResult(t *testing.T, id string) api.Result {
	t.Helper()
	return s.waitResultWithin(t, id, waitFor)
}

// waitResultWithin is waitResult for an item whose faults may take longer.
func (s *env) waitResultWithin(t *testing.T, id string, within time.Duration) api.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var r api.Result
	require.NoError(t, s.Client.GetWorkflow(ctx, id, "").Get(ctx, &r))
	return r
}

// waitVisible polls visibility until query matches want executions.
func (s *env) waitVisible(t *testing.T, query string, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var got int64
	for {
		resp, err := s.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
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
func (s *env) contactsWithEmail(t *testing.T, email string) []contact {
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
func (s *env) messagesAbout(t *testing.T, text string) []message {
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

// waitMessage waits until a chat message mentions text (the team hears at
// once, through an activity of its own).
func (s *env) waitMessage(t *testing.T, text string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.messagesAbout(t, text)) > 0 }, waitFor, 100*time.Millisecond, "no message about %q", text)
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+stack.IntakeToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

// db is the stack's database, opened once per stack.
func (s *env) db(t *testing.T) *store.Store {
	t.Helper()
	s.dbOnce.Do(func() { s.pool, s.dbErr = pgxpool.New(context.Background(), s.dbURL) })
	require.NoError(t, s.dbErr)
	return store.New(s.pool)
}

func (s *env) auditTrail(t *testing.T, id string) []store.AuditEvent {
	t.Helper()
	trail, err := s.db(t).AuditTrail(context.Background(), id)
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

// signals runs the operator CLI against the stack.
func (s *env) signals(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	stdout, stderr, code, err := s.Command(ctx, stdin, "signals", args...)
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

// startStack starts a stack of the test's own, with its own database, fault
// plan and settings, and stops it when the test ends (printing its logs if the
// test failed).
func startStack(t *testing.T, faults string, settings ...string) *env {
	t.Helper()
	return startStackWith(t, func(o *stack.Options) {
		o.SandboxFaults = faults
		o.Env = append(o.Env, settings...)
	})
}

// startStackWith is startStack with the options changed by configure.
func startStackWith(t *testing.T, configure func(*stack.Options)) *env {
	t.Helper()
	url, drop, err := storetest.NewDatabase(storetest.ServerURL())
	require.NoError(t, err)
	dataDir := t.TempDir()
	opts := options(dataDir, url)
	opts.SandboxSeed = 7
	configure(&opts)
	s, err := stack.Start(context.Background(), opts)
	require.NoError(t, err)
	e := &env{Stack: s, dbURL: url}
	t.Cleanup(func() {
		e.close()
		s.Stop()
		if t.Failed() {
			printLogs(dataDir)
		}
		if err := drop(); err != nil {
			t.Logf("drop database: %v", err)
		}
	})
	return e
}

// sandboxRequests reads the sandbox's request log for endpoints matching pattern ("crm.*").
func (s *env) sandboxRequests(t *testing.T, pattern string) []sandboxRequest {
	t.Helper()
	var out struct{ Requests []sandboxRequest }
	getJSON(t, s.SandboxURL()+"/_sandbox/requests?endpoint="+pattern, &out)
	return out.Requests
}

type sandboxRequest struct {
	At time.Time
	// SentAt is when the client sent it, after its rate limit and pauses.
	SentAt        time.Time
	Endpoint      string
	Path          string
	Identity      string
	Attempt       int
	Status        int
	Fault         string
	EarlyRetry    bool
	DuringBackoff bool
	DurationMS    int64
}

type sandboxStats struct {
	Requests              map[string]int
	InFlight              map[string]int
	Faults                map[string]int
	EarlyRetries          int
	RequestsDuringBackoff map[string]int
	DuplicateMessages     int
}

func (s *env) sandboxStats(t *testing.T) sandboxStats {
	t.Helper()
	var st sandboxStats
	getJSON(t, s.SandboxURL()+"/_sandbox/stats", &st)
	return st
}

// setFaults replaces the sandbox's fault plan.
func (s *env) setFaults(t *testing.T, plan string) {
	t.Helper()
	resp, err := http.Post(s.SandboxURL()+"/_sandbox/faults", "application/json", strings.NewReader(plan))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// sendTimes lists when the clients sent reqs, in order. Rates are judged by
// send times, which the clients stamp after their limiter and pauses: on a
// loaded machine arrival times bunch requests that were sent apart.
func sendTimes(t *testing.T, reqs []sandboxRequest) []time.Time {
	t.Helper()
	sent := make([]time.Time, len(reqs))
	for i, r := range reqs {
		require.False(t, r.SentAt.IsZero(), "%s request %s carries no send time", r.Endpoint, r.Identity)
		sent[i] = r.SentAt
	}
	slices.SortFunc(sent, time.Time.Compare)
	return sent
}

// maxInWindow is the most of the (sorted) times within any window of length w.
func maxInWindow(times []time.Time, w time.Duration) int {
	best := 0
	for i, j := 0, 0; j < len(times); j++ {
		for times[j].Sub(times[i]) >= w {
			i++
		}
		best = max(best, j-i+1)
	}
	return best
}

// waitInFlight waits until the sandbox is answering a request at endpoint.
func (s *env) waitInFlight(t *testing.T, endpoint string) {
	t.Helper()
	require.Eventually(t, func() bool { return s.sandboxStats(t).InFlight[endpoint] > 0 }, waitFor, 50*time.Millisecond,
		"no request reached %s", endpoint)
}

// logEarlyRetries logs every request to an identity that saw an early retry.
func (s *env) logEarlyRetries(t *testing.T) {
	t.Helper()
	reqs := s.sandboxRequests(t, "*")
	early := map[string]bool{}
	for _, r := range reqs {
		if r.EarlyRetry {
			early[r.Endpoint+" "+r.Identity] = true
		}
	}
	for _, r := range reqs {
		if early[r.Endpoint+" "+r.Identity] {
			t.Logf("sent %s arrived %s %s %s attempt=%d status=%d fault=%s early=%v took=%dms", r.SentAt.Format("15:04:05.000"), r.At.Format("15:04:05.000"),
				r.Endpoint, r.Identity, r.Attempt, r.Status, r.Fault, r.EarlyRetry, r.DurationMS)
		}
	}
}

// signal sends a raw decision signal with the temporal CLI.
func (s *env) signal(t *testing.T, id, input string) {
	t.Helper()
	out, err := runTemporal(context.Background(), "workflow", "signal", "--address", s.TemporalAddr(), "--namespace", s.Namespace(), "--workflow-id", id,
		"--name", api.SignalDecision, "--input", input)
	require.NoError(t, err, out)
}
