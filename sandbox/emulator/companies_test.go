package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// fakeClock is a settable clock for Server.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// newClockedSandbox is a sandbox whose clock the test moves.
func newClockedSandbox(t *testing.T) (*Server, *httptest.Server, *fakeClock) {
	t.Helper()
	s, ts := newSandbox(t, nil)
	clock := &fakeClock{t: t0}
	s.now = clock.Now
	return s, ts, clock
}

// reply is an answer of the sandbox.
type reply struct {
	status int
	header http.Header
	raw    []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	out := map[string]any{}
	require.NoError(t, json.Unmarshal(r.raw, &out), string(r.raw))
	return out
}

// decode decodes into v afresh (JSON would merge into what v holds).
func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	require.NoError(t, json.Unmarshal(r.raw, v), string(r.raw))
}

// call sends a request with the CRM's token.
func call(t *testing.T, ts *httptest.Server, method, path, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// must sends a request and requires the status.
func must(t *testing.T, ts *httptest.Server, status int, method, path, body string) reply {
	t.Helper()
	r := call(t, ts, method, path, body)
	require.Equal(t, status, r.status, "%s %s: %s", method, path, r.raw)
	return r
}

// refused requires a HubSpot error with the status and category.
func refused(t *testing.T, ts *httptest.Server, status int, category, method, path, body string) map[string]any {
	t.Helper()
	out := must(t, ts, status, method, path, body).json(t)
	require.Equal(t, "error", out["status"])
	require.Equal(t, category, out["category"], out)
	return out
}

// apiObject is an object as signalbox's Go clients decode one (crm.Contact,
// crm.Company): property values as strings, where a null becomes "". Tests
// that tell null from "" decode into map[string]any instead.
type apiObject struct {
	ID         string            `json:"id"`
	Properties map[string]string `json:"properties"`
	CreatedAt  string            `json:"createdAt"`
	UpdatedAt  string            `json:"updatedAt"`
	Archived   bool              `json:"archived"`
	ArchivedAt string            `json:"archivedAt"`
}

type searchPage struct {
	Total   int         `json:"total"`
	Results []apiObject `json:"results"`
	Paging  *struct {
		Next struct{ After, Link string }
	} `json:"paging"`
}

func (p searchPage) ids() []string {
	out := []string{}
	for _, r := range p.Results {
		out = append(out, r.ID)
	}
	return out
}

func createCompany(t *testing.T, ts *httptest.Server, props string) apiObject {
	t.Helper()
	var v apiObject
	must(t, ts, http.StatusCreated, "POST", "/crm/v3/objects/companies", `{"properties":`+props+`}`).decode(t, &v)
	return v
}

func searchCompanies(t *testing.T, ts *httptest.Server, body string) searchPage {
	t.Helper()
	var p searchPage
	must(t, ts, http.StatusOK, "POST", "/crm/v3/objects/companies/search", body).decode(t, &p)
	return p
}

func TestCompaniesCreateGetUpdateArchive(t *testing.T) {
	t.Parallel()
	_, ts, clock := newClockedSandbox(t)

	acme := createCompany(t, ts, `{"name":"Acme","domain":"acme.com","numberofemployees":"50"}`)
	_, err := strconv.ParseInt(acme.ID, 10, 64)
	require.NoError(t, err, "IDs are numeric strings")
	require.Equal(t, map[string]string{"name": "Acme", "domain": "acme.com", "numberofemployees": "50",
		"hs_object_id": acme.ID, "createdate": "2026-11-26T12:00:00.000Z", "hs_lastmodifieddate": "2026-11-26T12:00:00.000Z"}, acme.Properties)
	require.Equal(t, "2026-11-26T12:00:00.000Z", acme.CreatedAt)
	require.False(t, acme.Archived)
	other := createCompany(t, ts, `{"name":"Other"}`)
	require.NotEqual(t, acme.ID, other.ID)

	var got apiObject
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+acme.ID+"?properties=name&properties=numberofemployees", "").decode(t, &got)
	require.Equal(t, map[string]string{"name": "Acme", "numberofemployees": "50", "hs_object_id": acme.ID,
		"createdate": "2026-11-26T12:00:00.000Z", "hs_lastmodifieddate": "2026-11-26T12:00:00.000Z"}, got.Properties,
		"repeated properties are all returned, with the three HubSpot always returns")
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+acme.ID+"?properties=domain,name", "").decode(t, &got)
	require.Equal(t, "acme.com", got.Properties["domain"])
	require.Equal(t, "Acme", got.Properties["name"])
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+acme.ID, "").decode(t, &got)
	require.ElementsMatch(t, []string{"name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"}, keys(got.Properties), "the defaults")
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/acme.com?idProperty=domain", "").decode(t, &got)
	require.Equal(t, acme.ID, got.ID)
	refused(t, ts, 404, "OBJECT_NOT_FOUND", "GET", "/crm/v3/objects/companies/999", "")

	clock.Add(time.Minute)
	var updated apiObject
	must(t, ts, 200, "PATCH", "/crm/v3/objects/companies/"+acme.ID, `{"properties":{"city":"Leeds"}}`).decode(t, &updated)
	require.Equal(t, "Leeds", updated.Properties["city"])
	require.Equal(t, "2026-11-26T12:01:00.000Z", updated.Properties["hs_lastmodifieddate"])
	require.Equal(t, "2026-11-26T12:01:00.000Z", updated.UpdatedAt)
	clock.Add(time.Minute)
	must(t, ts, 200, "PATCH", "/crm/v3/objects/companies/"+acme.ID, `{"properties":{"city":"Leeds"}}`).decode(t, &updated)
	require.Equal(t, "2026-11-26T12:02:00.000Z", updated.Properties["hs_lastmodifieddate"], "a PATCH that changes nothing still bumps the date")
	require.Equal(t, "2026-11-26T12:00:00.000Z", updated.Properties["createdate"])
	refused(t, ts, 404, "OBJECT_NOT_FOUND", "PATCH", "/crm/v3/objects/companies/999", `{"properties":{"city":"York"}}`)

	clock.Add(time.Minute)
	r := must(t, ts, 204, "DELETE", "/crm/v3/objects/companies/"+acme.ID, "")
	require.Empty(t, r.raw)
	refused(t, ts, 404, "OBJECT_NOT_FOUND", "GET", "/crm/v3/objects/companies/"+acme.ID, "")
	refused(t, ts, 404, "OBJECT_NOT_FOUND", "PATCH", "/crm/v3/objects/companies/"+acme.ID, `{"properties":{"city":"York"}}`)
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+acme.ID+"?archived=true", "").decode(t, &got)
	require.True(t, got.Archived)
	require.Equal(t, "2026-11-26T12:03:00.000Z", got.ArchivedAt)
	refused(t, ts, 404, "OBJECT_NOT_FOUND", "GET", "/crm/v3/objects/companies/"+other.ID+"?archived=true", "")
	must(t, ts, 204, "DELETE", "/crm/v3/objects/companies/"+acme.ID, "")
	must(t, ts, 204, "DELETE", "/crm/v3/objects/companies/999", "")

	var log struct{ Requests []Entry }
	getJSON(t, ts.URL+"/_sandbox/requests?endpoint=crm.companies.archive", &log)
	require.Len(t, log.Requests, 3)
	require.True(t, log.Requests[0].Effect)
	require.False(t, log.Requests[1].Effect, "archiving again changes nothing")
	require.False(t, log.Requests[2].Effect)
}

