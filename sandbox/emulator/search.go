package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// HubSpot's documented search limits (developers.hubspot.com, "Search the CRM").
const (
	maxFilterGroups     = 5
	maxFiltersPerGroup  = 6
	maxFilters          = 18
	maxSearchLimit      = 200
	defaultSearchLimit  = 10
	maxSearchResults    = 10_000
	maxSearchBodyLength = 3_000
	maxSorts            = 1
)

// flexString is a JSON value HubSpot accepts as a string: a string, number or
// boolean. set is false for a missing or null value.
type flexString struct {
	s   string
	set bool
}

// UnmarshalJSON takes a string, a number or a boolean.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = flexString{}
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString{s: s, set: true}
	case bytes.Equal(b, []byte("true")), bytes.Equal(b, []byte("false")):
		*f = flexString{s: string(b), set: true}
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a string, number or boolean, got %s", b)
		}
		*f = flexString{s: n.String(), set: true}
	}
	return nil
}

type filter struct {
	PropertyName string       `json:"propertyName"`
	Operator     string       `json:"operator"`
	Value        flexString   `json:"value"`
	HighValue    flexString   `json:"highValue"`
	Values       []flexString `json:"values"`
}

type filterGroup struct {
	Filters []filter `json:"filters"`
}

// sortRule is one of a search's sorts: {"propertyName", "direction"}, or a
// property name, descending when it starts with "-".
type sortRule struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"`
}

// UnmarshalJSON takes an object or a property name.
func (r *sortRule) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*r = sortRule{PropertyName: name, Direction: "ASCENDING"}
		if rest, ok := strings.CutPrefix(name, "-"); ok {
			*r = sortRule{PropertyName: rest, Direction: "DESCENDING"}
		}
		return nil
	}
	type plain sortRule
	return json.Unmarshal(b, (*plain)(r))
}

type searchRequest struct {
	FilterGroups []filterGroup `json:"filterGroups"`
	Sorts        []sortRule    `json:"sorts"`
	Properties   []string      `json:"properties"`
	Query        string        `json:"query"`
	Limit        flexString    `json:"limit"`
	After        flexString    `json:"after"`
}

// search is a validated search request.
type search struct {
	groups     []filterGroup
	sort       *sortRule
	properties []string
	query      string
	limit      int
	offset     int
}

// operators are HubSpot's filter operators.
var operators = []string{"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}

func badSearch(format string, args ...any) *result {
	return &result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", fmt.Sprintf(format, args...))}
}

// parseSearch reads and validates a search request for objects of typ,
// refusing what HubSpot refuses.
func parseSearch(typ *objectType, body []byte) (*search, *result) {
	if len(body) > maxSearchBodyLength {
		return nil, badSearch("The search request has %d characters; a search may have at most %d. Use fewer or shorter filters.", len(body), maxSearchBodyLength)
	}
	var req searchRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badSearch("Invalid input JSON: %v", err)
	}
	if bad := checkFilterGroups(typ, req.FilterGroups); bad != nil {
		return nil, bad
	}
	q := &search{groups: req.FilterGroups, properties: req.Properties, query: strings.ToLower(strings.TrimSpace(req.Query)), limit: defaultSearchLimit}
	if len(req.Sorts) > maxSorts {
		return nil, badSearch("A search may have at most %d sort; got %d.", maxSorts, len(req.Sorts))
	}
	if len(req.Sorts) == 1 {
		r := req.Sorts[0]
		if r.Direction == "" {
			r.Direction = "ASCENDING"
		}
		if r.PropertyName == "" || (r.Direction != "ASCENDING" && r.Direction != "DESCENDING") {
			return nil, badSearch("A sort needs a propertyName and a direction of ASCENDING or DESCENDING; got %+v.", req.Sorts[0])
		}
		q.sort = &r
	}
	if req.Limit.set && req.Limit.s != "0" {
		n, err := strconv.Atoi(req.Limit.s)
		if err != nil || n < 1 || n > maxSearchLimit {
			return nil, badSearch("limit must be between 1 and %d; got %s.", maxSearchLimit, req.Limit.s)
		}
		q.limit = n
	}
	if req.After.set && req.After.s != "" {
		n, err := strconv.Atoi(req.After.s)
		if err != nil || n < 0 {
			return nil, badSearch("after must be the integer from paging.next.after of the previous page; got %q.", req.After.s)
		}
		q.offset = n
	}
	if q.offset > maxSearchResults-q.limit {
		return nil, badSearch("Search results are limited to %d; after %d with limit %d pages beyond them. Narrow the search with filters, e.g. on hs_lastmodifieddate.", maxSearchResults, q.offset, q.limit)
	}
	return q, nil
}

