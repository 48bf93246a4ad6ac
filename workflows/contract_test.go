package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/connectors/crm"
)

func TestLeadValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(*Lead)
		want   map[string]string
	}{
		{"valid", func(*Lead) {}, nil},
		{"everything missing", func(l *Lead) { *l = Lead{} }, map[string]string{"email": "is required", "firstName": "is required", "lastName": "is required"}},
		{"display name", func(l *Lead) { l.Email = "Ada <ada@example.com>" }, map[string]string{"email": "must be an address like name@example.com"}},
		{"no dot in domain", func(l *Lead) { l.Email = "ada@localhost" }, map[string]string{"email": "must be an address like name@example.com"}},
		{"two at signs", func(l *Lead) { l.Email = "a@b@example.com" }, map[string]string{"email": "must be an address like name@example.com"}},
		{"long name", func(l *Lead) { l.FirstName = strings.Repeat("é", 101) }, map[string]string{"firstName": "must be at most 100 characters"}},
		{"control characters", func(l *Lead) { l.Company = "Acme\x00" }, map[string]string{"company": "must not contain control characters"}},
		{"not utf-8", func(l *Lead) { l.LastName = "Lovel\xffce" }, map[string]string{"lastName": "must be valid UTF-8"}},
		{"phone", func(l *Lead) { l.Phone = "call me maybe" }, map[string]string{"phone": "must be digits, spaces and + ( ) . - only, 5 to 30 characters"}},
		{"good phone", func(l *Lead) { l.Phone = "+44 (20) 7946-0000" }, nil},
		{"bad id", func(l *Lead) { l.ID = "has space" }, map[string]string{"id": "must be 1 to 200 characters of letters, digits and . _ ~ -, starting with a letter or digit (an identifier, never personal data)"}},
		{"email as id", func(l *Lead) { l.ID = "ada@example.com" }, map[string]string{"id": "must be 1 to 200 characters of letters, digits and . _ ~ -, starting with a letter or digit (an identifier, never personal data)"}},
	}
	for _, tc := range cases {
		l := ada()
		tc.change(&l)
		errs := l.Validate()
		if tc.want == nil {
			require.Empty(t, errs, tc.name)
			continue
		}
		require.Equal(t, tc.want, errs.Details(), tc.name)
	}
}

func TestLeadWith(t *testing.T) {
	t.Parallel()
	l, err := ada().With(map[string]string{"email": "new@example.com", "phone": "+1 555 0100"})
	require.NoError(t, err)
	require.Equal(t, "new@example.com", l.Email)
	require.Equal(t, "+1 555 0100", l.Phone)

	_, err = ada().With(map[string]string{"consent": "true", "email": "bad"})
	require.EqualError(t, err, "consent: cannot be amended (amendable: email, firstName, lastName, company, phone, jobTitle, source); email: must be an address like name@example.com")
}

func TestLeadPropertiesAndHash(t *testing.T) {
	t.Parallel()
	l := ada()
	l.Email = "  Ada@Example.COM "
	p := l.Properties()
	require.Equal(t, "ada@example.com", p[crm.PropEmail])
	require.Contains(t, p, crm.PropPhone, "form-owned fields are written even when empty")
	h := hashFields(p, leadOwnedProperties())
	require.Equal(t, h, hashFields(crm.Properties{"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace", "company": "Engines", "other": "ignored"}, leadOwnedProperties()))
	p2 := l.Properties()
	p2[crm.PropPhone] = "1"
	require.NotEqual(t, h, hashFields(p2, leadOwnedProperties()))
	require.NotEqual(t, hashFields(map[string]string{"a": "b\nc="}, []string{"a", "c"}), hashFields(map[string]string{"a": "b", "c": ""}, []string{"a", "c"}), "values cannot forge field boundaries")
}

func TestEmailHelpers(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a***@example.com", maskEmail("ada@example.com"))
	require.Equal(t, "***", maskEmail("nonsense"))
	require.Equal(t, "x@a.co", crm.AddEmail("", "x@a.co"))
	require.Equal(t, "y@a.co;x@a.co", crm.AddEmail("y@a.co", "x@a.co"))
	require.Equal(t, "y@a.co;X@a.co", crm.AddEmail("y@a.co;X@a.co", "x@a.co"), "already there")
}

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
		return Spec{Name: "x", WorkflowType: "X", Owner: "team", Exceptions: []ExceptionSpec{
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
		"bad name": func(s *Spec) { s.Name = "has space" },
	}
	for name, breakIt := range cases {
		s := base()
		breakIt(&s)
		require.Error(t, s.Check(), name)
	}
	s := base()
	require.NoError(t, s.Check())
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
		require.Equal(t, ErrDecisionRefused, errorType(err), name)
	}
}

func TestDetailsTellTheOperatorWhatToDo(t *testing.T) {
	t.Parallel()
	it := &item{state: ItemState{WorkflowID: "lead-to-crm:l1", Status: StatusBlocked, Exception: &ExceptionState{
		Kind: DuplicateSuspected, Summary: "contact 88 looks the same", Deciders: "sales",
		Decisions: []Action{ActionApprove, ActionReject}, Choices: []Choice{{Name: "merge", Description: "link it"}},
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
	require.Equal(t, `signals amend 'x:y' --set field=value --reason "<why>"`, DecideCommand("x:y", ActionAmend))
	require.Equal(t, `signals resolve 'x:y' --external-ref <where it was fixed> --reason "<why>"`, DecideCommand("x:y", ActionResolve))
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
