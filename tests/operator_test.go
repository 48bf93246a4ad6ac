package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/stretchr/testify/require"
)

// TestOperatorToolsOnTerminatedAndResyncedItems: an item terminated while it
// waits is marked in signals list and explained by signals show; once
// re-synced, list shows its latest run only (every run with --all-runs); and
// show needs no right to create or migrate anything.
func TestOperatorToolsOnTerminatedAndResyncedItems(t *testing.T) {
	ctx := context.Background()
	s := shared
	key := uniqueKey(t, "op-stranded")
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	bySource := fmt.Sprintf("SourceKey = '%s'", key)
	l := lead(key)
	l.Consent = false
	code, body := s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	s.waitStatus(t, id, api.StatusBlocked)

	require.NoError(t, s.Client.TerminateWorkflow(ctx, id, "", "terminated from the UI, say"))
	s.waitVisible(t, fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus = 'Terminated'", id), 1)
	out, errOut, exit := s.signals(t, "", "list", "--query", bySource)
	require.Equal(t, 0, exit, errOut)
	require.Contains(t, out, "Blocked (terminated)")
	var rows []map[string]any
	out, errOut, exit = s.signals(t, "", "list", "--query", bySource, "-o", "json")
	require.Equal(t, 0, exit, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 1)
	require.Equal(t, true, rows[0]["stranded"])
	require.Equal(t, "Terminated", rows[0]["execution"])
	out, errOut, exit = s.signals(t, "", "show", id)
	require.Equal(t, 0, exit, errOut)
	require.Contains(t, out, "Stranded: its run was terminated")
	require.Contains(t, out, "start it again from its source (web-form, key "+key+")")

	// Re-sync: the item's new run is its only row, unless history is asked for.
	l.Consent = true
	code, body = s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	s.waitStatus(t, id, api.StatusSynced)
	s.waitVisible(t, bySource+" AND IntegrationStatus = 'Synced' AND ExecutionStatus = 'Completed'", 1)
	out, errOut, exit = s.signals(t, "", "list", "--query", bySource)
	require.Equal(t, 0, exit, errOut)
	require.Equal(t, 1, strings.Count(out, id), out)
	require.Contains(t, out, "Synced")
	require.NotContains(t, out, "terminated")
	out, errOut, exit = s.signals(t, "", "list", "--query", bySource, "--all-runs")
	require.Equal(t, 0, exit, errOut)
	require.Equal(t, 2, strings.Count(out, id), out)
	require.Contains(t, out, "Blocked (terminated)")
	out, errOut, exit = s.signals(t, "", "list", "--status", "Blocked", "--query", bySource)
	require.Equal(t, 0, exit, errOut)
	require.Contains(t, out, "(no items match)", "the terminated run is superseded by the re-sync")

	// An operator whose database user may only read.
	roURL := readOnlyUser(t, s.dbURL)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "signals"), "show", id)
	cmd.Env = append(append([]string(nil), s.Env...), "DATABASE_URL="+roURL)
	raw, err := cmd.CombinedOutput()
	require.NoError(t, err, string(raw))
	require.Contains(t, string(raw), "Audit trail:\n")
	require.NotContains(t, string(raw), "unavailable")
}

// readOnlyUser creates a login role that may read signalbox's tables in the
// database at dbURL and nothing more (no CREATE, no CREATEDB), and returns the
// URL that connects as it.
func readOnlyUser(t *testing.T, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	role := "signalbox_reader_" + hex.EncodeToString(suffix)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	ident := pgx.Identifier{role}.Sanitize()
	for _, sql := range []string{
		"CREATE ROLE " + ident + " LOGIN NOCREATEDB",
		"GRANT CONNECT ON DATABASE " + pgx.Identifier{conn.Config().Database}.Sanitize() + " TO " + ident,
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT USAGE ON SCHEMA public TO " + ident,
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + ident,
	} {
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Logf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		for _, sql := range []string{"DROP OWNED BY " + ident, "DROP ROLE " + ident} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Logf("%s: %v", sql, err)
			}
		}
	})
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	u.User = url.User(role)
	return u.String()
}
