package fieldrules

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// spec has one field of each kind: source-owned (ask, owner-wins),
// target-owned (owner-wins), two-way, and a two-way field where blanks sync.
var spec = api.Spec{Name: "t", Source: "postgres", Target: "crm", Fields: []api.Field{
	{Name: "name", TargetName: "name", Owner: "postgres", Direction: api.DirToTarget, Rule: api.RuleAsk},
	{Name: "terms", TargetName: "terms", Owner: "postgres", Direction: api.DirToTarget, Rule: api.RuleOwnerWins},
	{Name: "stage", TargetName: "stage", Owner: "crm", Direction: api.DirToSource, Rule: api.RuleOwnerWins},
	{Name: "phone", TargetName: "phone", Owner: api.OwnerBoth, Direction: api.DirTwoWay, Rule: api.RuleLatestWins},
	{Name: "note", TargetName: "note", Owner: api.OwnerBoth, Direction: api.DirTwoWay, Rule: api.RuleLatestWins, BlanksSync: true},
	{Name: "id", Owner: "postgres"}, // not synced
}}

func settled(v string) store.Settled { return store.Settled{Target: v, Source: v} }

func TestDecide(t *testing.T) {
	base := store.Baseline{"name": settled("Acme"), "terms": settled("net30"), "stage": settled("lead"), "phone": settled("1"), "note": settled("n")}
	synced := Values{"name": "Acme", "terms": "net30", "stage": "lead", "phone": "1", "note": "n"}
	with := func(v Values, set Values) Values {
		out := Values{}
		for k, x := range v {
			out[k] = x
		}
		for k, x := range set {
			out[k] = x
		}
		return out
	}
	cases := []struct {
		name           string
		source, target Values
		base           store.Baseline
		toTarget       Values
		toSource       Values
		conflicts      []string
		overruled      []string
	}{
		{name: "in sync: nothing", source: synced, target: synced, base: base},
		{name: "source edits its field: copied", source: with(synced, Values{"name": "Acme Ltd"}), target: synced, base: base,
			toTarget: Values{"name": "Acme Ltd"}},
		{name: "target edits a source field, ask: conflict", source: synced, target: with(synced, Values{"name": "ACME"}), base: base,
			conflicts: []string{"name"}},
		{name: "target edits a source field, owner-wins: written back", source: synced, target: with(synced, Values{"terms": "net60"}), base: base,
			toTarget: Values{"terms": "net30"}, overruled: []string{"terms"}},
		{name: "target edits its own field: copied to the source", source: synced, target: with(synced, Values{"stage": "customer"}), base: base,
			toSource: Values{"stage": "customer"}},
		{name: "source edits a target field, owner-wins: written back", source: with(synced, Values{"stage": "churned"}), target: synced, base: base,
			toSource: Values{"stage": "lead"}, overruled: []string{"stage"}},
		{name: "two-way edited on one side: copied", source: synced, target: with(synced, Values{"phone": "2"}), base: base,
			toSource: Values{"phone": "2"}},
		{name: "two-way edited on both sides: conflict", source: with(synced, Values{"phone": "3"}), target: with(synced, Values{"phone": "2"}), base: base,
			conflicts: []string{"phone"}},
		{name: "both sides made the same edit: nothing", source: with(synced, Values{"phone": "2"}), target: with(synced, Values{"phone": "2"}), base: base},
		{name: "a blank does not overwrite", source: with(synced, Values{"name": "", "phone": ""}), target: synced, base: base},
		{name: "unless blanks sync", source: with(synced, Values{"note": ""}), target: synced, base: base,
			toTarget: Values{"note": ""}},
		{name: "no baseline, target empty: filled", source: synced, target: Values{}, base: nil,
			toTarget: Values{"name": "Acme", "terms": "net30", "phone": "1", "note": "n"}},
		{name: "no baseline, both hold other values: ask and two-way conflict, owner-wins overrule", source: synced,
			target: Values{"name": "ACME", "terms": "net60", "stage": "lead", "phone": "2", "note": "n"}, base: nil,
			toTarget: Values{"terms": "net30"}, conflicts: []string{"name", "phone"}, overruled: []string{"terms"}},
		{name: "a settled difference stays", source: synced, target: with(synced, Values{"name": "ACME"}),
			base: store.Baseline{"name": {Target: "ACME", Source: "Acme"}, "terms": settled("net30"), "stage": settled("lead"), "phone": settled("1"), "note": settled("n")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(spec, tc.source, tc.target, tc.base)
			require.Equal(t, orEmpty(tc.toTarget), p.ToTarget, "to target")
			require.Equal(t, orEmpty(tc.toSource), p.ToSource, "to source")
			var conflicts, overruled []string
			for _, d := range p.Conflicts {
				conflicts = append(conflicts, d.Field)
			}
			for _, o := range p.Overruled {
				overruled = append(overruled, o.Field)
			}
			require.Equal(t, tc.conflicts, conflicts, "conflicts")
			require.Equal(t, tc.overruled, overruled, "overruled")
			_, hasID := p.Baseline["id"]
			require.False(t, hasID, "a field not synced has no baseline")
			// Written as planned, the next decision finds nothing to do but
			// the conflicts it left.
			src, tgt := apply(tc.source, p.ToSource), apply(tc.target, p.ToTarget)
			again := Decide(spec, src, tgt, p.Baseline)
			require.Empty(t, again.ToTarget, "no echo: our own writes are not edits")
			require.Empty(t, again.ToSource, "no echo: our own writes are not edits")
			require.Len(t, again.Conflicts, len(tc.conflicts), "a conflict stays until it is decided")
		})
	}
}

func TestResolve(t *testing.T) {
	base := store.Baseline{"name": settled("Acme"), "phone": settled("1")}
	source := Values{"name": "Acme", "phone": "3", "terms": "net30", "stage": "lead", "note": "n"}
	target := Values{"name": "ACME", "phone": "2", "terms": "net30", "stage": "lead", "note": "n"}
	p := Decide(spec, source, target, base)
	require.Len(t, p.Conflicts, 2)

	keepCRM := p.Resolve(spec, Resolution{Keep: "crm"})
	require.Equal(t, Values{"name": "ACME", "phone": "2"}, keepCRM.ToSource)
	require.Empty(t, keepCRM.Conflicts)

	keepPG := p.Resolve(spec, Resolution{Keep: "postgres"})
	require.Equal(t, Values{"name": "Acme", "phone": "3"}, keepPG.ToTarget)

	third := p.Resolve(spec, Resolution{Keep: "crm", Set: map[string]string{"phone": "4"}})
	require.Equal(t, Values{"phone": "4"}, third.ToTarget)
	require.Equal(t, Values{"name": "ACME", "phone": "4"}, third.ToSource)

	// Once written, the decision is the baseline: the conflict is not raised again.
	for _, r := range []Plan{keepCRM, keepPG, third} {
		again := Decide(spec, apply(source, r.ToSource), apply(target, r.ToTarget), r.Baseline)
		require.True(t, again.Empty(), "%+v", again)
	}
}

func orEmpty(v Values) Values {
	if v == nil {
		return Values{}
	}
	return v
}

func apply(v Values, set Values) Values {
	out := Values{}
	for k, x := range v {
		out[k] = x
	}
	for k, x := range set {
		out[k] = x
	}
	return out
}
