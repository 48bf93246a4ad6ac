package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

const (
	// inboxPageSize is how many items a page of the inbox shows.
	inboxPageSize = 50
	// runsWait bounds asking visibility which of a page's runs ended.
	runsWait = 3 * time.Second
	// consoleParallel bounds the queries and decisions one request has in flight.
	consoleParallel = 8
)

// bulkActions are the decisions the inbox applies to many items at once:
// those that need nothing but a reason.
var bulkActions = []api.Action{api.ActionApprove, api.ActionReject, api.ActionRetry, api.ActionCancel}

// inboxAges are the inbox's "waiting longer than" choices.
var inboxAges = []struct {
	Value, Label string
}{{"1h", "an hour"}, {"4h", "4 hours"}, {"24h", "a day"}, {"72h", "3 days"}, {"168h", "a week"}}

// inboxFilters are the inbox's query parameters.
type inboxFilters struct {
	Integration, Exception, Team, Older string
	Page                                int
}

func (f inboxFilters) values(page int) url.Values {
	v := url.Values{}
	for k, val := range map[string]string{"integration": f.Integration, "exception": f.Exception, "team": f.Team, "older": f.Older} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

// any says whether a filter is set.
func (f inboxFilters) any() bool {
	return f.Integration != "" || f.Exception != "" || f.Team != "" || f.Older != ""
}

// inboxRow is one waiting item.
type inboxRow struct {
	ID, URL, Integration, Kind, Status, Summary, Deciders string
	Waited, SLA                                           string
	Overdue                                               bool
	// Decidable is false for an item whose run ended (stranded): no
	// decision can reach it.
	Decidable bool
}

// inboxBody is the inbox page's.
type inboxBody struct {
	Filters                             inboxFilters
	Filtered                            bool
	Integrations, Exceptions, TeamNames []string
	Ages                                []struct{ Value, Label string }
	Actions                             []api.Action
	Rows                                []inboxRow
	// Total counts the items that match.
	Total       int
	First, Last int
	PrevURL     string
	NextURL     string
	FirstURL    string
	NoTeams     bool
	// RunsUnknown says visibility did not say which runs ended.
	RunsUnknown bool
}

func (c *console) inbox(w http.ResponseWriter, r *http.Request, op *operator) {
	q := r.URL.Query()
	f := inboxFilters{Integration: q.Get("integration"), Exception: q.Get("exception"), Team: q.Get("team"), Older: q.Get("older"), Page: 1}
	body := inboxBody{Filters: f, Filtered: f.any(), Exceptions: kindNames(), TeamNames: op.teams, Ages: inboxAges,
		Actions: bulkActions, NoTeams: len(op.teams) == 0}
	for _, s := range api.Specs() {
		body.Integrations = append(body.Integrations, s.Name)
	}
	v := view{Title: "Inbox", Nav: "inbox", Body: &body}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			v.Error = fmt.Sprintf("page %q must be a whole number from 1", p)
			c.render(w, op, http.StatusBadRequest, "inbox", v)
			return
		}
		f.Page, body.Filters.Page = n, n
	}
	if body.NoTeams {
		c.render(w, op, http.StatusOK, "inbox", v)
		return
	}
	wf, err := waitingFilter(f, op.teams, c.Now())
	if err != nil {
		v.Error = err.Error()
		c.render(w, op, http.StatusBadRequest, "inbox", v)
		return
	}
	items, total, err := c.Backend.WaitingItems(r.Context(), wf)
	if err != nil {
		v.Error = "PostgreSQL did not answer: " + err.Error()
		c.render(w, op, http.StatusBadGateway, "inbox", v)
		return
	}
	body.Total = total
	body.First, body.Last = wf.Offset+1, wf.Offset+len(items)
	body.Rows, body.RunsUnknown = c.inboxRows(r.Context(), items)
	if f.Page > 1 {
		body.PrevURL = "/?" + f.values(f.Page-1).Encode()
		body.FirstURL = "/?" + f.values(1).Encode()
	}
	if body.Last < total {
		body.NextURL = "/?" + f.values(f.Page+1).Encode()
	}
	c.render(w, op, http.StatusOK, "inbox", v)
}

