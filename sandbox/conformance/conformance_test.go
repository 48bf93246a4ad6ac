// Package conformance proves the sandbox's HubSpot CRM emulator speaks
// HubSpot's API, not our guess of it: it drives every emulated CRM endpoint
// with HubSpot's official Node client (@hubspot/api-client, pinned in
// package.json) through hubspot.mjs.
package conformance

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/signalbox-dev/signalbox/sandbox/emulator"
)

const token = "conformance-token"

// crmEndpoints are the emulator's CRM endpoints (its request log's names);
// hubspot.mjs must reach each of them.
var crmEndpoints = []string{
	"crm.create", "crm.get", "crm.update", "crm.list", "crm.search", "crm.batch.read",
	"crm.companies.create", "crm.companies.get", "crm.companies.update", "crm.companies.archive",
	"crm.companies.list", "crm.companies.search",
	"crm.companies.batch.read", "crm.companies.batch.create", "crm.companies.batch.update",
}

func TestHubSpotNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: this test drives the sandbox with HubSpot's official Node client (@hubspot/api-client); install Node.js 20 or later, with npm, to run it")
	}
	// The Go test cache knows only the files the test opens: reading these
	// makes a change to the script or its pinned client rerun the test.
	for _, f := range []string{"hubspot.mjs", "package.json", "package-lock.json"} {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
	}
	installClient(t)

	s := emulator.NewServer(token, 1, nil, slog.New(slog.DiscardHandler))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "hubspot.mjs")
	cmd.Env = append(os.Environ(), "HUBSPOT_BASE_URL="+ts.URL, "HUBSPOT_TOKEN="+token)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node hubspot.mjs: %v\n%s", err, out)
	}
	t.Logf("node hubspot.mjs:\n%s", out)

	reached := s.Stats().Requests
	for _, e := range crmEndpoints {
		if reached[e] == 0 {
			t.Errorf("hubspot.mjs never reached the emulator's %s endpoint (requests: %v)", e, reached)
		}
	}
	for e := range reached {
		if !slices.Contains(crmEndpoints, e) {
			t.Errorf("hubspot.mjs reached %s, which this test does not know: add it to crmEndpoints", e)
		}
	}
}

// installClient installs the pinned client from package-lock.json with npm ci
// when node_modules lacks it, showing npm's output only when npm fails.
func installClient(t *testing.T) {
	t.Helper()
	marker := filepath.Join("node_modules", "@hubspot", "api-client", "package.json")
	if _, err := os.Stat(marker); err == nil {
		return
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat %s: %v", marker, err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("node is on PATH but npm is not: install npm, or run `npm ci` in sandbox/conformance, to get @hubspot/api-client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci --no-audit --no-fund in sandbox/conformance: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("npm ci succeeded but %s is missing: %v", marker, err)
	}
}