// checkFilterGroups enforces HubSpot's limits and each filter's shape.
func checkFilterGroups(typ *objectType, groups []filterGroup) *result {
	if len(groups) > maxFilterGroups {
		return badSearch("A search may have at most %d filterGroups; got %d.", maxFilterGroups, len(groups))
	}
	total := 0
	for _, g := range groups {
		if len(g.Filters) > maxFiltersPerGroup {
			return badSearch("A filterGroup may have at most %d filters; got %d.", maxFiltersPerGroup, len(g.Filters))
		}
		total += len(g.Filters)
		for _, f := range g.Filters {
			if bad := checkFilter(typ, f); bad != nil {
				return bad
			}
		}
	}
	if total > maxFilters {
		return badSearch("A search may have at most %d filters in all; got %d.", maxFilters, total)
	}
	return nil
}

// checkFilter checks a filter's operator and that its values suit it and the
// property's kind.
func checkFilter(typ *objectType, f filter) *result {
	if f.PropertyName == "" {
		return badSearch("Every filter needs a propertyName.")
	}
	var vals []flexString
	switch f.Operator {
	case "HAS_PROPERTY", "NOT_HAS_PROPERTY":
	case "IN", "NOT_IN":
		if len(f.Values) == 0 {
			return badSearch("Operator %s on %s needs a values array.", f.Operator, f.PropertyName)
		}
		vals = f.Values
	case "BETWEEN":
		if !f.Value.set || !f.HighValue.set {
			return badSearch("Operator BETWEEN on %s needs value and highValue.", f.PropertyName)
		}
		vals = []flexString{f.Value, f.HighValue}
	case "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN":
		if !f.Value.set {
			return badSearch("Operator %s on %s needs a value.", f.Operator, f.PropertyName)
		}
		if !strings.Contains(f.Operator, "TOKEN") {
			vals = []flexString{f.Value}
		}
	default:
		return badSearch("Unknown filter operator %q; use one of %s.", f.Operator, strings.Join(operators, ", "))
	}
	for _, v := range vals {
		if _, ok := parseAs(typ.kind(f.PropertyName), v.s); !ok {
			return badSearch("%q is not a valid value for %s: %s", v.s, f.PropertyName, kindHint(typ.kind(f.PropertyName)))
		}
	}
	return nil
}

func kindHint(k propKind) string {
	if k == kindDate {
		return "give a time as epoch milliseconds (e.g. 1735689600000) or ISO 8601 (e.g. 2025-01-01T00:00:00Z)."
	}
	return "give a number."
}

// parseAs parses a value of a property kind to something comparable; text
// compares without regard to case.
func parseAs(k propKind, s string) (any, bool) {
	switch k {
	case kindNumber:
		n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return n, err == nil
	case kindDate:
		t, ok := parseWhen(s)
		return t, ok
	}
	return strings.ToLower(s), true
}

// parseWhen reads a time as HubSpot takes it in filters: epoch milliseconds or
// ISO 8601 (a date alone is midnight UTC).
func parseWhen(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), true
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Millisecond), true
		}
	}
	return time.Time{}, false
}

