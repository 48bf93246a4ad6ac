package main

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite docs/integrations from the specs")

func TestVisibilityQuery(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		f    filters
		want string
		err  string
	}{
		{filters{}, "IntegrationName IS NOT NULL", ""},
		{filters{status: "blocked", integration: "lead-to-crm", owner: "sales", exception: "consentmissing", olderThan: 2 * time.Hour},
			"IntegrationName IS NOT NULL AND IntegrationStatus = 'Blocked' AND IntegrationName = 'lead-to-crm' AND IntegrationOwner = 'sales' AND ExceptionKind = 'ConsentMissing' AND AttentionSince < '2026-11-26T10:00:00Z'", ""},
		{filters{query: "SourceKey = 'x'"}, "IntegrationName IS NOT NULL AND (SourceKey = 'x')", ""},
		{filters{status: "Happy"}, "", `unknown status "Happy"`},
		{filters{integration: "fax-to-email"}, "", `unknown integration "fax-to-email"`},
		{filters{owner: "sales' OR 'a'='a"}, "", "a team name is letters"},
		{filters{team: "sales-dach", exception: "routingunclear"}, "IntegrationName IS NOT NULL AND AssignedTeam = 'sales-dach' AND ExceptionKind = 'RoutingUnclear'", ""},
		{filters{team: "x' OR 'a'='a"}, "", "a team name is letters"},
		{filters{exception: "Oops"}, "", `unknown exception kind "Oops"`},
		{filters{olderThan: -time.Hour}, "", "must not be negative"},
	}
	for _, tc := range cases {
		got, err := tc.f.visibilityQuery(now)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 45 * time.Second: "45s", 12 * time.Minute: "12m",
		3*time.Hour + 4*time.Minute: "3h4m", 51 * time.Hour: "2d3h",
	} {
		require.Equal(t, want, humanDuration(d))
	}
}

func TestWaitingFor(t *testing.T) {
	t.Parallel()
	require.Equal(t, "sales: approve|reject", waitingFor("lead-to-crm", "", api.ConsentMissing))
	require.Equal(t, "sales-dach: approve|reject", waitingFor("lead-to-crm", "sales-dach", api.ConsentMissing), "the routed team decides")
	require.Equal(t, "sales-ops: approve|reject", waitingFor("lead-to-crm", "sales-dach", api.RoutingUnclear), "the spec's team, whatever the item's")
	require.Equal(t, "a decision", waitingFor("nope", "", api.ConsentMissing))
}

func TestFlagsMayFollowTheID(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	reason := fs.String("reason", "", "")
	set := setFlag{}
	fs.Var(set, "set", "")
	pos, err := parseArgs(fs, []string{"lead-to-crm:a", "--reason", "r", "--set", "email=a@b.co", "--set", "phone=1"})
	require.NoError(t, err)
	require.Equal(t, []string{"lead-to-crm:a"}, pos)
	require.Equal(t, "r", *reason)
	require.Equal(t, setFlag{"email": "a@b.co", "phone": "1"}, set)
	require.ErrorContains(t, set.Set("email=x"), "set twice")
	require.ErrorContains(t, set.Set("novalue"), "want field=value")
}

func newTestApp() (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, now: time.Now}, &out, &errOut
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("SIGNALBOX_OPERATOR", "alice")
	cases := []struct {
		args []string
		want string
		err  error
	}{
		{nil, "signals is signalbox's operator CLI", errUsage},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, errUsage},
		{[]string{"show"}, "usage: signals show ID", errUsage},
		{[]string{"approve", "a:b", "c:d", "--reason", "x"}, "usage: signals approve ID", errUsage},
		{[]string{"list", "-o", "yaml"}, "-o must be table or json", errUsage},
		{[]string{"list", "--limit", "0"}, "--limit must be at least 1", errUsage},
		{[]string{"describe"}, "integrations: lead-to-crm", errUsage},
		// The payload is checked before any connection is made.
		{[]string{"approve", "lead-to-crm:a"}, "refused: incomplete decision: reason is required", errRefused},
		{[]string{"amend", "lead-to-crm:a", "--reason", "x"}, "amend needs at least one field in set", errRefused},
		{[]string{"approve", "lead-to-crm:a", "--reason", "x", "--set", "a=b"}, "set is only for amend", errRefused},
	}
	for _, tc := range cases {
		a, _, errOut := newTestApp()
		err := a.run(context.Background(), tc.args)
		require.ErrorIs(t, err, tc.err, "%v", tc.args)
		require.Contains(t, errOut.String(), tc.want, "%v", tc.args)
	}
}

func TestActorDefaults(t *testing.T) {
	a, _, _ := newTestApp()
	a.cfg.Operator = "bob"
	require.Equal(t, "carol", a.actor("carol"))
	require.Equal(t, "bob", a.actor(""))
	a.cfg.Operator = ""
	require.NotEmpty(t, a.actor(""), "falls back to the OS user")
}

// TestIntegrationCardsAreCurrent keeps docs/integrations in step with the
// specs; `make docs` rewrites them.
func TestIntegrationCardsAreCurrent(t *testing.T) {
	for _, spec := range api.Specs() {
		var b bytes.Buffer
		writeCardMarkdown(&b, spec)
		path := filepath.Join("..", "docs", "integrations", spec.Name+".md")
		if *update {
			require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
			continue
		}
		onDisk, err := os.ReadFile(path)
		require.NoError(t, err, "run `make docs`")
		require.Equal(t, b.String(), string(onDisk), "%s is stale: run `make docs`", path)
	}
}

func TestDescribeText(t *testing.T) {
	t.Parallel()
	a, out, _ := newTestApp()
	require.NoError(t, a.describe([]string{"lead-to-crm"}))
	for _, want := range []string{"owner: sales", "ConsentMissing → Blocked", "decisions: approve, reject (by team sales)",
		"deadline: reject after 14d", "choices: merge (", "ManuallyResolved"} {
		require.Contains(t, out.String(), want)
	}
	require.Regexp(t, `\nemail +email +web-form +to crm +ask: Conflict with both values +yes `, out.String(), "columns widen with the longest field name")
	require.Regexp(t, `\nphone +phone +web-form +to crm +ask: Conflict`, out.String(), "every field shows its rule, from the spec the workflow runs")
}

func TestHealthcheckAnswersByTheEndpointsStatus(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	var out, errOut strings.Builder
	a := &app{stdout: &out, stderr: &errOut}
	require.NoError(t, a.run(context.Background(), []string{"healthcheck", ok.URL + "/healthz"}))
	require.ErrorContains(t, a.run(context.Background(), []string{"healthcheck", down.URL + "/healthz"}), "503")
	require.ErrorIs(t, a.run(context.Background(), []string{"healthcheck", "ftp://x"}), errUsage)
	require.ErrorIs(t, a.run(context.Background(), []string{"healthcheck"}), errUsage)
}
