package tests

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/workflows"
)

// TestLeadsGoToTheirTeamAndTwinsArriveOneAfterTheOther: routing rules in
// configuration assign leads to sales teams, sales operations pick the team
// of a lead no single rule takes, a waiting lead is handed to another team;
// and two leads for one person posted at once give one contact and a
// suspected duplicate, not two contacts.
func TestLeadsGoToTheirTeamAndTwinsArriveOneAfterTheOther(t *testing.T) {
	t.Parallel()
	s := startStack(t, "", "SIGNALBOX_LEAD_ROUTES=sales-dach=country:DE|AT|CH;sales-enterprise=size>=1000;sales=otherwise")
	prefix := uniqueKey(t, "route")

	de := lead(prefix + "-de")
	de.Country, de.Consent = "DE", false
	code, body := s.post(t, "/v1/leads", de, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	deID := body["workflowId"].(string)
	st := s.waitStatus(t, deID, api.StatusBlocked)
	require.Equal(t, "sales-dach", st.Team)
	require.Equal(t, "sales-dach", st.Exception.Deciders)
	s.waitVisible(t, fmt.Sprintf("AssignedTeam = 'sales-dach' AND SourceKey = '%s'", de.ID), 1)
	out, stderr, code := s.signals(t, "", "list", "--team", "sales-dach", "--query", fmt.Sprintf("SourceKey = '%s'", de.ID))
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "sales-dach: approve|reject")

	_, stderr, code = s.signals(t, "", "reassign", deID, "--to", "sales", "--as", "dieter", "--reason", "not a DACH account")
	require.Equal(t, 0, code, stderr)
	s.waitMessage(t, deID+" waits for a decision by sales.")
	_, stderr, code = s.signals(t, "", "approve", deID, "--as", "dieter", "--reason", "consent on file")
	require.Equal(t, 1, code, "dieter handed it over")
	require.Contains(t, stderr, "only operators of team sales")
	_, stderr, code = s.signals(t, "", "approve", deID, "--as", "alice", "--reason", "consent on file")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, api.StatusSynced, s.waitResult(t, deID).Status)
	require.Contains(t, transitions(s.auditTrail(t, deID)), "reassign Blocked→Blocked dieter")

	both := lead(prefix + "-ch")
	both.Country, both.CompanySize = "CH", 12000
	code, body = s.post(t, "/v1/leads", both, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	bothID := body["workflowId"].(string)
	st = s.waitStatus(t, bothID, api.StatusBlocked)
	require.Equal(t, api.RoutingUnclear, st.Exception.Kind)
	require.Equal(t, "sales-ops", st.Exception.Deciders)
	s.waitMessage(t, bothID+" waits for a decision by sales-ops.")
	_, stderr, code = s.signals(t, "", "approve", bothID, "--as", "olga", "--choice", "sales-enterprise", "--reason", "a global account")
	require.Equal(t, 0, code, stderr)
	r := s.waitResult(t, bothID)
	require.Equal(t, api.StatusSynced, r.Status)
	require.Len(t, s.messagesAbout(t, "Lead "+both.ID+" synced"), 1)
	for _, m := range s.messagesAbout(t, "Lead "+both.ID+" synced") {
		require.Equal(t, "sales-enterprise", m.Team, "the chosen team hears it is synced")
	}

	// Twins: same name and company, other emails, posted at the same moment.
	first, second := lead(prefix+"-twin-a"), lead(prefix+"-twin-b")
	second.LastName = first.LastName
	var wg sync.WaitGroup
	ids := make([]string, 2)
	for i, l := range []workflows.Lead{first, second} {
		wg.Go(func() {
			code, body := s.post(t, "/v1/leads", l, nil)
			require.Equal(t, http.StatusAccepted, code, body)
			ids[i] = body["workflowId"].(string)
		})
	}
	wg.Wait()
	synced, suspected := 0, 0
	for _, id := range ids {
		st := s.waitStatusIn(t, id, api.StatusSynced, api.StatusBlocked)
		switch st.Status {
		case api.StatusSynced:
			synced++
		case api.StatusBlocked:
			require.Equal(t, api.DuplicateSuspected, st.Exception.Kind)
			suspected++
		}
	}
	require.Equal(t, 1, synced, "one of the twins created its contact")
	require.Equal(t, 1, suspected, "the other waited for it, then found it")
	require.Len(t, append(s.contactsWithEmail(t, first.Email), s.contactsWithEmail(t, second.Email)...), 1, "one contact between them")
}
