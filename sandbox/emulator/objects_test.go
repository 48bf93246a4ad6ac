package emulator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// TestReadsAnswerEveryPropertyAsHubSpotDoes holds every read of both object
// types to what HubSpot answers: each requested property, null when the
// object has none (never set, unlike one set to ""), no name that is not a
// property, and hs_object_id, createdate and the last-modified date besides,
// equal to id, createdAt and updatedAt.
func TestReadsAnswerEveryPropertyAsHubSpotDoes(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	for _, c := range []struct {
		typ, modified string
		// set has a value, empty is set to "", unset never set.
		set, value, empty, unset string
		// defaults are the properties a read naming none answers, values
		// and nulls, besides the maintained ones.
		defaults map[string]any
	}{
		{typ: "contacts", modified: "lastmodifieddate", set: "email", value: "ada@example.com", empty: "company", unset: "jobtitle",
			defaults: map[string]any{"email": "ada@example.com", "firstname": nil, "lastname": nil}},
		{typ: "companies", modified: "hs_lastmodifieddate", set: "name", value: "Acme", empty: "city", unset: "industry",
			defaults: map[string]any{"name": "Acme", "domain": nil}},
	} {
		path := "/crm/v3/objects/" + c.typ
		created := must(t, ts, 201, "POST", path, `{"properties":{"`+c.set+`":"`+c.value+`","`+c.empty+`":""}}`).json(t)
		id := created["id"].(string)
		// want is the properties of o, an object as answered, given the ones
		// beyond the maintained.
		want := func(o map[string]any, props map[string]any) map[string]any {
			out := map[string]any{"hs_object_id": id, "createdate": o["createdAt"], c.modified: o["updatedAt"]}
			for k, v := range props {
				out[k] = v
			}
			return out
		}
		require.Equal(t, want(created, map[string]any{c.set: c.value, c.empty: ""}), created["properties"], "%s: create", c.typ)

		named := []string{c.set, c.empty, c.unset, "shoe_size"}
		answered := map[string]any{c.set: c.value, c.empty: "", c.unset: nil}
		list := `"` + strings.Join(named, `","`) + `"`
		reads := map[string]map[string]any{
			"get":        must(t, ts, 200, "GET", path+"/"+id+"?properties="+strings.Join(named, ","), "").json(t),
			"list":       first(t, must(t, ts, 200, "GET", path+"?properties="+strings.Join(named, "&properties="), "").json(t)),
			"search":     first(t, must(t, ts, 200, "POST", path+"/search", `{"properties":[`+list+`]}`).json(t)),
			"batch read": first(t, must(t, ts, 200, "POST", path+"/batch/read", `{"inputs":[{"id":"`+id+`"}],"properties":[`+list+`]}`).json(t)),
		}
		for op, o := range reads {
			require.Equal(t, want(o, answered), o["properties"], "%s: %s answers %s null and leaves shoe_size out", c.typ, op, c.unset)
		}
		for op, o := range map[string]map[string]any{
			"get":        must(t, ts, 200, "GET", path+"/"+id, "").json(t),
			"list":       first(t, must(t, ts, 200, "GET", path, "").json(t)),
			"search":     first(t, must(t, ts, 200, "POST", path+"/search", `{}`).json(t)),
			"batch read": first(t, must(t, ts, 200, "POST", path+"/batch/read", `{"inputs":[{"id":"`+id+`"}]}`).json(t)),
		} {
			require.Equal(t, want(o, c.defaults), o["properties"], "%s: %s of the defaults", c.typ, op)
		}

		updated := must(t, ts, 200, "PATCH", path+"/"+id, `{"properties":{"`+c.unset+`":"x"}}`).json(t)
		require.Equal(t, want(updated, map[string]any{c.unset: "x"}), updated["properties"], "%s: update", c.typ)
	}
}

// first returns the only result of a page or batch.
func first(t *testing.T, page map[string]any) map[string]any {
	t.Helper()
	results, _ := page["results"].([]any)
	require.Len(t, results, 1, page)
	return results[0].(map[string]any)
}

// TestGoClientsReadNullAsEmpty shows signalbox's Go clients, which decode
// properties into strings, reading a null property as "".
func TestGoClientsReadNullAsEmpty(t *testing.T) {
	t.Parallel()
	_, ts := newSandbox(t, nil)
	ctx := context.Background()
	c := crm.New(ts.URL, "tok", rest.HTTPClient(5*time.Second, 0))
	co, err := c.CreateCompany(ctx, crm.Properties{"name": "Acme"})
	require.NoError(t, err)
	want := crm.Properties{"name": "Acme", "industry": "", "hs_object_id": co.ID,
		"createdate": formatTime(co.CreatedAt), "hs_lastmodifieddate": formatTime(co.UpdatedAt)}

	got, err := c.GetCompany(ctx, co.ID, []string{"name", "industry"}, false)
	require.NoError(t, err)
	require.Equal(t, want, got.Properties)
	batch, err := c.BatchReadCompanies(ctx, []string{co.ID}, []string{"name", "industry"}, "")
	require.NoError(t, err)
	require.Len(t, batch, 1)
	require.Equal(t, want, batch[0].Properties)
	page, err := c.SearchCompanies(ctx, crm.Query{Properties: []string{"name", "industry"}, Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Results, 1)
	require.Equal(t, want, page.Results[0].Properties)

	contact, err := c.Create(ctx, crm.Properties{"email": "ada@example.com"})
	require.NoError(t, err)
	found, err := c.Search(ctx, []crm.FilterGroup{crm.Equals(crm.Properties{"email": "ada@example.com"})}, []string{"email", "phone"})
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, crm.Properties{"email": "ada@example.com", "phone": "", "hs_object_id": contact.ID,
		"createdate": formatTime(contact.CreatedAt), "lastmodifieddate": formatTime(contact.UpdatedAt)}, found[0].Properties)
}
