package main

import (
	"cmp"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/signalbox-dev/signalbox/api"
)

// The item page sets side by side what an exception's details compare: the
// values of a field conflict, the two records of a duplicate, an invoice's
// lines and totals. The details are the flat map the status query returns,
// written by the workflows (and reconcile runs) in known shapes; a shape not
// recognised is left in the plain details list, as it always was.

// comparison is one table of an exception's details.
type comparison struct {
	Caption string
	// Corner heads the column of row names; Columns the others.
	Corner  string
	Columns []string
	Rows    []comparisonRow
	// Foot rows sum the others up (an invoice's total).
	Foot []comparisonRow
}

// comparisonRow is one row: its name and one cell per column.
type comparisonRow struct {
	Name  string
	Cells []cell
	// Differs marks a row whose values differ.
	Differs bool
}

// cell is one value of a comparison.
type cell struct {
	Value string
	// Blank shows "(blank)" for an empty value.
	Blank bool
	// Changed marks a value that differs from the last synced one.
	Changed bool
}

// textCell is a cell of the console's words; valueCell one of a value,
// which may be blank.
func textCell(v string) cell  { return cell{Value: v} }
func valueCell(v string) cell { return cell{Value: v, Blank: v == ""} }

// compare returns the tables of an exception's details and the details no
// table took, sorted by name.
func compare(integration string, e *api.ExceptionState) ([]comparison, []pair) {
	details := maps.Clone(e.Details)
	var tables []comparison
	take := func(t *comparison, ok bool) {
		if ok && len(t.Rows)+len(t.Foot) > 0 {
			tables = append(tables, *t)
		}
	}
	switch {
	case e.Kind == api.Conflict:
		take(conflictTable(integration, details))
	case e.Kind == api.DuplicateSuspected && integration == api.IntegrationLeadToCRM:
		take(leadDuplicateTable(details))
	case e.Kind == api.DuplicateInTarget && integration == api.IntegrationCustomerSync:
		take(companyDuplicateTable(details))
	case e.Kind == api.ApprovalRequired && integration == api.IntegrationInvoiceToBilling:
		take(approvalTable(details))
	case e.Kind == api.AmountMismatch && integration == api.IntegrationInvoiceToBilling:
		take(amountMismatchTable(details))
	case e.Kind == api.ValidationFailed && integration == api.IntegrationInvoiceToBilling:
		take(lineProblemsTable(details))
	}
	var rest []pair
	for _, k := range slices.Sorted(maps.Keys(details)) {
		rest = append(rest, pair{k, details[k]})
	}
	return tables, rest
}

// conflictSides names, per integration, how its Conflict details call the
// source and the target: `PostgreSQL "a", CRM "b", last synced "c"`.
// The columns head the values; the names say which side changed.
var conflictSides = map[string]struct{ source, target, sourceColumn, targetColumn, sourceName, targetName string }{
	api.IntegrationCustomerSync: {api.ValueInPostgreSQL, api.ValueInCRM, "PostgreSQL (source)", "CRM (target)", "PostgreSQL", "the CRM"},
	api.IntegrationLeadToCRM:    {api.ValueInForm, api.ValueInCRM, "Form (source)", "CRM (target)", "the form", "the CRM"},
}

// conflictTable takes the details of a field conflict: one row per field,
// its source's, its target's and its last synced value.
func conflictTable(integration string, details map[string]string) (*comparison, bool) {
	sides, ok := conflictSides[integration]
	if !ok {
		return nil, false
	}
	t := &comparison{Caption: "Fields in conflict", Corner: "Field",
		Columns: []string{sides.sourceColumn, sides.targetColumn, "Last synced (baseline)", "Difference"}}
	type parsed struct {
		field                string
		source, target, base string
		known                bool
		note                 string
	}
	var rows []parsed
	for _, field := range slices.Sorted(maps.Keys(details)) {
		values, note, ok := api.ParseValues(details[field], sides.source, sides.target, api.ValueLastSynced)
		src, hasSource := values[sides.source]
		tgt, hasTarget := values[sides.target]
		if !ok || !hasSource || !hasTarget {
			continue
		}
		base, known := values[api.ValueLastSynced]
		rows = append(rows, parsed{field, src, tgt, base, known, note})
		delete(details, field)
	}
	notes := slices.ContainsFunc(rows, func(p parsed) bool { return p.note != "" })
	if notes {
		t.Columns = append(t.Columns, "Note")
	}
	for _, p := range rows {
		source, target := valueCell(p.source), valueCell(p.target)
		baseline := cell{Value: "not recorded"}
		if p.known {
			baseline = valueCell(p.base)
			source.Changed, target.Changed = p.source != p.base, p.target != p.base
		}
		row := comparisonRow{Name: p.field, Cells: []cell{source, target, baseline, textCell(difference(sides.sourceName, sides.targetName, p.source, p.target, source.Changed, target.Changed))},
			Differs: p.source != p.target}
		if notes {
			row.Cells = append(row.Cells, textCell(p.note))
		}
		t.Rows = append(t.Rows, row)
	}
	return t, true
}