// with returns a copy of base with more's values added.
func with(base, more map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, more)
	return out
}

func keys(m map[string]string) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCompaniesRefusals(t *testing.T) {
	t.Parallel()
	s, ts := newSandbox(t, nil)
	id := createCompany(t, ts, `{"name":"Acme"}`).ID

	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/crm/v3/objects/companies", `{"properties":`, "Invalid input JSON"},
		{"POST", "/crm/v3/objects/companies", `{"name":"Acme"}`, `expected {"properties"`},
		{"POST", "/crm/v3/objects/companies", `{"properties":{"shoe_size":"9"}}`, `Property "shoe_size" does not exist`},
		{"POST", "/crm/v3/objects/companies", `{"properties":{"hs_lastmodifieddate":"1"}}`, "READ_ONLY_VALUE"},
		{"POST", "/crm/v3/objects/companies", `{"properties":{"hs_object_id":"1"}}`, "READ_ONLY_VALUE"},
		{"POST", "/crm/v3/objects/companies", `{"properties":{"numberofemployees":"lots"}}`, "not a valid number"},
		{"POST", "/crm/v3/objects/companies", `{"properties":{"name":"A"},"associations":[{"to":{"id":"1"}}]}`, "associations"},
		{"PATCH", "/crm/v3/objects/companies/" + id, `[]`, "Invalid input JSON"},
		{"PATCH", "/crm/v3/objects/companies/" + id, `{"properties":{"createdate":"2020-01-01"}}`, "READ_ONLY_VALUE"},
		{"GET", "/crm/v3/objects/companies/" + id + "?archived=maybe", "", "archived must be true or false"},
		{"GET", "/crm/v3/objects/companies?limit=101", "", "limit must be"},
		{"GET", "/crm/v3/objects/companies?limit=0", "", "limit must be"},
		{"GET", "/crm/v3/objects/companies?after=x", "", "paging.next.after"},
	} {
		out := refused(t, ts, http.StatusBadRequest, "VALIDATION_ERROR", c.method, c.path, c.body)
		require.Contains(t, out["message"], c.want, "%s %s %s", c.method, c.path, c.body)
	}

	req, _ := http.NewRequest("GET", ts.URL+"/crm/v3/objects/companies/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "companies need the bearer token too")

	live, _ := s.crm.companies.count()
	require.Equal(t, 1, live, "no refused create stored anything")
}

