package workflows

import (
	"strings"
	"testing"

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