// difference says how a field's two values differ, and which side changed
// since the last sync.
func difference(source, target, a, b string, aChanged, bChanged bool) string {
	switch {
	case aChanged && bChanged:
		return "both changed since the last sync"
	case aChanged:
		return source + " changed since the last sync"
	case bChanged:
		return target + " changed since the last sync"
	case a != b:
		return "the values differ"
	}
	return "the same"
}

// leadDuplicateTable takes a suspected duplicate's details: the lead and the
// CRM contact it may be, side by side (emails masked, as the item keeps them).
func leadDuplicateTable(details map[string]string) (*comparison, bool) {
	lead, okLead := details["lead email"]
	its, okIts := details["its email"]
	if !okLead || !okIts {
		return nil, false
	}
	contact := details["contact"]
	t := &comparison{Caption: "The lead and the CRM contact it may duplicate", Corner: "Detail",
		Columns: []string{"This lead", "CRM contact " + contact, "Difference"}}
	t.Rows = append(t.Rows,
		comparisonRow{Name: "CRM contact ID", Cells: []cell{textCell("none yet"), valueCell(contact), textCell("—")}},
		comparisonRow{Name: "Email (masked)", Cells: []cell{valueCell(lead), valueCell(its), textCell(sameOrDiffer(lead, its))}, Differs: lead != its})
	delete(details, "lead email")
	delete(details, "its email")
	delete(details, "contact")
	return t, true
}

// companyDuplicateTable takes the details of a second CRM company carrying
// a customer's ID: the linked company and the duplicate, side by side.
func companyDuplicateTable(details map[string]string) (*comparison, bool) {
	linked, okLinked := details["linked company"]
	dup, okDup := details["company"]
	if !okLinked || !okDup {
		return nil, false
	}
	customer := details["customer"]
	t := &comparison{Caption: "The customer's company and the duplicate", Corner: "Detail",
		Columns: []string{"Linked company", "Duplicate company", "Difference"}}
	t.Rows = append(t.Rows,
		comparisonRow{Name: "CRM company ID", Cells: []cell{valueCell(linked), valueCell(dup), textCell(sameOrDiffer(linked, dup))}, Differs: linked != dup},
		comparisonRow{Name: "Customer ID it carries", Cells: []cell{valueCell(customer), valueCell(customer), textCell("the same")}})
	delete(details, "linked company")
	delete(details, "company")
	delete(details, "customer")
	return t, true
}

func sameOrDiffer(a, b string) string {
	if a == b {
		return "the same"
	}
	return "they differ"
}

var (
	lineChanged = regexp.MustCompile(`^line (\d+) was (.+?), now (.+)$`)
	lineAdded   = regexp.MustCompile(`^line (\d+) added \((.+)\)$`)
	lineRemoved = regexp.MustCompile(`^line (\d+) removed$`)
	currencyWas = regexp.MustCompile(`^currency was (\S+), now (\S+)$`)
)