func TestCompaniesListPagesByID(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	var made []string
	for i := range 25 {
		made = append(made, createCompany(t, ts, fmt.Sprintf(`{"name":"Co %d"}`, i)).ID)
	}
	must(t, ts, 204, "DELETE", "/crm/v3/objects/companies/"+made[3], "")
	live := append(append([]string{}, made[:3]...), made[4:]...)

	var seen []string
	path := "/crm/v3/objects/companies?limit=10&properties=name"
	for pages := 1; ; pages++ {
		var p searchPage
		must(t, ts, 200, "GET", path, "").decode(t, &p)
		require.Zero(t, p.Total, "the list has no total")
		seen = append(seen, p.ids()...)
		for _, r := range p.Results {
			require.NotEmpty(t, r.Properties["name"])
		}
		if p.Paging == nil {
			require.Equal(t, 3, pages)
			break
		}
		require.Contains(t, p.Paging.Next.Link, "after="+p.Paging.Next.After)
		require.Contains(t, p.Paging.Next.Link, "limit=10")
		path = "/crm/v3/objects/companies?limit=10&properties=name&after=" + p.Paging.Next.After
	}
	require.Equal(t, live, seen, "every live company once, by ID")

	var p searchPage
	must(t, ts, 200, "GET", "/crm/v3/objects/companies", "").decode(t, &p)
	require.Len(t, p.Results, 10, "the default limit")
	must(t, ts, 200, "GET", "/crm/v3/objects/companies?archived=true", "").decode(t, &p)
	require.Equal(t, []string{made[3]}, p.ids(), "archived=true lists only archived ones")
}

func TestCompaniesSearchOperatorsAndSorts(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	acme := createCompany(t, ts, `{"name":"Acme Widgets","domain":"acme.com","city":"Leeds","numberofemployees":"50","industry":"Manufacturing"}`).ID
	bolt := createCompany(t, ts, `{"name":"Bolt Ltd","domain":"bolt.io","city":"York","numberofemployees":"500"}`).ID
	cog := createCompany(t, ts, `{"name":"Cog & Sons","domain":"cog.co.uk","numberofemployees":"5"}`).ID
	gone := createCompany(t, ts, `{"name":"Gone Ltd","city":"Leeds"}`).ID
	must(t, ts, 204, "DELETE", "/crm/v3/objects/companies/"+gone, "")

	one := func(f string) string { return `{"filterGroups":[{"filters":[` + f + `]}]}` }
	for _, c := range []struct {
		body string
		want []string
	}{
		{`{}`, []string{acme, bolt, cog}},
		{one(`{"propertyName":"city","operator":"EQ","value":"leeds"}`), []string{acme}},
		{one(`{"propertyName":"city","operator":"NEQ","value":"Leeds"}`), []string{bolt, cog}},
		{one(`{"propertyName":"numberofemployees","operator":"GT","value":"50"}`), []string{bolt}},
		{one(`{"propertyName":"numberofemployees","operator":"GTE","value":50}`), []string{acme, bolt}},
		{one(`{"propertyName":"numberofemployees","operator":"LT","value":"50"}`), []string{cog}},
		{one(`{"propertyName":"numberofemployees","operator":"LTE","value":"50"}`), []string{acme, cog}},
		{one(`{"propertyName":"numberofemployees","operator":"BETWEEN","value":"5","highValue":"50"}`), []string{acme, cog}},
		{one(`{"propertyName":"city","operator":"IN","values":["york","leeds"]}`), []string{acme, bolt}},
		{one(`{"propertyName":"city","operator":"IN","values":["York"]}`), []string{}},
		{one(`{"propertyName":"city","operator":"NOT_IN","values":["york"]}`), []string{acme, cog}},
		{one(`{"propertyName":"industry","operator":"HAS_PROPERTY"}`), []string{acme}},
		{one(`{"propertyName":"industry","operator":"NOT_HAS_PROPERTY"}`), []string{bolt, cog}},
		{one(`{"propertyName":"name","operator":"CONTAINS_TOKEN","value":"widgets"}`), []string{acme}},
		{one(`{"propertyName":"domain","operator":"CONTAINS_TOKEN","value":"*.io"}`), []string{bolt}},
		{one(`{"propertyName":"name","operator":"NOT_CONTAINS_TOKEN","value":"ltd"}`), []string{acme, cog}},
		{one(`{"propertyName":"hs_object_id","operator":"EQ","value":"` + cog + `"}`), []string{cog}},
		{one(`{"propertyName":"city","operator":"EQ","value":"Leeds"},{"propertyName":"numberofemployees","operator":"GT","value":"100"}`), []string{}},
		{`{"filterGroups":[{"filters":[{"propertyName":"city","operator":"EQ","value":"York"}]},{"filters":[{"propertyName":"domain","operator":"EQ","value":"cog.co.uk"}]}]}`, []string{bolt, cog}},
		{`{"sorts":[{"propertyName":"numberofemployees","direction":"DESCENDING"}]}`, []string{bolt, acme, cog}},
		{`{"sorts":["numberofemployees"]}`, []string{cog, acme, bolt}},
		{`{"sorts":["-name"]}`, []string{cog, bolt, acme}},
		{`{"sorts":[{"propertyName":"city","direction":"ASCENDING"}]}`, []string{acme, bolt, cog}},
		{`{"query":"bolt"}`, []string{bolt}},
	} {
		p := searchCompanies(t, ts, c.body)
		require.Equal(t, c.want, p.ids(), c.body)
		require.Equal(t, len(c.want), p.Total, c.body)
	}

	p := searchCompanies(t, ts, `{"properties":["city"],"limit":1}`)
	require.Equal(t, 3, p.Total)
	require.Equal(t, map[string]string{"city": "Leeds", "hs_object_id": acme, "createdate": p.Results[0].Properties["createdate"],
		"hs_lastmodifieddate": p.Results[0].Properties["hs_lastmodifieddate"]}, p.Results[0].Properties)
	require.Equal(t, "1", p.Paging.Next.After)
}

