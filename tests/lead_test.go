package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/stretchr/testify/require"
)

func TestLeadPostedToTheIntakeEndsSynced(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-lead")
	l := lead(key)
	code, body := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	require.Equal(t, id, body["workflowId"])
	require.NotEmpty(t, body["runId"])

	r := shared.waitResult(t, id)
	require.Equal(t, api.StatusSynced, r.Status)

	contacts := shared.contactsWithEmail(t, l.Email)
	require.Len(t, contacts, 1, "exactly one CRM contact for the lead")
	require.Equal(t, contacts[0].ID, r.ExternalIDs["crm"])
	require.Equal(t, "Ada", contacts[0].Properties["firstname"])

	link, err := shared.db(t).GetLink(context.Background(), api.IntegrationLeadToCRM, key, "crm")
	require.NoError(t, err)
	require.Equal(t, contacts[0].ID, link.TargetID)
	require.Equal(t, id, link.WorkflowID)

	require.Len(t, shared.messagesAbout(t, "Lead "+key+" synced"), 1, "one chat message")
	shared.waitVisible(t, fmt.Sprintf("IntegrationStatus = 'Synced' AND SourceKey = '%s'", key), 1)
	shared.waitVisible(t, fmt.Sprintf("IntegrationName = 'lead-to-crm' AND IntegrationOwner = 'sales' AND SourceKey = '%s' AND ExceptionKind IS NULL", key), 1)

	require.Equal(t, []string{
		"accepted →Pending system", "started Pending→Running system", "synced Running→Synced system",
	}, transitions(shared.auditTrail(t, id)))

	var item api.ItemState
	getJSON(t, shared.IntakeURL()+"/v1/items/"+id, &item)
	require.Equal(t, api.StatusSynced, item.Status)
	require.Equal(t, contacts[0].ID, item.ExternalIDs["crm"])
}

func TestSameLeadPostedTwiceAtOnceGivesOneItemAndOneContact(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-twice")
	l := lead(key)
	l.ID = ""
	var wg sync.WaitGroup
	answers := make([]map[string]any, 2)
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() {
			codes[i], answers[i] = shared.post(t, "/v1/leads", l, map[string]string{"Idempotency-Key": key})
		})
	}
	wg.Wait()
	require.Equal(t, []int{http.StatusAccepted, http.StatusAccepted}, codes)
	require.Equal(t, answers[0]["workflowId"], answers[1]["workflowId"])
	require.Equal(t, answers[0]["runId"], answers[1]["runId"], "the second start returns the running item")

	require.Equal(t, api.StatusSynced, shared.waitResult(t, api.ItemID(api.IntegrationLeadToCRM, key)).Status)
	require.Len(t, shared.contactsWithEmail(t, l.Email), 1)
	shared.waitVisible(t, fmt.Sprintf("SourceKey = '%s'", key), 1)
}

func TestResyncAfterCompletionUpdatesInsteadOfDuplicating(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-resync")
	l := lead(key)
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	code, first := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code)
	shared.waitResult(t, id)

	l.Phone = "+44 20 7946 0000"
	code, second := shared.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code)
	require.NotEqual(t, first["runId"], second["runId"], "a finished item runs again")
	require.Equal(t, api.StatusSynced, shared.waitResult(t, id).Status)

	contacts := shared.contactsWithEmail(t, l.Email)
	require.Len(t, contacts, 1, "a re-sync updates the contact")
	require.Equal(t, "+44 20 7946 0000", contacts[0].Properties["phone"])
	require.Len(t, shared.messagesAbout(t, "Lead "+key+" synced"), 2, "changed content is announced again")
}

func TestInvalidLeadsAreRefusedAndNothingStarts(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-invalid")
	code, body := shared.post(t, "/v1/leads", map[string]any{"id": key, "email": "nope", "consent": true}, nil)
	require.Equal(t, http.StatusBadRequest, code)
	fields := fmt.Sprint(body["fields"])
	for _, f := range []string{"email", "firstName", "lastName"} {
		require.Contains(t, fields, f, "every field error is listed")
	}
	shared.waitVisible(t, fmt.Sprintf("SourceKey = '%s'", key), 0)
	_, err := shared.Client.DescribeWorkflow(context.Background(), api.ItemID(api.IntegrationLeadToCRM, key), "")
	require.Error(t, err, "no workflow was started")
}

func TestStarterCommandStartsALead(t *testing.T) {
	t.Parallel()
	key := uniqueKey(t, "e2e-cli")
	file := t.TempDir() + "/lead.json"
	l := lead(key)
	require.NoError(t, writeJSON(file, l))
	ctx := context.Background()
	stdout, stderr, code, err := shared.Command(ctx, "", "starter", "lead", "--file", file)
	require.NoError(t, err)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "started lead-to-crm:"+key)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, api.ItemID(api.IntegrationLeadToCRM, key)).Status)

	_, stderr, code, err = shared.Command(ctx, `{"email":"x"}`, "starter", "lead", "--file", "-")
	require.NoError(t, err)
	require.Equal(t, 1, code)
	require.True(t, strings.Contains(stderr, "firstName: is required"), stderr)
}
