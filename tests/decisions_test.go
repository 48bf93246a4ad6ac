package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/stretchr/testify/require"
)

func TestOperatorApprovesALeadWithoutConsent(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-consent")
	l := lead(key)
	l.Consent = false
	code, _ := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code)
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	s := shared.waitStatus(t, id, api.StatusBlocked)
	require.Equal(t, api.ConsentMissing, s.Exception.Kind)

	shared.waitVisible(t, fmt.Sprintf("IntegrationStatus = 'Blocked' AND ExceptionKind = 'ConsentMissing' AND SourceKey = '%s'", key), 1)
	out, stderr, code := shared.signals(t, "", "list", "--status", "Blocked", "--integration", "lead-to-crm", "--exception", "ConsentMissing")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, id)
	require.Regexp(t, id+`\s+Blocked\s+ConsentMissing\s+sales: approve\|reject`, out)

	out, stderr, code = shared.signals(t, "", "list", "--status", "Blocked", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.NotEmpty(t, rows)

	_, stderr, code = shared.signals(t, "", "approve", id, "--reason", "looks fine", "--as", "mallory")
	require.Equal(t, 1, code, "an unknown actor is refused")
	require.Contains(t, stderr, `"mallory" may not decide`)
	require.Equal(t, api.StatusBlocked, shared.waitStatus(t, id, api.StatusBlocked).Status, "nothing changed")

	_, stderr, code = shared.signals(t, "", "approve", id, "--as", "alice")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "reason is required")

	out, stderr, code = shared.signals(t, "", "show", id)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "Exception ConsentMissing")
	require.Contains(t, out, "allowed decisions: approve, reject")
	require.Contains(t, out, "raised")

	out, stderr, code = shared.signals(t, "", "approve", id, "--as", "alice", "--reason", "signed consent form #4411")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "approve applied")
	require.Equal(t, api.StatusSynced, shared.waitResult(t, id).Status)
	require.Len(t, shared.contactsWithEmail(t, l.Email), 1)
	shared.waitVisible(t, fmt.Sprintf("IntegrationStatus = 'Synced' AND ExceptionKind IS NULL AND AttentionSince IS NULL AND SourceKey = '%s'", key), 1)

	trail := shared.auditTrail(t, id)
	require.Equal(t, []string{
		"accepted →Pending system", "started Pending→Running system", "raised Running→Blocked system",
		"decision_refused Blocked→Blocked mallory", "approve Blocked→Running alice", "synced Running→Synced system",
	}, transitions(trail), "a decision refused for who made it is audited")
	require.Equal(t, "signed consent form #4411", trail[4].Reason)
}

func TestTemporalCLISignalResumesAnItem(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-signal")
	l := lead(key)
	l.Consent = false
	code, _ := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code)
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	shared.waitStatus(t, id, api.StatusBlocked)

	temporal := func(input string) {
		ctx := context.Background()
		out, err := runTemporal(ctx, "workflow", "signal", "--address", shared.TemporalAddr(), "--namespace", shared.Namespace(), "--workflow-id", id, "--name", api.SignalDecision, "--input", input)
		require.NoError(t, err, out)
	}
	temporal(`{"action":"approve","actor":"nobody","reason":"x"}`)
	temporal(`"approve"`)
	// The documented payload (README, current details):
	temporal(`{"action":"reject","actor":"bob","reason":"no consent on file; do not contact"}`)

	require.Equal(t, api.StatusRejected, shared.waitResult(t, id).Status)
	trail := shared.auditTrail(t, id)
	require.Equal(t, []string{
		"accepted →Pending system", "started Pending→Running system", "raised Running→Blocked system",
		"decision_refused Blocked→Blocked nobody", "decision_refused Blocked→Blocked unknown",
		"reject Blocked→Rejected bob",
	}, transitions(trail))
	require.Empty(t, shared.contactsWithEmail(t, l.Email), "a rejected lead never reaches the CRM")
}

func TestBulkApproveByQuery(t *testing.T) {
	t.Parallel()
	prefix := uniqueKey(t, "e2e-bulk")
	var ids []string
	for i := range 3 {
		l := lead(fmt.Sprintf("%s-%d", prefix, i))
		l.Consent = false
		l.Company = prefix // lets the query find exactly these
		code, body := shared.post(t, "/v1/leads", l, nil)
		require.Equal(t, http.StatusAccepted, code)
		ids = append(ids, body["workflowId"].(string))
	}
	for _, id := range ids {
		shared.waitStatus(t, id, api.StatusBlocked)
	}
	query := fmt.Sprintf("SourceKey STARTS_WITH '%s-'", prefix)
	shared.waitVisible(t, "IntegrationStatus = 'Blocked' AND "+query, 3)

	out, _, code := shared.signals(t, "n\n", "approve", "--query", query, "--reason", "batch consent", "--as", "bob")
	require.Equal(t, 0, code)
	require.Contains(t, out, "3 running item(s) match")
	require.Contains(t, out, "nothing done")

	out, _, code = shared.signals(t, "", "reject", "--query", query, "--reason", "r", "--as", "carol", "--yes")
	require.Equal(t, 1, code, "refusals make the run fail")
	require.Contains(t, out, "done: 0")
	require.Contains(t, out, `refused: 3 — "carol" may not decide`)

	out, stderr, code := shared.signals(t, "y\n", "approve", "--query", query, "--reason", "batch consent", "--as", "bob")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "done: 3")
	for _, id := range ids {
		require.Equal(t, api.StatusSynced, shared.waitResult(t, id).Status)
	}
}

func TestSignalsCLIRefusesBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"approve", "lead-to-crm:does-not-exist", "--reason", "x", "--as", "alice"}, 1, "has ended or does not exist"},
		{[]string{"approve", "not-an-id", "--reason", "x", "--as", "alice"}, 1, "is not an item ID"},
		{[]string{"launch", "x"}, 2, `unknown command "launch"`},
		{[]string{"approve", "--reason", "x"}, 2, "usage: signals approve ID"},
		{[]string{"resolve", "lead-to-crm:x", "--reason", "fixed", "--as", "alice"}, 1, "resolve needs externalRef"},
		{[]string{"list", "--status", "Happy"}, 1, `unknown status "Happy"`},
		{[]string{"list", "--owner", "sales' OR 1=1"}, 1, "a team name is letters"},
		{[]string{"show", "lead-to-crm:does-not-exist"}, 1, "no item lead-to-crm:does-not-exist"},
		{[]string{"describe", "nope"}, 1, `unknown integration "nope"`},
	}
	for _, tc := range cases {
		_, stderr, code := shared.signals(t, "", tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		require.Contains(t, stderr, tc.want, strings.Join(tc.args, " "))
	}
}
