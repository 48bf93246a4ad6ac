package emulator

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestLookupByIDPropertyFollowsChanges looks companies up by a property that
// changes: after a change the new value finds the company and the old one
// does not, whether a request, a batch update or a person changed it; a
// cleared value finds nothing; of two companies sharing a value the first by
// ID is found, and archiving and restoring move between them.
func TestLookupByIDPropertyFollowsChanges(t *testing.T) {
	t.Parallel()
	s, ts, clock := newClockedSandbox(t)
	const byCustomer = "?idProperty=signalbox_customer_id&properties=signalbox_customer_id"
	get := func(value string) string {
		t.Helper()
		r := call(t, ts, "GET", "/crm/v3/objects/companies/"+value+byCustomer, "")
		if r.status == http.StatusNotFound {
			return ""
		}
		require.Equal(t, http.StatusOK, r.status, string(r.raw))
		return r.json(t)["id"].(string)
	}
	// batchRead answers the IDs found and the values not found.
	batchRead := func(values ...string) (found, missing []string) {
		t.Helper()
		var inputs []string
		for _, v := range values {
			inputs = append(inputs, `{"id":"`+v+`"}`)
		}
		r := call(t, ts, "POST", "/crm/v3/objects/companies/batch/read", `{"idProperty":"signalbox_customer_id","inputs":[`+strings.Join(inputs, ",")+`]}`)
		var out struct {
			Results []apiObject
			Errors  []struct{ Context struct{ IDs []string } }
		}
		r.decode(t, &out)
		for _, o := range out.Results {
			found = append(found, o.ID)
		}
		for _, e := range out.Errors {
			missing = append(missing, e.Context.IDs...)
		}
		return found, missing
	}

	a := createCompany(t, ts, `{"name":"A","signalbox_customer_id":"CUST-1"}`).ID
	b := createCompany(t, ts, `{"name":"B","signalbox_customer_id":"CUST-2"}`).ID
	require.Equal(t, a, get("CUST-1"))
	require.Equal(t, a, get("cust-1"), "values compare without regard to case")

	clock.Add(time.Second)
	must(t, ts, 200, "PATCH", "/crm/v3/objects/companies/"+a, `{"properties":{"signalbox_customer_id":"CUST-3"}}`)
	require.Equal(t, a, get("CUST-3"), "the new value finds the company")
	require.Empty(t, get("CUST-1"), "the old value no longer does")
	found, missing := batchRead("CUST-1", "CUST-3", "CUST-2")
	require.Equal(t, []string{a, b}, found)
	require.Equal(t, []string{"CUST-1"}, missing)

	// PATCH by idProperty, changing the very value it addresses.
	must(t, ts, 200, "PATCH", "/crm/v3/objects/companies/CUST-3?idProperty=signalbox_customer_id", `{"properties":{"signalbox_customer_id":"CUST-4"}}`)
	require.Equal(t, a, get("CUST-4"))
	refused(t, ts, 404, "OBJECT_NOT_FOUND", "PATCH", "/crm/v3/objects/companies/CUST-3?idProperty=signalbox_customer_id", `{"properties":{"name":"x"}}`)

	must(t, ts, 200, "POST", "/crm/v3/objects/companies/batch/update", `{"inputs":[{"id":"`+a+`","properties":{"signalbox_customer_id":"CUST-5"}}]}`)
	require.Equal(t, a, get("CUST-5"))
	require.Empty(t, get("CUST-4"))

	postJSON(t, ts.URL+"/_sandbox/companies/"+a+"/edit", `{"properties":{"signalbox_customer_id":"CUST-6"}}`, http.StatusOK)
	require.Equal(t, a, get("CUST-6"), "a person's edit moves the value too")
	require.Empty(t, get("CUST-5"))

	must(t, ts, 200, "PATCH", "/crm/v3/objects/companies/"+a, `{"properties":{"signalbox_customer_id":null}}`)
	require.Empty(t, get("CUST-6"), "a cleared value finds nothing")
	found, missing = batchRead("CUST-6")
	require.Empty(t, found)
	require.Equal(t, []string{"CUST-6"}, missing)

	// Two companies share a value: the first by ID is found, as ever.
	must(t, ts, 200, "PATCH", "/crm/v3/objects/companies/"+a, `{"properties":{"signalbox_customer_id":"cust-2"}}`)
	c := createCompany(t, ts, `{"name":"C","signalbox_customer_id":"Cust-2"}`).ID
	require.Equal(t, a, get("CUST-2"))
	found, _ = batchRead("CUST-2", "cust-2")
	require.Equal(t, []string{a}, found, "inputs naming one company answer it once")
	must(t, ts, 204, "DELETE", "/crm/v3/objects/companies/"+a, "")
	require.Equal(t, b, get("CUST-2"), "archived, the first no longer is")
	r := must(t, ts, 200, "GET", "/crm/v3/objects/companies/CUST-2"+byCustomer+"&archived=true", "")
	require.Equal(t, a, r.json(t)["id"], "but archived=true finds it")
	must(t, ts, 204, "DELETE", "/crm/v3/objects/companies/"+b, "")
	require.Equal(t, c, get("CUST-2"))
	postJSON(t, ts.URL+"/_sandbox/companies/"+a+"/restore", ``, http.StatusOK)
	require.Equal(t, a, get("CUST-2"), "restored, it is again")

	// The last-modified date, which every change moves, finds by its value too.
	clock.Add(time.Minute)
	must(t, ts, 200, "PATCH", "/crm/v3/objects/companies/"+c, `{"properties":{"name":"C2"}}`)
	r = must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+formatTime(clock.Now())+"?idProperty=hs_lastmodifieddate", "")
	require.Equal(t, c, r.json(t)["id"])

	postJSON(t, ts.URL+"/_sandbox/reset", `{}`, http.StatusOK)
	require.Empty(t, get("CUST-2"), "a reset forgets every value")
	s.mu.Lock()
	defer s.mu.Unlock()
	requireIndexed(t, s.crm.companies)
}

