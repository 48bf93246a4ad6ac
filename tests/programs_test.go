package tests

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

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
	require.Contains(t, stderr, "namespace "+ns+" lacks search attributes AttentionSince, ExceptionKind, IntegrationName, IntegrationOwner, IntegrationStatus, SourceKey")
	require.Contains(t, stderr, "temporal operator search-attribute create --namespace "+ns+" --name AttentionSince --type Datetime")
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
