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
	"sync"
	"time"

	"github.com/signalbox-dev/signalbox/api"
)

const (
	// inboxPageSize is how many items a page of the inbox shows.
	inboxPageSize = 50
	// inboxScanLimit bounds the waiting items the inbox reads to sort them:
	// visibility lists newest first, and the inbox shows the oldest first.
	inboxScanLimit = 10_000
	// summaryWait bounds the status queries that fetch a page's summaries.
	summaryWait = 3 * time.Second
	// consoleParallel bounds the queries and decisions one request has in flight.
	consoleParallel = 8
)

// bulkActions are the decisions the inbox applies to many items at once:
// those that need nothing but a reason.
var bulkActions = []api.Action{api.ActionApprove, api.ActionReject, api.ActionRetry, api.ActionCancel}

// inboxFilters are the inbox's query parameters.
type inboxFilters struct {
	Integration, Exception, Team string
	Page                         int
}

func (f inboxFilters) values(page int) url.Values {
	v := url.Values{}
	for k, val := range map[string]string{"integration": f.Integration, "exception": f.Exception, "team": f.Team} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
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
	Integrations, Exceptions, TeamNames []string
	Actions                             []api.Action
	Rows                                []inboxRow
	// Total counts the items that match; More says there are more than
	// inboxScanLimit, of which the oldest are shown.
	Total       int
	More        bool
	First, Last int
	PrevURL     string
	NextURL     string
	NoTeams     bool
	ScanLimit   int
}

func (c *console) inbox(w http.ResponseWriter, r *http.Request, op *operator) {
	q := r.URL.Query()
	f := inboxFilters{Integration: q.Get("integration"), Exception: q.Get("exception"), Team: q.Get("team"), Page: 1}
	body := inboxBody{Filters: f, Exceptions: kindNames(), TeamNames: op.teams, Actions: bulkActions,
		NoTeams: len(op.teams) == 0, ScanLimit: inboxScanLimit}
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
	query, err := inboxQuery(f, op.teams, c.Now())
	if err != nil {
		v.Error = err.Error()
		c.render(w, op, http.StatusBadRequest, "inbox", v)
		return
	}
	items, more, err := c.Backend.ListItems(r.Context(), query, inboxScanLimit)
	if err != nil {
		v.Error = "Temporal's visibility did not answer: " + err.Error()
		c.render(w, op, http.StatusBadGateway, "inbox", v)
		return
	}
	slices.SortStableFunc(items, func(a, b api.VisibleItem) int {
		return cmp.Or(waitingSince(a).Compare(waitingSince(b)), strings.Compare(a.WorkflowID, b.WorkflowID))
	})
	body.Total, body.More = len(items), more
	from := min((f.Page-1)*inboxPageSize, len(items))
	to := min(from+inboxPageSize, len(items))
	body.First, body.Last = from+1, to
	body.Rows = c.inboxRows(r.Context(), items[from:to])
	if f.Page > 1 {
		body.PrevURL = "/?" + f.values(f.Page-1).Encode()
	}
	if to < len(items) {
		body.NextURL = "/?" + f.values(f.Page+1).Encode()
	}
	c.render(w, op, http.StatusOK, "inbox", v)
}

// waitingSince is when an item began to wait (its start, if visibility
// does not say).
func waitingSince(it api.VisibleItem) time.Time {
	if it.AttentionSince.IsZero() {
		return it.StartTime
	}
	return it.AttentionSince
}

