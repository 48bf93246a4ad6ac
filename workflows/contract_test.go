package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
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
	for _, s := range api.Specs() {
		require.NoError(t, s.Check(), s.Name)
		got, err := api.SpecByName(s.Name)
		require.NoError(t, err)
		require.Equal(t, s.WorkflowType, got.WorkflowType)
	}
	_, err := api.SpecByName("nope")
	require.ErrorContains(t, err, `unknown integration "nope"`)
}

func TestSpecCheckCatchesMistakes(t *testing.T) {
	t.Parallel()
	base := func() api.Spec {
		return api.Spec{Name: "x", WorkflowType: "X", Owner: "team", Exceptions: []api.ExceptionSpec{
			{Kind: api.ConsentMissing, Status: api.StatusBlocked, Decisions: []api.Action{api.ActionApprove, api.ActionReject}, SLA: time.Hour}}}
	}
	cases := map[string]func(*api.Spec){
		"approve at the deadline": func(s *api.Spec) { s.Exceptions[0].Deadline, s.Exceptions[0].AtDeadline = time.Hour, api.ActionApprove },
		"deadline without action": func(s *api.Spec) { s.Exceptions[0].Deadline = time.Hour },
		"no decisions":            func(s *api.Spec) { s.Exceptions[0].Decisions = nil },
		"not waiting":             func(s *api.Spec) { s.Exceptions[0].Status = api.StatusSynced },
		"no SLA":                  func(s *api.Spec) { s.Exceptions[0].SLA = 0 },
		"declared twice":          func(s *api.Spec) { s.Exceptions = append(s.Exceptions, s.Exceptions[0]) },
		"unknown action":          func(s *api.Spec) { s.Exceptions[0].Decisions = []api.Action{"shrug"} },
		"choices without approve": func(s *api.Spec) {
			s.Exceptions[0].Decisions, s.Exceptions[0].Choices = []api.Action{api.ActionReject}, []api.Choice{{Name: "a"}}
		},
		"no owner": func(s *api.Spec) { s.Owner = "" },
		"bad name": func(s *api.Spec) { s.Name = "has space" },
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
	ok := api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "r"}
	require.NoError(t, ok.Complete())
	cases := map[string]struct {
		d    api.Decision
		want string
	}{
		"unknown action": {api.Decision{Action: "yolo", Actor: "a", Reason: "r"}, `action "yolo" is not one of approve, reject, amend, retry, resolve, cancel`},
		"no actor":       {api.Decision{Action: api.ActionApprove, Reason: "r"}, "actor is required"},
		"spaced actor":   {api.Decision{Action: api.ActionApprove, Actor: "a b", Reason: "r"}, "actor must be one word"},
		"blank reason":   {api.Decision{Action: api.ActionApprove, Actor: "a", Reason: "  "}, "reason is required"},
		"long reason":    {api.Decision{Action: api.ActionApprove, Actor: "a", Reason: strings.Repeat("x", 2001)}, "reason must be at most 2000"},
		"resolve no ref": {api.Decision{Action: api.ActionResolve, Actor: "a", Reason: "r"}, "resolve needs externalRef"},
		"amend no set":   {api.Decision{Action: api.ActionAmend, Actor: "a", Reason: "r"}, "amend needs at least one field"},
		"set on approve": {api.Decision{Action: api.ActionApprove, Actor: "a", Reason: "r", Set: map[string]string{"a": "b"}}, "set is only for amend"},
		"bad utf-8":      {api.Decision{Action: api.ActionApprove, Actor: "a", Reason: "r\xff"}, "valid UTF-8"},
		"all at once":    {api.Decision{}, "actor is required; reason is required"},
	}
	for name, tc := range cases {
		err := tc.d.Complete()
		require.ErrorContains(t, err, tc.want, name)
		require.Equal(t, api.ErrorDecisionRefused, api.TypeOf(err), name)
	}
}

func TestStatusHelpers(t *testing.T) {
	t.Parallel()
	for _, s := range api.Statuses {
		require.NotEqual(t, "unknown status", s.Meaning())
		parsed, err := api.ParseStatus(strings.ToLower(string(s)))
		require.NoError(t, err)
		require.Equal(t, s, parsed)
	}
	require.True(t, api.StatusBlocked.Waiting())
	require.True(t, api.StatusFailed.Waiting())
	require.True(t, api.StatusManuallyResolved.Terminal())
	require.False(t, api.StatusRunning.Terminal())
	id, key, ok := api.SplitItemID("lead-to-crm:a:b")
	require.True(t, ok)
	require.Equal(t, "lead-to-crm", id)
	require.Equal(t, "a:b", key)
	_, _, ok = api.SplitItemID("nokey:")
	require.False(t, ok)
}