// compareValues compares two values of a kind; ok is false when either does
// not parse as that kind.
func compareValues(k propKind, a, b string) (int, bool) {
	x, ok1 := parseAs(k, a)
	y, ok2 := parseAs(k, b)
	if !ok1 || !ok2 {
		return 0, false
	}
	switch x := x.(type) {
	case float64:
		y := y.(float64)
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case time.Time:
		return x.Compare(y.(time.Time)), true
	}
	return strings.Compare(x.(string), y.(string)), true
}

// matches reports whether o satisfies a filter.
func (st *objectStore) matches(o *object, f filter) bool {
	have, ok := st.value(o, f.PropertyName)
	present := ok && have != ""
	kind := st.typ.kind(f.PropertyName)
	when, isWhen := st.dateValue(o, f.PropertyName)
	cmp := func(want string) (int, bool) {
		if !present {
			return 0, false
		}
		if isWhen && kind == kindDate {
			// As compareValues, without parsing the date again.
			w, ok := parseWhen(want)
			return when.Compare(w), ok
		}
		return compareValues(kind, have, want)
	}
	switch f.Operator {
	case "HAS_PROPERTY":
		return present
	case "NOT_HAS_PROPERTY":
		return !present
	case "EQ", "NEQ":
		c, ok := cmp(f.Value.s)
		return (ok && c == 0) == (f.Operator == "EQ")
	case "LT":
		c, ok := cmp(f.Value.s)
		return ok && c < 0
	case "LTE":
		c, ok := cmp(f.Value.s)
		return ok && c <= 0
	case "GT":
		c, ok := cmp(f.Value.s)
		return ok && c > 0
	case "GTE":
		c, ok := cmp(f.Value.s)
		return ok && c >= 0
	case "BETWEEN":
		lo, ok1 := cmp(f.Value.s)
		hi, ok2 := cmp(f.HighValue.s)
		return ok1 && ok2 && lo >= 0 && hi <= 0
	case "IN", "NOT_IN":
		return st.in(have, present, kind, f.Values) == (f.Operator == "IN")
	case "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN":
		return (present && containsToken(have, f.Value.s)) == (f.Operator == "CONTAINS_TOKEN")
	}
	return false
}

// in reports whether a value is one of values. As HubSpot documents, text
// values must be given in lower case to match.
func (st *objectStore) in(have string, present bool, kind propKind, values []flexString) bool {
	if !present {
		return false
	}
	for _, v := range values {
		if kind == kindText {
			if strings.ToLower(have) == v.s {
				return true
			}
			continue
		}
		if c, ok := compareValues(kind, have, v.s); ok && c == 0 {
			return true
		}
	}
	return false
}

// containsToken reports whether the value, or one of its words, matches the
// token, in which * stands for any characters. Words are split at spaces and
// punctuation other than those in emails, domains and numbers.
func containsToken(value, token string) bool {
	value, token = strings.ToLower(value), strings.ToLower(strings.TrimSpace(token))
	if glob(token, value) {
		return true
	}
	split := func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(",;:/()[]<>\"'!?|@", r)
	}
	for _, w := range strings.FieldsFunc(value, split) {
		if glob(token, w) || glob(token, strings.Trim(w, ".-_")) {
			return true
		}
	}
	return false
}

// glob matches s against a pattern in which * stands for any characters.
func glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last) && len(s) >= len(last)
}