// TestValueKeyJoinsWhatCompareEqual holds valueKey to its promise over every
// rune: runes equal by strings.EqualFold or by strings.ToLower have one key.
func TestValueKeyJoinsWhatCompareEqual(t *testing.T) {
	t.Parallel()
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		k := valueKey(string(r))
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			require.True(t, strings.EqualFold(string(r), string(f)))
			require.Equal(t, k, valueKey(string(f)), "%U and %U fold together", r, f)
		}
		require.Equal(t, k, valueKey(strings.ToLower(string(r))), "%U lower-cases to %q", r, strings.ToLower(string(r)))
	}
	// ASCII takes a short cut, which must agree with the long way.
	var ascii []byte
	for c := range byte(utf8.RuneSelf) {
		ascii = append(ascii, c)
	}
	var long strings.Builder
	for _, r := range string(ascii) {
		long.WriteRune(leastFold(unicode.ToLower(r)))
	}
	require.Equal(t, long.String(), valueKey(string(ascii)))
	require.Equal(t, valueKey("\xff"), valueKey("\xfe"), "EqualFold reads invalid bytes as U+FFFD")
	require.True(t, strings.EqualFold("\xff", "\xfe"))
}

// TestIndexesAnswerAsScans mutates a store at random and compares every
// lookup and search with what scanning every object answers, as the emulator
// did before it kept indexes.
func TestIndexesAnswerAsScans(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, typ := range []*objectType{companies, contacts} {
		st := newObjectStore(typ, 1)
		now := t0
		// Few values, in several cases, so objects share them.
		values := []string{"", "a", "A", "b", "Straße", "STRASSE", "ſ", "s", "K", "k", "İ", "i", "x@y.com", "X@Y.COM", "1", "1.0", "2026-11-26"}
		props := []string{"name", "domain", "city", "numberofemployees", "email", "firstname", "company"}
		for i := range 2000 {
			now = now.Add(time.Duration(rng.IntN(3)) * 500 * time.Millisecond)
			objs := st.sorted() // requireIndexed checks it
			var o *object
			if len(objs) > 0 {
				o = objs[rng.IntN(len(objs))]
			}
			change := map[string]string{}
			for range 1 + rng.IntN(2) {
				if p := props[rng.IntN(len(props))]; typ.writable[p] {
					change[p] = values[rng.IntN(len(values))]
				}
			}
			switch op := rng.IntN(10); {
			case op < 3 || o == nil:
				st.insert(change, now)
			case op < 7 && !o.archived:
				st.apply(o, change, now, rng.IntN(2) == 0)
			case op < 8 && !o.archived:
				st.archive(o, now)
			case op < 9 && o.archived:
				_ = st.restore(o, now)
			default:
				// Numbering restarts below IDs in use, as SetFirstCompanyID
				// allows: the new object replaces the old.
				if rng.IntN(20) == 0 {
					st.nextID = max(1, st.nextID-rng.IntN(5))
				}
			}
			if i%100 != 99 {
				continue
			}
			requireIndexed(t, st)
			objs = slices.Collect(maps.Values(st.objects))
			slices.SortFunc(objs, func(a, b *object) int { return compareIDs(a.id, b.id) })
			for _, p := range append(slices.Clone(props), propCreateDate, typ.modified, propObjectID, "bogus") {
				for _, v := range append(slices.Clone(values), "ß", "SS", formatTime(now), strconv.Itoa(st.nextID-1)) {
					for _, archived := range []bool{false, true} {
						want, got := scanLookup(st, objs, p, v, archived), st.lookup(p, v, archived)
						require.True(t, want == got, "%s lookup %s=%q archived=%v: want %v, got %v", typ.name, p, v, archived, want, got)
					}
				}
				for _, body := range []string{
					`{"filterGroups":[{"filters":[{"propertyName":"` + p + `","operator":"EQ","value":"a"}]}],"sorts":["` + p + `"],"limit":200}`,
					`{"filterGroups":[{"filters":[{"propertyName":"` + p + `","operator":"EQ","value":"straße"}]},{"filters":[{"propertyName":"` + p + `","operator":"EQ","value":"k"},{"propertyName":"name","operator":"HAS_PROPERTY"}]}],"limit":200}`,
					`{"filterGroups":[{"filters":[{"propertyName":"` + p + `","operator":"EQ","value":"1"}]},{"filters":[]}],"sorts":["-` + p + `"],"limit":200}`,
					`{"filterGroups":[{"filters":[{"propertyName":"` + p + `","operator":"GTE","value":"` + strconv.FormatInt(t0.Add(time.Minute).UnixMilli(), 10) + `"}]}],"sorts":["-` + p + `"],"limit":200}`,
					`{"filterGroups":[{"filters":[{"propertyName":"` + p + `","operator":"LT","value":"2026-11-26T12:05:00Z"}]}],"sorts":["` + p + `"],"limit":200,"after":"3"}`,
					`{"filterGroups":[{"filters":[{"propertyName":"` + p + `","operator":"IN","values":["a","2026-11-26T12:00:00.000Z"]}]}],"limit":200}`,
					`{"sorts":["` + p + `"],"limit":200}`, `{"sorts":["-` + p + `"],"limit":200,"after":"7"}`, `{"query":"a","limit":200}`,
				} {
					q, bad := parseSearch(typ, []byte(body))
					if bad != nil {
						continue // a filter value that is no date or number for p
					}
					require.Equal(t, scanSearch(st, objs, q), st.search(q).body, "%s search %s", typ.name, body)
				}
			}
		}
	}
}