// approvalTable takes an approval's details: the invoice's number of lines
// and total; once approved and changed, each changed line and the total,
// as approved and now.
func approvalTable(details map[string]string) (*comparison, bool) {
	total, ok := details["total"]
	if !ok {
		return nil, false
	}
	approved, wasApproved := details["approved total"]
	if !wasApproved {
		t := &comparison{Caption: "Lines and total", Corner: "Invoice", Columns: []string{"This invoice"}}
		if lines, ok := details["lines"]; ok {
			t.Rows = append(t.Rows, comparisonRow{Name: "Lines", Cells: []cell{valueCell(lines)}})
			delete(details, "lines")
		}
		t.Foot = []comparisonRow{{Name: "Total", Cells: []cell{valueCell(total)}}}
		delete(details, "total")
		return t, true
	}
	t := &comparison{Caption: "Lines and total, as approved and now", Corner: "Line", Columns: []string{"Approved", "Now", "Difference"}}
	if changes, ok := details["changed lines"]; ok {
		if rows, ok := lineChangeRows(changes); ok {
			t.Rows = rows
			delete(details, "changed lines")
		}
	}
	t.Foot = []comparisonRow{{Name: "Total", Cells: []cell{valueCell(approved), valueCell(total), textCell(sameOrDiffer(approved, total))}, Differs: approved != total}}
	delete(details, "total")
	delete(details, "approved total")
	return t, true
}

// lineChangeRows reads "line 2 was 1 × EUR 5.00, now 2 × EUR 5.00; line 3
// added (…); line 1 removed; currency was eur, now usd"; ok is false if any
// part is not one of these.
func lineChangeRows(s string) ([]comparisonRow, bool) {
	var rows []comparisonRow
	for part := range strings.SplitSeq(s, "; ") {
		part = strings.TrimSpace(part)
		var row comparisonRow
		if m := lineChanged.FindStringSubmatch(part); m != nil {
			row = comparisonRow{Name: "Line " + m[1], Cells: []cell{textCell(m[2]), textCell(m[3]), textCell("changed")}, Differs: true}
		} else if m := lineAdded.FindStringSubmatch(part); m != nil {
			row = comparisonRow{Name: "Line " + m[1], Cells: []cell{textCell("not on it"), textCell(m[2]), textCell("added")}, Differs: true}
		} else if m := lineRemoved.FindStringSubmatch(part); m != nil {
			row = comparisonRow{Name: "Line " + m[1], Cells: []cell{textCell("on it"), textCell("removed"), textCell("removed")}, Differs: true}
		} else if m := currencyWas.FindStringSubmatch(part); m != nil {
			row = comparisonRow{Name: "Currency", Cells: []cell{textCell(m[1]), textCell(m[2]), textCell("changed")}, Differs: true}
		} else {
			return nil, false
		}
		rows = append(rows, row)
	}
	return rows, len(rows) > 0
}

// amountMismatchTable takes the totals a reconcile run found different, in
// minor units as it recorded them.
func amountMismatchTable(details map[string]string) (*comparison, bool) {
	ours, okOurs := details["total in PostgreSQL"]
	theirs, okTheirs := details["total in Stripe"]
	if !okOurs || !okTheirs {
		return nil, false
	}
	t := &comparison{Caption: "Total in PostgreSQL and in Stripe", Corner: "Invoice", Columns: []string{"PostgreSQL", "Stripe", "Difference"}}
	t.Foot = []comparisonRow{{Name: "Total (minor units)", Cells: []cell{valueCell(ours), valueCell(theirs), textCell(sameOrDiffer(ours, theirs))}, Differs: ours != theirs}}
	delete(details, "total in PostgreSQL")
	delete(details, "total in Stripe")
	return t, true
}

var lineProblem = regexp.MustCompile(`^lines\[(-?\d+)\]\.(description|quantity|unitAmount)$`)

// lineProblemsTable takes the problems of an invoice's lines that broke its
// contract: one row per line, one column per part of it.
func lineProblemsTable(details map[string]string) (*comparison, bool) {
	columns := []string{"description", "quantity", "unitAmount"}
	byLine := map[int]map[string]string{}
	for k, v := range details {
		m := lineProblem.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		no, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		if byLine[no] == nil {
			byLine[no] = map[string]string{}
		}
		byLine[no][m[2]] = v
		delete(details, k)
	}
	if len(byLine) == 0 {
		return nil, false
	}
	t := &comparison{Caption: "Problems of the invoice's lines", Corner: "Line", Columns: []string{"Description", "Quantity", "Unit amount"}}
	for _, no := range slices.SortedFunc(maps.Keys(byLine), cmp.Compare[int]) {
		row := comparisonRow{Name: "Line " + strconv.Itoa(no), Differs: true}
		for _, c := range columns {
			row.Cells = append(row.Cells, textCell(cmp.Or(byLine[no][c], "—")))
		}
		t.Rows = append(t.Rows, row)
	}
	return t, true
}
