package spine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
)

var testStart = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func TestDetailsTellTheOperatorWhatToDo(t *testing.T) {
	t.Parallel()
	it := &Item{state: api.ItemState{WorkflowID: "lead-to-crm:l1", Status: api.StatusBlocked, Exception: &api.ExceptionState{
		Kind: api.DuplicateSuspected, Summary: "contact 88 looks the same", Deciders: "sales",
		Decisions: []api.Action{api.ActionApprove, api.ActionReject}, Choices: []api.Choice{{Name: "merge", Description: "link it"}},
		Details: map[string]string{"contact": "88"}, Since: testStart}}}
	md := it.details()
	for _, want := range []string{
		"### Blocked", "**DuplicateSuspected**: contact 88 looks the same", "team **sales**", "allowed decisions: approve, reject",
		"choice `merge`: link it", "- contact: 88",
		`signals approve 'lead-to-crm:l1' --reason "<why>"`,
		`temporal workflow signal --workflow-id 'lead-to-crm:l1' --name decision --input '{"action":"approve","actor":"<you>","reason":"<why>","choice":"merge"}'`,
	} {
		require.Contains(t, md, want)
	}
	require.Equal(t, `signals amend 'x:y' --set field=value --reason "<why>"`, api.DecideCommand("x:y", api.ActionAmend))
	require.Equal(t, `signals resolve 'x:y' --external-ref <where it was fixed> --reason "<why>"`, api.DecideCommand("x:y", api.ActionResolve))
}