func TestCompaniesSearchRefusals(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	f := `{"propertyName":"name","operator":"EQ","value":"x"}`
	group := func(n int) string { return `{"filters":[` + strings.TrimSuffix(strings.Repeat(f+",", n), ",") + `]}` }
	groups := func(n, each int) string {
		return `{"filterGroups":[` + strings.TrimSuffix(strings.Repeat(group(each)+",", n), ",") + `]}`
	}
	searchCompanies(t, ts, groups(5, 3))
	searchCompanies(t, ts, groups(3, 6))
	for body, want := range map[string]string{
		`{"filterGroups":`: "Invalid input JSON",
		groups(6, 1):       "at most 5 filterGroups",
		groups(1, 7):       "at most 6 filters",
		groups(4, 5):       "at most 18 filters in all",
		`{"filterGroups":[{"filters":[{"propertyName":"name","operator":"LIKE","value":"x"}]}]}`:               "Unknown filter operator",
		`{"filterGroups":[{"filters":[{"propertyName":"name","operator":"IN","value":"x"}]}]}`:                 "needs a values array",
		`{"filterGroups":[{"filters":[{"propertyName":"name","operator":"EQ"}]}]}`:                             "needs a value",
		`{"filterGroups":[{"filters":[{"operator":"EQ","value":"x"}]}]}`:                                       "needs a propertyName",
		`{"filterGroups":[{"filters":[{"propertyName":"createdate","operator":"GTE","value":"yesterday"}]}]}`:  "epoch milliseconds",
		`{"filterGroups":[{"filters":[{"propertyName":"numberofemployees","operator":"GT","value":"many"}]}]}`: "give a number",
		`{"filterGroups":[{"filters":[{"propertyName":"name","operator":"BETWEEN","value":"a"}]}]}`:            "needs value and highValue",
		`{"sorts":["name","domain"]}`:                          "at most 1 sort",
		`{"sorts":[{"propertyName":"name","direction":"UP"}]}`: "ASCENDING or DESCENDING",
		`{"limit":201}`:                   "limit must be between 1 and 200",
		`{"limit":"many"}`:                "limit must be between 1 and 200",
		`{"after":"9223372036854775807"}`: "limited to 10000",
		`{"limit":-1}`:                    "limit must be between 1 and 200",
		`{"after":"NTI1Cg"}`:              "integer",
		`{"properties":["` + strings.Repeat("x", 3000) + `"]}`: "at most 3000",
	} {
		out := refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/search", body)
		require.Contains(t, out["message"], want, body)
	}
}

func TestCompaniesSearchPagesWithAfter(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	var made []string
	for i := range 25 {
		made = append(made, createCompany(t, ts, fmt.Sprintf(`{"name":"Co %02d","lead_source":"web"}`, i)).ID)
	}
	var seen []string
	body := `{"filterGroups":[{"filters":[{"propertyName":"lead_source","operator":"EQ","value":"web"}]}],"limit":10}`
	for pages := 1; ; pages++ {
		p := searchCompanies(t, ts, body)
		require.Equal(t, 25, p.Total)
		seen = append(seen, p.ids()...)
		if p.Paging == nil {
			require.Equal(t, 3, pages)
			break
		}
		body = `{"filterGroups":[{"filters":[{"propertyName":"lead_source","operator":"EQ","value":"web"}]}],"limit":10,"after":"` + p.Paging.Next.After + `"}`
	}
	require.Equal(t, made, seen, "by ID ascending, each once")
	p := searchCompanies(t, ts, `{"after":20}`)
	require.Len(t, p.Results, 5, "after may be sent as a number too")
	require.Nil(t, p.Paging)
	require.Len(t, searchCompanies(t, ts, `{}`).Results, 10, "the default limit")
}

func TestCompaniesSearchStopsAtTenThousand(t *testing.T) {
	t.Parallel()
	s, ts := newSandbox(t, nil)
	s.mu.Lock()
	for i := range 10_050 {
		s.crm.companies.insert(map[string]string{"name": fmt.Sprintf("Co %d", i)}, t0)
	}
	s.mu.Unlock()

	p := searchCompanies(t, ts, `{"limit":200,"after":"9800"}`)
	require.Equal(t, 10_050, p.Total, "the total counts every match")
	require.Len(t, p.Results, 200)
	require.Equal(t, "10000", p.Paging.Next.After, "HubSpot offers the next page...")
	for _, body := range []string{`{"limit":200,"after":"10000"}`, `{"after":"10000"}`, `{"limit":20,"after":"9990"}`} {
		out := refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/search", body)
		require.Contains(t, out["message"], "limited to 10000", "...and refuses it")
	}
	require.Len(t, searchCompanies(t, ts, `{"limit":10,"after":"9990"}`).Results, 10)
}

