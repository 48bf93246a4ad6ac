package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValuesReadBackAsTheyWereWritten(t *testing.T) {
	t.Parallel()
	for _, values := range [][]LabelledValue{
		{{ValueInCRM, "Ada"}, {ValueInForm, "Ada L."}},
		{{ValueInPostgreSQL, ""}, {ValueInCRM, `say "hi", then; leave`}, {ValueLastSynced, "Zoë\n\t✓"}},
	} {
		got, note, ok := ParseValues(FormatValues(values...), ValueInPostgreSQL, ValueInCRM, ValueInForm, ValueLastSynced)
		require.True(t, ok)
		require.Empty(t, note)
		require.Len(t, got, len(values))
		for _, v := range values {
			require.Equal(t, v.Value, got[v.Label])
		}
	}
	got, note, ok := ParseValues(FormatValues(LabelledValue{ValueInCRM, "a"}, LabelledValue{ValueInForm, "b"})+"; the CRM refused it", ValueInCRM, ValueInForm)
	require.True(t, ok)
	require.Equal(t, map[string]string{ValueInCRM: "a", ValueInForm: "b"}, got)
	require.Equal(t, "the CRM refused it", note)

	for _, bad := range []string{``, `CRM a`, `CRM "a", CRM "b"`, `CRM "a" form "b"`, `fax "a"`, `CRM "a`} {
		_, _, ok := ParseValues(bad, ValueInCRM, ValueInForm)
		require.False(t, ok, bad)
	}
}
