package fieldrules

import (
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// Finding is one synced field whose systems disagree, as a reconcile run
// reports it.
type Finding struct {
	Diff
	// Class is api.ClassDrifted or api.ClassNotSynced.
	Class string
	// Owner is the system that owns the field (api.OwnerBoth: shared).
	Owner string
	// Action is what the record's sync will do, by the field's rule:
	// store.DiffRepair (write it) or store.DiffAsk (raise a Conflict). A
	// blank the rule lets stand is no finding.
	Action string
}

// Classify compares one record's two sides with its baseline, field by
// field, and says for each field that differs whose edit it is and what the
// field's rule makes of it — the same rule Decide applies when the record is
// synced. A difference a person settled (both sides as the baseline holds
// them) is in sync.
func Classify(spec api.Spec, source, target Values, base store.Baseline) []Finding {
	plan := Decide(spec, source, target, base)
	conflicts := map[string]bool{}
	for _, c := range plan.Conflicts {
		conflicts[c.Field] = true
	}
	var out []Finding
	for _, f := range spec.SyncedFields() {
		b, known := base[f.Name]
		d := Diff{Field: f.Name, Source: source[f.Name], Target: target[f.Name], Base: b, Known: known}
		if d.Source == d.Target {
			continue
		}
		sEdited, tEdited := !known || d.Source != b.Source, !known || d.Target != b.Target
		if !sEdited && !tEdited {
			continue
		}
		// The edit of the side that does not own the field drifts from
		// it; the owner's edit is only not synced yet.
		var drifted bool
		switch f.Direction {
		case api.DirToTarget:
			drifted = tEdited && known
		case api.DirToSource:
			drifted = sEdited && known
		case api.DirTwoWay:
			drifted = sEdited && tEdited
		}
		fd := Finding{Diff: d, Class: api.ClassNotSynced, Owner: f.Owner, Action: store.DiffReport}
		if drifted {
			fd.Class = api.ClassDrifted
		}
		_, toTarget := plan.ToTarget[f.Name]
		_, toSource := plan.ToSource[f.Name]
		switch {
		case conflicts[f.Name]:
			fd.Action = store.DiffAsk
		case toTarget || toSource:
			fd.Action = store.DiffRepair
		default:
			// A blank where the other side has a value, which the field's
			// rule lets stand: as synced as it will be, and not reported
			// night after night.
			continue
		}
		out = append(out, fd)
	}
	return out
}

// TargetValues are a target record's values of spec's synced fields, by
// field name, from its properties.
func TargetValues(spec api.Spec, props map[string]string) Values {
	v := Values{}
	for _, f := range spec.SyncedFields() {
		v[f.Name] = props[f.TargetName]
	}
	return v
}

// ByField returns a baseline keyed by spec's field names: an integration
// may key its baselines by the target's property names (lead → CRM does).
func ByField(spec api.Spec, base store.Baseline) store.Baseline {
	if base == nil {
		return nil
	}
	out := store.Baseline{}
	for _, f := range spec.SyncedFields() {
		if b, ok := base[f.Name]; ok {
			out[f.Name] = b
		} else if b, ok := base[f.TargetName]; ok {
			out[f.Name] = b
		}
	}
	return out
}

// BaselineSource is what the source held at the last sync, by field name.
func BaselineSource(base store.Baseline) Values {
	v := Values{}
	for field, b := range base {
		v[field] = b.Source
	}
	return v
}