func TestCompaniesChangedSinceATime(t *testing.T) {
	t.Parallel()
	s, ts, clock := newClockedSandbox(t)
	a := createCompany(t, ts, `{"name":"A"}`).ID
	b := createCompany(t, ts, `{"name":"B"}`).ID
	c := createCompany(t, ts, `{"name":"C"}`).ID
	d := createCompany(t, ts, `{"name":"D"}`).ID

	since := clock.Add(time.Hour)
	// A person edits B in HubSpot; signalbox patches C with what it already has.
	var edited apiObject
	r := postJSON(t, ts.URL+"/_sandbox/companies/"+b+"/edit", `{"properties":{"phone":"+44 113 000"}}`, http.StatusOK)
	raw, _ := json.Marshal(r)
	require.NoError(t, json.Unmarshal(raw, &edited))
	require.Equal(t, formatTime(since), edited.Properties["hs_lastmodifieddate"], "a person's edit bumps the date")
	must(t, ts, 200, "PATCH", "/crm/v3/objects/companies/"+c, `{"properties":{"name":"C"}}`)
	clock.Add(time.Minute)

	ms := strconv.FormatInt(since.UnixMilli(), 10)
	gte := func(v string) []string {
		return searchCompanies(t, ts, `{"filterGroups":[{"filters":[{"propertyName":"hs_lastmodifieddate","operator":"GTE","value":`+v+`}]}]}`).ids()
	}
	require.Equal(t, []string{b, c}, gte(`"`+ms+`"`), "epoch milliseconds, as HubSpot takes them")
	require.Equal(t, []string{b, c}, gte(ms), "a number too")
	require.Equal(t, []string{b, c}, gte(`"2026-11-26T13:00:00Z"`), "ISO 8601 too")
	require.Equal(t, []string{b, c}, gte(`"2026-11-26T13:00:00.000Z"`))
	require.Empty(t, gte(`"`+strconv.FormatInt(since.UnixMilli()+1, 10)+`"`))
	p := searchCompanies(t, ts, `{"filterGroups":[{"filters":[{"propertyName":"hs_lastmodifieddate","operator":"LT","value":"`+ms+`"}]}],"sorts":[{"propertyName":"hs_lastmodifieddate","direction":"DESCENDING"}]}`)
	require.Equal(t, []string{a, d}, p.ids())

	var log struct{ Requests []Entry }
	getJSON(t, ts.URL+"/_sandbox/requests", &log)
	for _, e := range log.Requests {
		require.NotContains(t, e.Path, "_sandbox", "a person's edits are not API requests")
	}
	require.Equal(t, 1, s.Stats().Requests["crm.companies.update"])
}

