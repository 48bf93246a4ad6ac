package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/stack"
)

// runProgram runs one of the built programs with the shared stack's
// environment plus env, and returns its exit code and stderr.
func runProgram(t *testing.T, name string, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, name))
	cmd.Env = append(append([]string(nil), shared.Env...), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil {
		require.ErrorAs(t, err, &exit)
		return exit.ExitCode(), stderr.String()
	}
	return 0, stderr.String()
}

func TestWorkerStopsOnOneClearLineForBadConfig(t *testing.T) {
	t.Parallel()
	code, stderr := runProgram(t, "workers", "SIGNALBOX_CRM_RATE=fast")
	require.Equal(t, 1, code)
	require.Equal(t, "workers: config: SIGNALBOX_CRM_RATE=\"fast\" is not a valid number (invalid syntax)\n", stderr)

	code, _ = runProgram(t, "starter", "TEMPORAL_ADDRESS=nowhere")
	require.Equal(t, 2, code, "no command is a usage error")
	code, stderr = runProgram(t, "sandbox", "SIGNALBOX_SANDBOX_FAULTS={\"crm.create\":{\"rate5xx\":2}}")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "rate5xx must be between 0 and 1")
}

func TestWorkerNamesMissingSearchAttributesWhenNotAllowedToRegister(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := "bare-" + strings.ReplaceAll(uniqueKey(t, "ns"), "-", "")
	_, err := shared.Client.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	require.NoError(t, err)
	nc, err := client.NewNamespaceClient(client.Options{HostPort: shared.TemporalAddr()})
	require.NoError(t, err)
	defer nc.Close()
	require.Eventually(t, func() bool { _, err := nc.Describe(ctx, ns); return err == nil }, waitFor, 100*time.Millisecond)

	code, stderr := runProgram(t, "workers", "TEMPORAL_NAMESPACE="+ns, "SIGNALBOX_REGISTER_SEARCH_ATTRIBUTES=false")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "namespace "+ns+" lacks search attributes AssignedTeam, AttentionSince, ExceptionKind, IntegrationName, IntegrationOwner, IntegrationStatus, SourceKey")
	require.Contains(t, stderr, "temporal operator search-attribute create --namespace "+ns+" --name AssignedTeam --type Keyword --name AttentionSince --type Datetime")
}

func TestWorkerStopsGracefullyOnSIGTERM(t *testing.T) {
	t.Parallel()
	addr, err := stack.FreeAddr()
	require.NoError(t, err)
	p := &stack.Process{
		Name: "second worker", Path: filepath.Join(binDir, "workers"),
		Env:     append(append([]string(nil), shared.Env...), "SIGNALBOX_WORKER_HEALTH_ADDR="+addr),
		LogPath: filepath.Join(t.TempDir(), "worker.log"), ReadyURL: "http://" + addr + "/healthz",
	}
	require.NoError(t, p.Start(context.Background()))
	require.NoError(t, p.Stop(20*time.Second), "exits 0 on SIGTERM within the stop timeout:\n%s", p.Tail(20))
}

// TestHostileBodiesAreRefusedWithoutStartingAnything sends the real intake
// bodies no web form should: every one is a 4xx with a specific message, none
// a 5xx, and no item starts.
func TestHostileBodiesAreRefusedWithoutStartingAnything(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "hostile")
	cases := []struct {
		name, contentType, auth, body string
		status                        int
		want                          string
	}{
		{"no credentials", "application/json", "", `{"id":"` + key + `"}`, http.StatusUnauthorized, "Authorization: Bearer"},
		{"wrong token", "application/json", "Bearer not-the-token-0123456789", `{"id":"` + key + `"}`, http.StatusUnauthorized, "Authorization: Bearer"},
		{"malformed", "application/json", "", `{"id":"` + key + `",`, http.StatusBadRequest, "the JSON ends too early"},
		{"truncated", "application/json", "", `{"id":"` + key, http.StatusBadRequest, "the JSON ends too early"},
		{"oversized", "application/json", "", `{"id":"` + strings.Repeat("x", 70_000) + `"}`, http.StatusRequestEntityTooLarge, "exceeds"},
		{"wrong type", "application/json", "", `{"id":"` + key + `","consent":"yes"}`, http.StatusBadRequest, "field consent must be a bool"},
		{"unknown field", "application/json", "", `{"id":"` + key + `","admin":true}`, http.StatusBadRequest, `unknown field "admin"`},
		{"deeply nested", "application/json", "", `{"id":` + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + `}`, http.StatusBadRequest, "field id must be a string"},
		{"not UTF-8", "application/json", "", "{\"id\":\"" + key + "\",\"firstName\":\"\xc3\x28\"}", http.StatusBadRequest, "not valid UTF-8"},
		{"not JSON", "text/plain", "", "id=" + key, http.StatusUnsupportedMediaType, "application/json"},
		{"key with an email", "application/json", "", `{"id":"ada@example.com","email":"ada@example.com","firstName":"A","lastName":"B"}`, http.StatusBadRequest, "never personal data"},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(http.MethodPost, shared.IntakeURL()+"/v1/leads", strings.NewReader(tc.body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", tc.contentType)
		if tc.auth == "" {
			tc.auth = "Bearer " + stack.IntakeToken
		}
		if tc.name != "no credentials" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, tc.name)
		var body struct {
			Error  string
			Fields api.FieldErrors
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		require.Equal(t, tc.status, resp.StatusCode, tc.name)
		require.Contains(t, body.Error+" "+body.Fields.Error(), tc.want, tc.name)
	}
	_, err := shared.Client.DescribeWorkflow(context.Background(), api.ItemID(api.IntegrationLeadToCRM, key), "")
	require.Error(t, err, "no item was started")
}