// requireIndexed requires the store's indexes to be what its objects make.
func requireIndexed(t *testing.T, st *objectStore) {
	t.Helper()
	objs := slices.Collect(maps.Values(st.objects))
	slices.SortFunc(objs, byID)
	require.Equal(t, objs, st.ordered, "objects in ID order")
	want := map[string]map[string][]*object{}
	for _, o := range objs {
		require.Equal(t, formatTime(o.created), o.createdText)
		require.Equal(t, formatTime(o.updated), o.updatedText)
		st.indexed(o, func(prop, v string) {
			if want[prop] == nil {
				want[prop] = map[string][]*object{}
			}
			want[prop][valueKey(v)] = append(want[prop][valueKey(v)], o)
		})
	}
	for prop, keys := range st.byValue {
		if len(keys) == 0 {
			delete(st.byValue, prop) // an empty map is as good as none
		}
	}
	require.Equal(t, want, st.byValue)
}

// scanLookup is lookup as the emulator answered before it kept indexes;
// objs are the store's objects sorted by ID.
func scanLookup(st *objectStore, objs []*object, idProperty, id string, archived bool) *object {
	switch idProperty {
	case "", propObjectID:
		return st.get(id, archived)
	case st.typ.unique:
		if !archived {
			return st.get(st.index[strings.ToLower(id)], false)
		}
	}
	for _, o := range objs {
		if v, ok := scanValue(st, o, idProperty); ok && o.archived == archived && strings.EqualFold(v, id) {
			return o
		}
	}
	return nil
}