func TestPersonCreatesArchivesAndRestoresCompanies(t *testing.T) {
	t.Parallel()
	s, ts, clock := newClockedSandbox(t)
	require.NoError(t, s.SetCRMLimit(1))
	made := postJSON(t, ts.URL+"/_sandbox/companies", `{"properties":{"name":"Hand Made","domain":"hand.com"}}`, http.StatusCreated)
	id := made["id"].(string)
	out := postJSON(t, ts.URL+"/_sandbox/companies", `{"properties":{"shoe_size":"9"}}`, http.StatusBadRequest)
	require.Contains(t, out["message"], "does not exist")
	postJSON(t, ts.URL+"/_sandbox/companies", `{"name":"x"}`, http.StatusBadRequest)
	for range 3 {
		postJSON(t, ts.URL+"/_sandbox/companies/"+id+"/edit", `{"properties":{"city":"Hull"}}`, http.StatusOK)
	}
	postJSON(t, ts.URL+"/_sandbox/companies/999/edit", `{"properties":{"city":"Hull"}}`, http.StatusNotFound)

	search := func() []string { return searchCompanies(t, ts, `{}`).ids() }
	require.Equal(t, []string{id}, search())
	clock.Add(time.Second)

	req, _ := http.NewRequest("DELETE", ts.URL+"/_sandbox/companies/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	clock.Add(time.Second)
	require.Empty(t, search(), "archived companies are not found")
	clock.Add(time.Second)
	refused(t, ts, 404, "OBJECT_NOT_FOUND", "GET", "/crm/v3/objects/companies/"+id, "")
	out = postJSON(t, ts.URL+"/_sandbox/companies/"+id+"/edit", `{"properties":{"city":"Hull"}}`, http.StatusNotFound)
	require.Contains(t, out["error"], "restore it first")

	var all struct{ Companies []apiObject }
	getJSON(t, ts.URL+"/_sandbox/companies", &all)
	require.Len(t, all.Companies, 1, "the sandbox lists archived companies too")
	require.True(t, all.Companies[0].Archived)
	require.Equal(t, "Hull", all.Companies[0].Properties["city"])
	require.Equal(t, 1, s.Stats().ArchivedCompanies)

	restored := postJSON(t, ts.URL+"/_sandbox/companies/"+id+"/restore", ``, http.StatusOK)
	require.Equal(t, false, restored["archived"])
	require.Equal(t, formatTime(clock.Now()), restored["properties"].(map[string]any)["hs_lastmodifieddate"])
	clock.Add(time.Second)
	require.Equal(t, []string{id}, search())
	postJSON(t, ts.URL+"/_sandbox/companies/"+id+"/restore", ``, http.StatusNotFound)
	st := s.Stats()
	require.Equal(t, 1, st.Companies)
	require.Zero(t, st.RateLimited["crm"], "the sandbox's own endpoints are neither limited nor counted")
	require.Equal(t, 4, st.Requests["crm.companies.search"]+st.Requests["crm.companies.get"])

	postJSON(t, ts.URL+"/_sandbox/reset", `{}`, http.StatusOK)
	getJSON(t, ts.URL+"/_sandbox/companies", &all)
	require.Empty(t, all.Companies, "a reset clears companies")
}

func TestCompaniesBatch(t *testing.T) {
	t.Parallel()
	s, ts, clock := newClockedSandbox(t)
	var created struct {
		Status      string
		Results     []apiObject
		StartedAt   string
		CompletedAt string
	}
	must(t, ts, 201, "POST", "/crm/v3/objects/companies/batch/create",
		`{"inputs":[{"properties":{"name":"A","domain":"a.com"}},{"properties":{"name":"B","numberofemployees":7}},{"properties":{"name":"C"}}]}`).decode(t, &created)
	require.Equal(t, "COMPLETE", created.Status)
	require.Len(t, created.Results, 3)
	require.Equal(t, "7", created.Results[1].Properties["numberofemployees"], "numbers are taken as strings")
	require.Equal(t, "2026-11-26T12:00:00.000Z", created.StartedAt)
	a, b, c := created.Results[0].ID, created.Results[1].ID, created.Results[2].ID

	inputs := func(n int, each string) string {
		return `{"inputs":[` + strings.TrimSuffix(strings.Repeat(each+",", n), ",") + `]}`
	}
	for _, path := range []string{"create", "update", "read"} {
		out := refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/batch/"+path, inputs(101, `{"id":"`+a+`","properties":{"name":"x"}}`))
		require.Equal(t, "The maximum number of inputs supported in a batch is 100. Please reduce the number of items and try again", out["message"])
		refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/batch/"+path, `{"inputs":`)
		refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/batch/"+path, `{}`)
	}
	must(t, ts, 201, "POST", "/crm/v3/objects/companies/batch/create", inputs(100, `{"properties":{"name":"many"}}`))
	refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/batch/create", `{"inputs":[{"properties":{"name":"ok"}},{"properties":{"shoe_size":"9"}}]}`)
	live, _ := s.crm.companies.count()
	require.Equal(t, 103, live, "a refused batch creates nothing")

	var read struct {
		Status    string
		Results   []apiObject
		Errors    []map[string]any
		NumErrors int
	}
	must(t, ts, 200, "POST", "/crm/v3/objects/companies/batch/read", `{"inputs":[{"id":"`+b+`"},{"id":"`+a+`"}],"properties":["name"]}`).decode(t, &read)
	require.Equal(t, []string{b, a}, searchPage{Results: read.Results}.ids())
	require.Equal(t, "B", read.Results[0].Properties["name"])
	require.Equal(t, b, read.Results[0].Properties["hs_object_id"])
	require.Empty(t, read.Errors)

	must(t, ts, 207, "POST", "/crm/v3/objects/companies/batch/read", `{"inputs":[{"id":"`+a+`"},{"id":"404"},{"id":"405"}]}`).decode(t, &read)
	require.Equal(t, "COMPLETE", read.Status)
	require.Len(t, read.Results, 1)
	require.Equal(t, 1, read.NumErrors)
	require.Equal(t, "OBJECT_NOT_FOUND", read.Errors[0]["category"])
	require.Equal(t, "Could not get some COMPANY objects, they may be deleted or not exist. Check that ids are valid.", read.Errors[0]["message"])
	require.Equal(t, map[string]any{"ids": []any{"404", "405"}}, read.Errors[0]["context"])
	must(t, ts, 200, "POST", "/crm/v3/objects/companies/batch/read", `{"idProperty":"domain","inputs":[{"id":"A.COM"}]}`).decode(t, &read)
	require.Equal(t, a, read.Results[0].ID)
	refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/batch/read", `{"inputs":[{"id":"`+a+`"}],"propertiesWithHistory":["name"]}`)

	clock.Add(time.Minute)
	var updated struct {
		Status  string
		Results []apiObject
		Errors  []map[string]any
	}
	must(t, ts, 200, "POST", "/crm/v3/objects/companies/batch/update",
		`{"inputs":[{"id":"`+a+`","properties":{"city":"Leeds"}},{"id":"`+b+`","properties":{"name":"B"}}]}`).decode(t, &updated)
	require.Len(t, updated.Results, 2)
	require.Equal(t, "Leeds", updated.Results[0].Properties["city"])
	require.Equal(t, "2026-11-26T12:01:00.000Z", updated.Results[1].Properties["hs_lastmodifieddate"], "unchanged values still bump the date")
	must(t, ts, 207, "POST", "/crm/v3/objects/companies/batch/update",
		`{"inputs":[{"id":"`+c+`","properties":{"city":"York"}},{"id":"999","properties":{"city":"York"}}]}`).decode(t, &updated)
	require.Len(t, updated.Results, 1)
	require.Equal(t, map[string]any{"ids": []any{"999"}}, updated.Errors[0]["context"])
	refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/batch/update", `{"inputs":[{"id":"`+a+`","properties":{"city":"X"}},{"id":"`+a+`","properties":{"city":"Y"}}]}`)
	refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/batch/update", `{"inputs":[{"properties":{"city":"X"}}]}`)
	refused(t, ts, 400, "VALIDATION_ERROR", "POST", "/crm/v3/objects/companies/batch/update", `{"inputs":[{"id":"`+b+`","properties":{"city":"X"}},{"id":"`+c+`","properties":{"bogus":"Y"}}]}`)
	var got apiObject
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+b+"?properties=city", "").decode(t, &got)
	require.Empty(t, got.Properties["city"], "a refused batch update changes nothing")
}

