package tests

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store"
)

// TestDeployingANewVersionWhileItemsWait is the deployment drill of the
// README's "Deploying a new version": workers run under Worker Versioning as
// v1; a lead waits for consent; v2 — a build with a changed step — is
// deployed and made current; the waiting lead finishes on v2 without the
// change (it began before it), and a new lead takes the new step.
func TestDeployingANewVersionWhileItemsWait(t *testing.T) {
	const deployment = "signalbox-drill"
	s := startStack(t, "", "SIGNALBOX_DEPLOYMENT_NAME="+deployment, "SIGNALBOX_BUILD_ID=v1")
	ctx := context.Background()
	h := s.Client.WorkerDeploymentClient().GetHandle(deployment)
	makeCurrent := func(build string) {
		t.Helper()
		// The server learns a version from its pollers: retry until it has.
		require.Eventually(t, func() bool {
			_, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: build})
			return err == nil
		}, waitFor, 200*time.Millisecond, "version %s of %s made current", build, deployment)
	}
	makeCurrent("v1")

	waiting := uniqueKey(t, "drill-waits")
	l := lead(waiting)
	l.Consent = false
	code, body := s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	waitingID := api.ItemID(api.IntegrationLeadToCRM, waiting)
	require.Equal(t, api.ConsentMissing, s.waitStatus(t, waitingID, api.StatusBlocked).Exception.Kind)
	require.Equal(t, "v1", buildOf(t, s, waitingID))

	// v2: the same programs, built with the drill's changed step.
	dir := t.TempDir()
	build := exec.Command("go", "build", "-tags", "deploydrill", "-o", filepath.Join(dir, "workers"), "./workers")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	health, err := stack.FreeAddr()
	require.NoError(t, err)
	v2 := &stack.Process{Name: "workers-v2", Path: filepath.Join(dir, "workers"), LogPath: filepath.Join(dir, "workers-v2.log"),
		Env:      append(append([]string(nil), s.Env...), "SIGNALBOX_BUILD_ID=v2", "SIGNALBOX_WORKER_HEALTH_ADDR="+health),
		ReadyURL: "http://" + health + "/healthz"}
	require.NoError(t, v2.Start(ctx))
	t.Cleanup(func() { _ = v2.Stop(15 * time.Second) })
	makeCurrent("v2")

	// The waiting lead, decided now, finishes on v2 — without the new step.
	_, stderr, code := s.signals(t, "", "approve", waitingID, "--as", "alice", "--reason", "consent given on the phone")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, s.waitResult(t, waitingID).Status)
	require.Equal(t, "v2", buildOf(t, s, waitingID), "the waiting item moved to the current version")
	require.NotContains(t, actionsIn(s.auditTrail(t, waitingID)), "deploy_drill", "an item begun before the change keeps the old path")

	// A new lead starts on v2 and takes the new step.
	fresh := uniqueKey(t, "drill-new")
	code, body = s.post(t, "/v1/leads", lead(fresh), nil)
	require.Equal(t, http.StatusAccepted, code, body)
	freshID := api.ItemID(api.IntegrationLeadToCRM, fresh)
	require.Equal(t, api.StatusSynced, s.waitResult(t, freshID).Status)
	require.Equal(t, "v2", buildOf(t, s, freshID))
	require.Contains(t, actionsIn(s.auditTrail(t, freshID)), "deploy_drill", "a new item takes the new path")
}

// buildOf is the build ID of the worker version an item last ran on.
func buildOf(t *testing.T, s *env, workflowID string) string {
	t.Helper()
	d, err := s.Client.DescribeWorkflowExecution(context.Background(), workflowID, "")
	require.NoError(t, err)
	return d.GetWorkflowExecutionInfo().GetVersioningInfo().GetDeploymentVersion().GetBuildId()
}

func actionsIn(trail []store.AuditEvent) []string {
	var out []string
	for _, e := range trail {
		out = append(out, e.Action)
	}
	return out
}