// scanValue is value as the emulator answered before it kept indexes.
func scanValue(st *objectStore, o *object, prop string) (string, bool) {
	switch prop {
	case propObjectID:
		return o.id, true
	case propCreateDate:
		return formatTime(o.created), true
	case st.typ.modified:
		return formatTime(o.updated), true
	}
	v, ok := o.props[prop]
	return v, ok
}

// scanSearch is search's answer as the emulator made it before it kept
// indexes: every object tested, in ID order (objs), and sorted comparing
// values.
func scanSearch(st *objectStore, objs []*object, q *search) any {
	var matched []*object
	for _, o := range objs {
		if o.archived || !st.matchesQuery(o, q.query) {
			continue
		}
		for _, g := range q.groups {
			all := len(g.Filters) > 0
			for _, f := range g.Filters {
				all = all && scanMatches(st, o, f)
			}
			if all {
				matched = append(matched, o)
				break
			}
		}
		if len(q.groups) == 0 {
			matched = append(matched, o)
		}
	}
	if rule := q.sort; rule != nil {
		kind := st.typ.kind(rule.PropertyName)
		slices.SortStableFunc(matched, func(a, b *object) int {
			va, oka := scanValue(st, a, rule.PropertyName)
			vb, okb := scanValue(st, b, rule.PropertyName)
			oka, okb = oka && va != "", okb && vb != ""
			switch {
			case !oka && !okb:
				return 0
			case !oka:
				return 1
			case !okb:
				return -1
			}
			c, ok := compareValues(kind, va, vb)
			if !ok {
				c = strings.Compare(strings.ToLower(va), strings.ToLower(vb))
			}
			if rule.Direction == "DESCENDING" {
				c = -c
			}
			return c
		})
	}
	results := []objectView{}
	for i := q.offset; i < len(matched) && i < q.offset+q.limit; i++ {
		results = append(results, st.view(matched[i], q.properties))
	}
	out := map[string]any{"total": len(matched), "results": results}
	if next := q.offset + q.limit; next < len(matched) {
		out["paging"] = map[string]any{"next": map[string]string{"after": strconv.Itoa(next)}}
	}
	return out
}

// scanMatches is matches as the emulator answered before it kept indexes,
// for the operators TestIndexesAnswerAsScans uses.
func scanMatches(st *objectStore, o *object, f filter) bool {
	have, ok := scanValue(st, o, f.PropertyName)
	present := ok && have != ""
	kind := st.typ.kind(f.PropertyName)
	c, ok := 0, false
	if present && f.Value.set {
		c, ok = compareValues(kind, have, f.Value.s)
	}
	switch f.Operator {
	case "HAS_PROPERTY":
		return present
	case "EQ":
		return ok && c == 0
	case "LT":
		return ok && c < 0
	case "GTE":
		return ok && c >= 0
	case "IN":
		return st.in(have, present, kind, f.Values)
	}
	panic(fmt.Sprintf("scanMatches does not know %s", f.Operator))
}