func TestContactsGetListAndBatchRead(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	c := crm.New(ts.URL, "tok", rest.HTTPClient(5*time.Second, 0))
	ctx := context.Background()
	var ids []string
	for i := range 12 {
		ct, err := c.Create(ctx, crm.Properties{"email": fmt.Sprintf("p%d@example.com", i), "phone": "1", "firstname": "P"})
		require.NoError(t, err)
		ids = append(ids, ct.ID)
	}

	var got apiObject
	must(t, ts, 200, "GET", "/crm/v3/objects/contacts/"+ids[0]+"?properties=email&properties=phone", "").decode(t, &got)
	maintained := map[string]string{"hs_object_id": ids[0], "createdate": got.CreatedAt, "lastmodifieddate": got.UpdatedAt}
	require.Equal(t, with(maintained, map[string]string{"email": "p0@example.com", "phone": "1"}), got.Properties, "repeated properties are all honoured")
	must(t, ts, 200, "GET", "/crm/v3/objects/contacts/"+ids[0]+"?properties=email,phone&properties=firstname", "").decode(t, &got)
	require.Equal(t, with(maintained, map[string]string{"email": "p0@example.com", "phone": "1", "firstname": "P"}), got.Properties)
	must(t, ts, 200, "GET", "/crm/v3/objects/contacts/P0@example.com?idProperty=email&properties=phone", "").decode(t, &got)
	require.Equal(t, ids[0], got.ID)

	var p searchPage
	must(t, ts, 200, "GET", "/crm/v3/objects/contacts?properties=email", "").decode(t, &p)
	require.Equal(t, ids[:10], p.ids())
	require.Equal(t, ids[10], p.Paging.Next.After)
	must(t, ts, 200, "GET", "/crm/v3/objects/contacts?properties=email&after="+p.Paging.Next.After, "").decode(t, &p)
	require.Equal(t, ids[10:], p.ids())
	require.Nil(t, p.Paging)

	var read struct {
		Results []apiObject
		Errors  []map[string]any
	}
	must(t, ts, 207, "POST", "/crm/v3/objects/contacts/batch/read", `{"inputs":[{"id":"`+ids[1]+`"},{"id":"1"}],"properties":["email"]}`).decode(t, &read)
	require.Equal(t, map[string]string{"email": "p1@example.com", "hs_object_id": ids[1],
		"createdate": read.Results[0].CreatedAt, "lastmodifieddate": read.Results[0].UpdatedAt}, read.Results[0].Properties)
	require.Equal(t, "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.", read.Errors[0]["message"])
	must(t, ts, 200, "POST", "/crm/v3/objects/contacts/batch/read", `{"idProperty":"email","inputs":[{"id":"p2@example.com"}]}`).decode(t, &read)
	require.Equal(t, ids[2], read.Results[0].ID)

	found, err := c.Search(ctx, []crm.FilterGroup{{Filters: []crm.Filter{{PropertyName: "email", Operator: "CONTAINS_TOKEN", Value: "*@example.com"}}}}, []string{"email"})
	require.NoError(t, err)
	require.Len(t, found, 12)
}