// waitingFilter checks the inbox's filters and turns them into the page's
// query: the operator's teams (or the one team the filter picks).
func waitingFilter(f inboxFilters, teams []string, now time.Time) (store.WaitingFilter, error) {
	wf := store.WaitingFilter{Teams: teams, Integration: f.Integration, Kind: f.Exception,
		Offset: (f.Page - 1) * inboxPageSize, Limit: inboxPageSize}
	if f.Team != "" {
		if !slices.Contains(teams, f.Team) {
			return wf, fmt.Errorf("you are not an operator of team %q (yours: %s)", f.Team, strings.Join(teams, ", "))
		}
		wf.Teams = []string{f.Team}
	}
	if f.Integration != "" {
		if _, err := api.SpecByName(f.Integration); err != nil {
			return wf, err
		}
	}
	if f.Exception != "" && !slices.Contains(kindNames(), f.Exception) {
		return wf, fmt.Errorf("no exception kind %q (the kinds are %s)", f.Exception, strings.Join(kindNames(), ", "))
	}
	if f.Older != "" {
		d, err := time.ParseDuration(f.Older)
		if err != nil || d <= 0 {
			return wf, fmt.Errorf("waiting longer than %q: give a duration such as 4h or 90m", f.Older)
		}
		wf.Before = now.Add(-d)
	}
	return wf, nil
}

// inboxRows describes a page's items. Visibility says, in one query, which
// of their runs ended (stranded: no decision reaches them); if it does not
// answer within runsWait, the rows are shown as decidable and runsUnknown
// is set.
func (c *console) inboxRows(ctx context.Context, items []store.WaitingItem) (rows []inboxRow, runsUnknown bool) {
	ended := map[string]api.VisibleItem{}
	if len(items) > 0 {
		ctx, cancel := context.WithTimeout(ctx, runsWait)
		defer cancel()
		runs := make([]string, len(items))
		for i, it := range items {
			runs[i] = "'" + strings.ReplaceAll(it.RunID, "'", "") + "'"
		}
		visible, _, err := c.Backend.ListItems(ctx, "RunId IN ("+strings.Join(runs, ", ")+")", len(items))
		runsUnknown = err != nil
		for _, v := range visible {
			if stranded(v) {
				ended[v.RunID] = v
			}
		}
	}
	now := c.Now()
	rows = make([]inboxRow, len(items))
	for i, it := range items {
		sla := it.SLA
		if sla == 0 {
			sla = specSLA(it.Integration, api.ExceptionKind(it.Kind))
		}
		rows[i] = inboxRow{ID: it.WorkflowID, URL: itemPath(it.WorkflowID), Integration: it.Integration, Kind: it.Kind,
			Status: it.Status, Summary: it.Summary, Deciders: it.Deciders, Decidable: true,
			Waited: humanDuration(now.Sub(it.Since)), SLA: slaText(sla), Overdue: sla > 0 && now.Sub(it.Since) > sla}
		if v, ok := ended[it.RunID]; ok {
			rows[i].Status, rows[i].Decidable = statusLabel(v), false
			rows[i].Summary = "its run ended before the item did: start it again from its source (see the item)"
		}
	}
	return rows, runsUnknown
}

// specSLA is the SLA the integration's card gives an exception kind (the
// workers' SIGNALBOX_SLAS may differ; the status query says).
func specSLA(integration string, kind api.ExceptionKind) time.Duration {
	spec, err := api.SpecByName(integration)
	if err != nil {
		return 0
	}
	e, _ := spec.Exception(kind)
	return e.SLA
}

func slaText(sla time.Duration) string {
	if sla <= 0 {
		return "—"
	}
	return days(sla)
}

// itemDeciders is the team that decides the item's exception — the one its
// status query names, else the spec's, else the item's team or owner, as
// the workflow picks it — or, for an item that waits on nothing, its team.
func itemDeciders(s api.ItemState) string {
	if e := s.Exception; e != nil {
		if e.Deciders != "" {
			return e.Deciders
		}
		if spec, err := api.SpecByName(s.Integration); err == nil {
			return spec.DecidingTeam(e.Kind, s.Team)
		}
	}
	return cmp.Or(s.Team, s.Owner)
}

func kindNames() []string {
	var names []string
	for _, k := range exceptionKinds() {
		names = append(names, string(k))
	}
	return names
}

// itemPath is the console's page of an item.
func itemPath(id string) string { return "/items/" + url.PathEscape(id) }