// inboxRows describes a page's items, with each one's summary and SLA from
// its status query: at most summaryWait for the page, else without them.
func (c *console) inboxRows(ctx context.Context, items []api.VisibleItem) []inboxRow {
	ctx, cancel := context.WithTimeout(ctx, summaryWait)
	defer cancel()
	now := c.Now()
	rows := make([]inboxRow, len(items))
	var wg sync.WaitGroup
	sem := make(chan struct{}, consoleParallel)
	for i, it := range items {
		rows[i] = inboxRow{ID: it.WorkflowID, URL: itemPath(it.WorkflowID), Integration: it.Integration, Kind: string(it.Exception),
			Status: statusLabel(it), Decidable: !stranded(it), Waited: humanDuration(now.Sub(waitingSince(it)))}
		state := api.ItemState{Integration: it.Integration, Team: it.Team, Owner: it.Owner, Status: it.Status}
		if it.Exception != "" {
			state.Exception = &api.ExceptionState{Kind: it.Exception}
		}
		rows[i].Deciders = itemDeciders(state)
		sla := specSLA(it.Integration, it.Exception)
		if !rows[i].Decidable {
			rows[i].Summary = "its run ended before the item did: start it again from its source (see the item)"
			rows[i].SLA, rows[i].Overdue = slaText(sla), sla > 0 && now.Sub(waitingSince(it)) > sla
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if st, live, err := c.Backend.ReadItem(ctx, it.WorkflowID); err == nil && live && st.Exception != nil && st.Exception.Kind == it.Exception {
				rows[i].Summary, rows[i].Deciders = st.Exception.Summary, itemDeciders(st)
				sla = cmp.Or(st.Exception.SLA, sla)
			}
			rows[i].SLA, rows[i].Overdue = slaText(sla), sla > 0 && now.Sub(waitingSince(it)) > sla
		})
	}
	wg.Wait()
	return rows
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
			if es, ok := spec.Exception(e.Kind); ok && es.Deciders != "" {
				return es.Deciders
			}
		}
	}
	return cmp.Or(s.Team, s.Owner)
}

// inboxQuery is the visibility query of the items waiting for the
// operator's teams (or the one team the filter picks).
func inboxQuery(f inboxFilters, teams []string, now time.Time) (string, error) {
	if f.Team != "" {
		if !slices.Contains(teams, f.Team) {
			return "", fmt.Errorf("you are not an operator of team %q (yours: %s)", f.Team, strings.Join(teams, ", "))
		}
		teams = []string{f.Team}
	}
	decided, err := decidedByClause(teams)
	if err != nil {
		return "", err
	}
	status := api.AttrIntegrationStatus.GetName()
	waiting := fmt.Sprintf("(%s = '%s' OR %s = '%s') AND (%s)", status, api.StatusBlocked, status, api.StatusFailed, decided)
	filter := filters{integration: f.Integration, exception: f.Exception, query: waiting}
	return filter.visibilityQuery(now)
}

// decidedByClause matches the items whose exception one of teams decides,
// as itemDeciders picks the team: the kinds a spec gives a deciding team of
// its own, and the others by the item's assigned team, else its owner.
func decidedByClause(teams []string) (string, error) {
	quoted := make([]string, len(teams))
	for i, team := range teams {
		if !plainValue.MatchString(team) {
			return "", fmt.Errorf("team %q: a team name is letters, digits, '.', '_' and '-' (check SIGNALBOX_OPERATORS)", team)
		}
		quoted[i] = "'" + team + "'"
	}
	name, kind := api.AttrIntegrationName.GetName(), api.AttrExceptionKind.GetName()
	var own, notFixed []string
	for _, s := range api.Specs() {
		for _, e := range s.Exceptions {
			if e.Deciders == "" {
				continue
			}
			if slices.Contains(teams, e.Deciders) {
				own = append(own, fmt.Sprintf("(%s = '%s' AND %s = '%s')", name, s.Name, kind, e.Kind))
			}
			notFixed = append(notFixed, fmt.Sprintf("(%s != '%s' OR %s != '%s')", name, s.Name, kind, e.Kind))
		}
	}
	in := strings.Join(quoted, ", ")
	team, owner := api.AttrAssignedTeam.GetName(), api.AttrIntegrationOwner.GetName()
	byTeam := fmt.Sprintf("(%s IN (%s) OR (%s IS NULL AND %s IN (%s)))", team, in, team, owner, in)
	byTeam = "(" + strings.Join(append([]string{byTeam}, notFixed...), " AND ") + ")"
	return strings.Join(append(own, byTeam), " OR "), nil
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
