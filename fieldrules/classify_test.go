package fieldrules

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

func TestClassify(t *testing.T) {
	base := store.Baseline{"name": settled("Acme"), "terms": settled("net30"), "stage": settled("lead"), "phone": settled("1"), "note": settled("n")}
	synced := Values{"name": "Acme", "terms": "net30", "stage": "lead", "phone": "1", "note": "n"}
	with := func(set Values) Values {
		out := Values{}
		for k, x := range synced {
			out[k] = x
		}
		for k, x := range set {
			out[k] = x
		}
		return out
	}
	type found struct{ field, class, action string }
	cases := []struct {
		name           string
		source, target Values
		base           store.Baseline
		want           []found
	}{
		{name: "in sync", source: synced, target: synced, base: base},
		{name: "a person kept both values: in sync", source: synced, target: with(Values{"name": "ACME"}),
			base: store.Baseline{"name": {Target: "ACME", Source: "Acme"}, "terms": settled("net30"), "stage": settled("lead"), "phone": settled("1"), "note": settled("n")}},
		{name: "the owner changed it: not synced, repaired", source: with(Values{"name": "Acme Ltd"}), target: synced, base: base,
			want: []found{{"name", api.ClassNotSynced, store.DiffRepair}}},
		{name: "the target edited a source field, ask: drifted, asked", source: synced, target: with(Values{"name": "ACME"}), base: base,
			want: []found{{"name", api.ClassDrifted, store.DiffAsk}}},
		{name: "the target edited a source field, owner-wins: drifted, repaired", source: synced, target: with(Values{"terms": "net60"}), base: base,
			want: []found{{"terms", api.ClassDrifted, store.DiffRepair}}},
		{name: "the target changed its own field: not synced, repaired", source: synced, target: with(Values{"stage": "customer"}), base: base,
			want: []found{{"stage", api.ClassNotSynced, store.DiffRepair}}},
		{name: "the source edited a target field: drifted, repaired", source: with(Values{"stage": "churned"}), target: synced, base: base,
			want: []found{{"stage", api.ClassDrifted, store.DiffRepair}}},
		{name: "a shared field edited on one side: not synced", source: synced, target: with(Values{"phone": "2"}), base: base,
			want: []found{{"phone", api.ClassNotSynced, store.DiffRepair}}},
		{name: "a shared field edited on both: drifted, asked", source: with(Values{"phone": "3"}), target: with(Values{"phone": "2"}), base: base,
			want: []found{{"phone", api.ClassDrifted, store.DiffAsk}}},
		{name: "a blank that may not overwrite: as synced as it will be", source: with(Values{"name": ""}), target: synced, base: base},
		{name: "the source left it blank, the target filled it in: no finding", source: with(Values{"name": ""}), target: synced,
			base: store.Baseline{"name": settled(""), "terms": settled("net30"), "stage": settled("lead"), "phone": settled("1"), "note": settled("n")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []found
			for _, f := range Classify(spec, c.source, c.target, c.base) {
				got = append(got, found{f.Field, f.Class, f.Action})
				require.Equal(t, c.source[f.Field], f.Source)
				require.Equal(t, c.target[f.Field], f.Target)
			}
			require.Equal(t, c.want, got)
		})
	}
}

func TestByFieldReadsBaselinesKeyedByTargetProperty(t *testing.T) {
	s := api.Spec{Fields: []api.Field{
		{Name: "firstName", TargetName: "firstname", Direction: api.DirToTarget},
		{Name: "email", TargetName: "email", Direction: api.DirToTarget},
	}}
	got := ByField(s, store.Baseline{"firstname": settled("Ada"), "email": settled("a@x"), "other": settled("x")})
	require.Equal(t, store.Baseline{"firstName": settled("Ada"), "email": settled("a@x")}, got)
	require.Nil(t, ByField(s, nil))
	require.Equal(t, Values{"firstName": "Ada", "email": "a@x"}, BaselineSource(got))
}
