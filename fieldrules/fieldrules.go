// Package fieldrules decides, field by field, what a sync between two
// systems writes: from the values each side holds now, the baseline (what
// both held at the last sync or a person's settlement), and each field's
// declared owner, direction and rule (api.Field). It is pure: the same
// inputs always give the same plan, so workflows may call it.
//
// An edit is a value that differs from the baseline; signalbox's own writes
// become the baseline, so they are never edits (no echo loops). A blank never
// overwrites a value unless the field says blanks sync (and then only a value
// that was synced before: without a baseline, a blank is nothing yet).
package fieldrules

import (
	"maps"
	"slices"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// Values are one side's values of the synced fields, by field name.
type Values map[string]string

// Diff is one field's values on both sides and its baseline, if known.
type Diff struct {
	Field          string
	Source, Target string
	Base           store.Settled
	Known          bool
}

// Overrule is an edit the owner's value was written over (rule owner-wins).
type Overrule struct {
	Diff
	// Edited is the system whose edit was overruled.
	Edited string
}

// Plan is what a sync writes.
type Plan struct {
	// ToTarget and ToSource hold the values to write, by field name.
	ToTarget, ToSource Values
	// Conflicts are edits a person must decide: a field whose rule is ask,
	// or a two-way field edited on both sides. They are not written.
	Conflicts []Diff
	// Overruled are edits the owner's value is written over (audited).
	Overruled []Overrule
	// Baseline is what both sides hold once the plan is written; a
	// conflicting field keeps its baseline until it is decided.
	Baseline store.Baseline
}

// Empty reports whether the plan writes nothing and asks nothing.
func (p Plan) Empty() bool {
	return len(p.ToTarget) == 0 && len(p.ToSource) == 0 && len(p.Conflicts) == 0
}

// Decide plans the sync of one record of spec's integration.
func Decide(spec api.Spec, source, target Values, base store.Baseline) Plan {
	p := Plan{ToTarget: Values{}, ToSource: Values{}, Baseline: store.Baseline{}}
	for _, f := range spec.SyncedFields() {
		b, known := base[f.Name]
		d := Diff{Field: f.Name, Source: source[f.Name], Target: target[f.Name], Base: b, Known: known}
		s, t := d.Source, d.Target
		if s == t {
			p.Baseline[f.Name] = store.Settled{Target: t, Source: s}
			continue
		}
		sEdited, tEdited := !known || s != b.Source, !known || t != b.Target
		if !sEdited && !tEdited {
			p.Baseline[f.Name] = b // a difference a person settled
			continue
		}
		switch f.Direction {
		case api.DirToTarget:
			p.oneWay(f, d, s, t, tEdited, spec.Target, p.ToTarget)
		case api.DirToSource:
			p.oneWay(f, d, t, s, sEdited, spec.Source, p.ToSource)
		case api.DirTwoWay:
			p.twoWay(f, d, sEdited, tEdited)
		}
	}
	return p
}

// oneWay plans a field its owner syncs to the other side: owner is the
// owner's value, other the other side's; to is where owner's is written.
func (p *Plan) oneWay(f api.Field, d Diff, owner, other string, otherEdited bool, otherSystem string, to Values) {
	switch {
	case owner == "" && !(f.BlanksSync && d.Known):
		p.settle(f.Name, d.Target, d.Source) // a blank does not overwrite
		return
	case other == "" || !otherEdited:
		// Nothing there, or what was synced: the owner's change goes through.
	case f.Rule == api.RuleOwnerWins:
		p.Overruled = append(p.Overruled, Overrule{Diff: d, Edited: otherSystem})
	default:
		p.Conflicts = append(p.Conflicts, d)
		p.keep(f.Name, d)
		return
	}
	to[f.Name] = owner
	p.settle(f.Name, owner, owner)
}

// twoWay plans a field both systems own: an edit on one side is copied to
// the other; edits on both are a conflict, unless one of them is a blank
// that may not overwrite.
func (p *Plan) twoWay(f api.Field, d Diff, sEdited, tEdited bool) {
	s, t := d.Source, d.Target
	// Without a baseline a blank is no edit: nothing was there yet.
	blank := func(v string) bool { return v == "" && !(f.BlanksSync && d.Known) }
	switch {
	case sEdited && (!tEdited || blank(t)) && !blank(s):
		p.ToTarget[f.Name] = s
		p.settle(f.Name, s, s)
	case tEdited && (!sEdited || blank(s)) && !blank(t):
		p.ToSource[f.Name] = t
		p.settle(f.Name, t, t)
	case blank(s) || blank(t):
		p.settle(f.Name, t, s) // a blank, alone: nothing to copy
	default:
		p.Conflicts = append(p.Conflicts, d)
		p.keep(f.Name, d)
	}
}

func (p *Plan) settle(field, target, source string) {
	p.Baseline[field] = store.Settled{Target: target, Source: source}
}

// keep leaves a conflicting field's baseline as it was (none, if unknown).
func (p *Plan) keep(field string, d Diff) {
	if d.Known {
		p.Baseline[field] = d.Base
	}
}

// Resolution is a person's decision on a plan's conflicts.
type Resolution struct {
	// Keep is the system whose values win: the spec's Source or Target.
	Keep string
	// Set holds values of the person's own, written to both sides.
	Set map[string]string
}

// Resolve writes the decision into the plan: each conflicting field takes
// the kept side's value, or the person's, on both sides, and that becomes its
// baseline. The plan has no conflicts left.
func (p Plan) Resolve(spec api.Spec, r Resolution) Plan {
	out := Plan{ToTarget: maps.Clone(p.ToTarget), ToSource: maps.Clone(p.ToSource), Overruled: slices.Clone(p.Overruled), Baseline: maps.Clone(p.Baseline)}
	for _, d := range p.Conflicts {
		v, ok := r.Set[d.Field]
		switch {
		case ok:
		case r.Keep == spec.Source:
			v = d.Source
		default:
			v = d.Target
		}
		if v != d.Target {
			out.ToTarget[d.Field] = v
		}
		if v != d.Source {
			out.ToSource[d.Field] = v
		}
		out.settle(d.Field, v, v)
	}
	return out
}
