package api

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEverySpecIsConsistent(t *testing.T) {
	t.Parallel()
	for _, s := range Specs() {
		require.NoError(t, s.Check(), s.Name)
		got, err := SpecByName(s.Name)
		require.NoError(t, err)
		require.Equal(t, s.WorkflowType, got.WorkflowType)
	}
	_, err := SpecByName("nope")
	require.ErrorContains(t, err, `unknown integration "nope"`)
}

func TestSpecCheckCatchesMistakes(t *testing.T) {
	t.Parallel()
	base := func() Spec {
		return Spec{Name: "x", WorkflowType: "X", Owner: "team", Source: "src", Target: "dst", Exceptions: []ExceptionSpec{
			{Kind: ConsentMissing, Status: StatusBlocked, Decisions: []Action{ActionApprove, ActionReject}, SLA: time.Hour}}}
	}
	cases := map[string]func(*Spec){
		"approve at the deadline": func(s *Spec) { s.Exceptions[0].Deadline, s.Exceptions[0].AtDeadline = time.Hour, ActionApprove },
		"deadline without action": func(s *Spec) { s.Exceptions[0].Deadline = time.Hour },
		"no decisions":            func(s *Spec) { s.Exceptions[0].Decisions = nil },
		"not waiting":             func(s *Spec) { s.Exceptions[0].Status = StatusSynced },
		"no SLA":                  func(s *Spec) { s.Exceptions[0].SLA = 0 },
		"declared twice":          func(s *Spec) { s.Exceptions = append(s.Exceptions, s.Exceptions[0]) },
		"unknown action":          func(s *Spec) { s.Exceptions[0].Decisions = []Action{"shrug"} },
		"choices without approve": func(s *Spec) {
			s.Exceptions[0].Decisions, s.Exceptions[0].Choices = []Action{ActionReject}, []Choice{{Name: "a"}}
		},
		"no owner": func(s *Spec) { s.Owner = "" },
		"unknown rule": func(s *Spec) {
			s.Fields = []Field{{Name: "a", TargetName: "a", Owner: "src", Direction: DirToTarget, Rule: "coin-toss"}}
		},
		"rule without direction": func(s *Spec) { s.Fields = []Field{{Name: "a", TargetName: "a", Owner: "src", Rule: RuleAsk}} },
		"direction against owner": func(s *Spec) {
			s.Fields = []Field{{Name: "a", TargetName: "a", Owner: "src", Direction: DirToSource, Rule: RuleAsk}}
		},
		"latest-wins on an owned field": func(s *Spec) {
			s.Fields = []Field{{Name: "a", TargetName: "a", Owner: "src", Direction: DirToTarget, Rule: RuleLatestWins}}
		},
		"two-way without latest-wins": func(s *Spec) {
			s.Fields = []Field{{Name: "a", TargetName: "a", Owner: OwnerBoth, Direction: DirTwoWay, Rule: RuleAsk}}
		},
		"synced field without a target name": func(s *Spec) { s.Fields = []Field{{Name: "a", Owner: "src", Direction: DirToTarget, Rule: RuleAsk}} },
		"bad name":                           func(s *Spec) { s.Name = "has space" },
	}
	for name, breakIt := range cases {
		s := base()
		breakIt(&s)
		require.Error(t, s.Check(), name)
	}
	s := base()
	require.NoError(t, s.Check())
	s.Fields = []Field{
		{Name: "a", TargetName: "a", Owner: "src", Direction: DirToTarget, Rule: RuleOwnerWins},
		{Name: "b", TargetName: "b", Owner: "dst", Direction: DirToSource, Rule: RuleAsk},
		{Name: "c", TargetName: "c", Owner: OwnerBoth, Direction: DirTwoWay, Rule: RuleLatestWins},
	}
	require.NoError(t, s.Check())
	require.Equal(t, []string{"to dst", "to src", "two-way"}, []string{s.Direction(s.Fields[0]), s.Direction(s.Fields[1]), s.Direction(s.Fields[2])})
}

func TestDecisionComplete(t *testing.T) {
	t.Parallel()
	ok := Decision{Action: ActionApprove, Actor: "alice", Reason: "r"}
	require.NoError(t, ok.Complete())
	cases := map[string]struct {
		d    Decision
		want string
	}{
		"unknown action": {Decision{Action: "yolo", Actor: "a", Reason: "r"}, `action "yolo" is not one of approve, reject, amend, retry, resolve, cancel`},
		"no actor":       {Decision{Action: ActionApprove, Reason: "r"}, "actor is required"},
		"spaced actor":   {Decision{Action: ActionApprove, Actor: "a b", Reason: "r"}, "actor must be one word"},
		"blank reason":   {Decision{Action: ActionApprove, Actor: "a", Reason: "  "}, "reason is required"},
		"long reason":    {Decision{Action: ActionApprove, Actor: "a", Reason: strings.Repeat("x", 2001)}, "reason must be at most 2000"},
		"resolve no ref": {Decision{Action: ActionResolve, Actor: "a", Reason: "r"}, "resolve needs externalRef"},
		"amend no set":   {Decision{Action: ActionAmend, Actor: "a", Reason: "r"}, "amend needs at least one field"},
		"set on approve": {Decision{Action: ActionApprove, Actor: "a", Reason: "r", Set: map[string]string{"a": "b"}}, "set is only for amend"},
		"bad utf-8":      {Decision{Action: ActionApprove, Actor: "a", Reason: "r\xff"}, "valid UTF-8"},
		"all at once":    {Decision{}, "actor is required; reason is required"},
	}
	for name, tc := range cases {
		err := tc.d.Complete()
		require.ErrorContains(t, err, tc.want, name)
		require.Equal(t, ErrorDecisionRefused, TypeOf(err), name)
	}
}

func TestStatusHelpers(t *testing.T) {
	t.Parallel()
	for _, s := range Statuses {
		require.NotEqual(t, "unknown status", s.Meaning())
		parsed, err := ParseStatus(strings.ToLower(string(s)))
		require.NoError(t, err)
		require.Equal(t, s, parsed)
	}
	require.True(t, StatusBlocked.Waiting())
	require.True(t, StatusFailed.Waiting())
	require.True(t, StatusManuallyResolved.Terminal())
	require.False(t, StatusRunning.Terminal())
	id, key, ok := SplitItemID("lead-to-crm:a:b")
	require.True(t, ok)
	require.Equal(t, "lead-to-crm", id)
	require.Equal(t, "a:b", key)
	_, _, ok = SplitItemID("nokey:")
	require.False(t, ok)
}