// matchesAnyGroup reports whether o satisfies every filter of some group (any
// object, when there are no groups).
func (st *objectStore) matchesAnyGroup(o *object, groups []filterGroup) bool {
	if len(groups) == 0 {
		return true
	}
	for _, g := range groups {
		all := len(g.Filters) > 0
		for _, f := range g.Filters {
			if !st.matches(o, f) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// matchesQuery reports whether a searchable property of o contains the query.
func (st *objectStore) matchesQuery(o *object, query string) bool {
	if query == "" {
		return true
	}
	for _, p := range st.typ.searchable {
		if v, ok := st.value(o, p); ok && strings.Contains(strings.ToLower(v), query) {
			return true
		}
	}
	return false
}

// order sorts objects by the rule (by ID when there is none); objects without
// the property come last, and ties go by ID.
func (st *objectStore) order(objs []*object, rule *sortRule) {
	if rule == nil {
		return
	}
	// Each object's value is read and parsed once, not at every comparison;
	// the comparisons answer as compareValues would.
	kind := st.typ.kind(rule.PropertyName)
	type sortKey struct {
		present, parsed bool
		lower           string
		num             float64
		when            time.Time
	}
	keys := make([]sortKey, len(objs))
	unparsed := false
	for i, o := range objs {
		v, ok := st.value(o, rule.PropertyName)
		k := sortKey{present: ok && v != "", lower: v}
		if t, ok := st.dateValue(o, rule.PropertyName); k.present && ok && kind == kindDate {
			k.when, k.parsed = t, true // as parseAs reads v
		} else if k.present {
			switch x, ok := parseAs(kind, v); x := x.(type) {
			case float64:
				k.num, k.parsed = x, ok
			case time.Time:
				k.when, k.parsed = x, ok
			default:
				k.parsed = ok
			}
		}
		unparsed = unparsed || k.present && !k.parsed
		keys[i] = k
	}
	// Values compare as lower-case text when they are text or when either
	// does not parse.
	for i := range keys {
		if kind == kindText || unparsed {
			keys[i].lower = strings.ToLower(keys[i].lower)
		}
	}
	perm := make([]int, len(objs))
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(i, j int) int {
		a, b := &keys[i], &keys[j]
		switch {
		case !a.present && !b.present:
			return 0
		case !a.present:
			return 1
		case !b.present:
			return -1
		}
		var c int
		switch {
		case !a.parsed || !b.parsed || kind == kindText:
			c = strings.Compare(a.lower, b.lower)
		case kind == kindNumber:
			switch {
			case a.num < b.num:
				c = -1
			case a.num > b.num:
				c = 1
			}
		default:
			c = a.when.Compare(b.when)
		}
		if rule.Direction == "DESCENDING" {
			c = -c
		}
		return c
	})
	sorted := make([]*object, len(objs))
	for i, p := range perm {
		sorted[i] = objs[p]
	}
	copy(objs, sorted)
}

// candidates lists by ID the objects a search must test: when every filter
// group has an EQ filter on a text property, the objects byValue holds with
// those values (a superset of those that match); else every object. Callers
// must not modify it.
func (st *objectStore) candidates(groups []filterGroup) []*object {
	if len(groups) == 0 {
		return st.sorted() // every object matches
	}
	var out []*object
	for _, g := range groups {
		if len(g.Filters) == 0 {
			continue // matches nothing
		}
		i := slices.IndexFunc(g.Filters, func(f filter) bool {
			p := f.PropertyName
			return f.Operator == "EQ" && st.typ.kind(p) == kindText && p != propObjectID && p != propCreateDate && p != st.typ.modified
		})
		if i < 0 {
			return st.sorted()
		}
		out = append(out, st.withKey(g.Filters[i].PropertyName, g.Filters[i].Value.s)...)
	}
	if len(groups) > 1 {
		slices.SortFunc(out, byID)
		out = slices.Compact(out)
	}
	return out
}

// search answers a validated search: archived objects never match, as in
// HubSpot.
func (st *objectStore) search(q *search) result {
	var matched []*object
	for _, o := range st.candidates(q.groups) {
		if !o.archived && st.matchesAnyGroup(o, q.groups) && st.matchesQuery(o, q.query) {
			matched = append(matched, o)
		}
	}
	st.order(matched, q.sort)
	results := []objectView{}
	for i := q.offset; i < len(matched) && i < q.offset+q.limit; i++ {
		results = append(results, st.view(matched[i], q.properties))
	}
	out := map[string]any{"total": len(matched), "results": results}
	if next := q.offset + q.limit; next < len(matched) {
		out["paging"] = map[string]any{"next": map[string]string{"after": strconv.Itoa(next)}}
	}
	return result{status: http.StatusOK, body: out}
}