func TestCRMRequestLimit(t *testing.T) {
	t.Parallel()
	s, ts, clock := newClockedSandbox(t)
	getJSON(t, ts.URL+"/_sandbox/limit", &Limits{})
	require.Equal(t, map[string]any{"crmPerSecond": float64(3)}, postJSON(t, ts.URL+"/_sandbox/limit", `{"crmPerSecond": 3}`, http.StatusOK))
	var l Limits
	getJSON(t, ts.URL+"/_sandbox/limit", &l)
	require.Equal(t, 3, l.CRMPerSecond)
	for body, want := range map[string]string{`{"crmPerSecond": -1}`: "must be 0", `{"perSecond": 3}`: "unknown field", `{"crmPerSecond": 2.5}`: "crmPerSecond"} {
		require.Contains(t, postJSON(t, ts.URL+"/_sandbox/limit", body, http.StatusBadRequest)["error"], want)
	}

	// Three requests fit in one second, across contacts and companies; two more do not.
	id := createCompany(t, ts, `{"name":"A"}`).ID
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+id, "")
	clock.Add(500 * time.Millisecond)
	must(t, ts, 200, "POST", "/crm/v3/objects/contacts/search", `{}`)
	for range 2 {
		r := must(t, ts, 429, "GET", "/crm/v3/objects/companies/"+id, "")
		require.Equal(t, "1", r.header.Get("Retry-After"))
		out := r.json(t)
		require.Equal(t, "You have reached your secondly limit.", out["message"])
		require.Equal(t, "RATE_LIMIT", out["errorType"])
		require.Equal(t, "SECONDLY", out["policyName"])
		require.Equal(t, "error", out["status"])
		require.Len(t, out["correlationId"], 36)
	}
	// Neither chat nor the sandbox's own endpoints count.
	postJSON(t, ts.URL+"/services/ops", `{"text":"hi"}`, http.StatusOK)
	getJSON(t, ts.URL+"/_sandbox/companies", &struct{}{})

	// The window slides: the first two requests leave it after one second.
	clock.Add(500 * time.Millisecond)
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+id, "")
	must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+id, "")
	must(t, ts, 429, "GET", "/crm/v3/objects/companies/"+id, "")
	clock.Add(1500 * time.Millisecond)
	for range 3 {
		must(t, ts, 200, "GET", "/crm/v3/objects/companies/"+id, "")
	}

	st := s.Stats()
	require.Equal(t, map[string]int{"crm": 3}, st.RateLimited)
	// The refused GET was repeated once at once and three times half a second
	// later, all before its Retry-After of one second passed.
	require.Equal(t, 4, st.EarlyRetries, "repeats of a refused request within its Retry-After are early, whatever their answer")
	require.Equal(t, 4, st.RequestsDuringBackoff["crm"])
	var log struct{ Requests []Entry }
	getJSON(t, ts.URL+"/_sandbox/requests?endpoint=crm.*", &log)
	limited := 0
	for _, e := range log.Requests {
		if e.RateLimited {
			limited++
			require.Equal(t, http.StatusTooManyRequests, e.Status)
			require.Empty(t, e.Fault, "a refusal by the limit is not an injected fault")
		}
	}
	require.Equal(t, 3, limited)

	postJSON(t, ts.URL+"/_sandbox/reset", `{}`, http.StatusOK)
	getJSON(t, ts.URL+"/_sandbox/limit", &l)
	require.Equal(t, 3, l.CRMPerSecond, "a reset keeps the limit")
	postJSON(t, ts.URL+"/_sandbox/limit", `{"crmPerSecond": 0}`, http.StatusOK)
	for range 10 {
		must(t, ts, 200, "POST", "/crm/v3/objects/companies/search", `{}`)
	}
}

func TestCRMRequestLimitWithConcurrentClients(t *testing.T) {
	t.Parallel()
	s, ts, _ := newClockedSandbox(t)
	require.NoError(t, s.SetCRMLimit(5))
	require.Error(t, s.SetCRMLimit(-1))
	statuses := make(chan int, 12)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", ts.URL+"/crm/v3/objects/companies/search", strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	require.Equal(t, map[int]int{200: 5, 429: 7}, count, "N+k requests in one window get exactly k 429s")
}

func TestInjectedCRM429HasHubSpotsBody(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, Plan{"crm.companies.*": {Rate429: 1}})
	r := must(t, ts, 429, "POST", "/crm/v3/objects/companies/search", `{}`)
	require.Equal(t, "RATE_LIMIT", r.json(t)["errorType"])
	require.Equal(t, "1", r.header.Get("Retry-After"))
}

func FuzzSearch(f *testing.F) {
	for _, seed := range []string{`{}`, `{"limit":"5","after":3}`, `{"after":"9223372036854775807"}`, `{"sorts":["-name"],"query":"a"}`,
		`{"filterGroups":[{"filters":[{"propertyName":"hs_lastmodifieddate","operator":"BETWEEN","value":"0","highValue":"2026-01-01"}]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"numberofemployees","operator":"IN","values":[1,"2"]}]}]}`,
		`{"filterGroups":[{"filters":[{"propertyName":"name","operator":"CONTAINS_TOKEN","value":"**a*"}]}]}`, `[`, `{"sorts":[1]}`} {
		f.Add([]byte(seed))
	}
	st := newObjectStore(companies, 1)
	st.insert(map[string]string{"name": "Acme", "numberofemployees": "2"}, t0)
	st.insert(map[string]string{"name": "Bolt"}, t0)
	f.Fuzz(func(t *testing.T, body []byte) {
		q, bad := parseSearch(companies, body)
		if bad != nil {
			require.Equal(t, http.StatusBadRequest, bad.status)
			return
		}
		res := st.search(q)
		require.Equal(t, http.StatusOK, res.status)
	})
}

func TestTokensAndGlobs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		value, token string
		want         bool
	}{
		{"ada@hubspot.com", "*@hubspot.com", true},
		{"ada@hubspot.com", "hubspot.com", true},
		{"ada@hubspot.com", "ada", true},
		{"Acme Widgets Ltd", "widgets", true},
		{"Acme Widgets Ltd", "widg*", true},
		{"Acme Widgets Ltd", "*dget*", true},
		{"Acme Widgets Ltd", "widget", false},
		{"Acme Widgets Ltd", "acme widgets ltd", true},
		{"ab", "a*b*b", false},
	} {
		require.Equal(t, c.want, containsToken(c.value, c.token), "%q ~ %q", c.value, c.token)
	}
	for in, want := range map[string]string{`"x"`: "x", `12`: "12", `1.5e3`: "1.5e3", `true`: "true"} {
		var f flexString
		require.NoError(t, json.Unmarshal([]byte(in), &f))
		require.Equal(t, flexString{s: want, set: true}, f)
	}
	var f flexString
	require.Error(t, json.Unmarshal([]byte(`{}`), &f))
	when, ok := parseWhen("2026-11-26")
	require.True(t, ok)
	require.Equal(t, t0.Add(-12*time.Hour), when)
}
