package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

const (
	// searchLimit bounds the items one search lists (newest first).
	searchLimit = 50
	// actorLimit bounds the audit events one actor search reads (newest first).
	actorLimit = 100
	// maxActorLength bounds an actor name typed into the search.
	maxActorLength = 200
)

// searchBackend is what the search page reads through: visibility, as
// signals list lists, and the audit trail by actor. Tests fake it.
type searchBackend interface {
	// ListItems lists the latest runs matching a visibility query, newest
	// first, as signals list does; more reports that more than limit match.
	ListItems(ctx context.Context, query string, limit int) (items []api.VisibleItem, more bool, err error)
	// AuditByActor is store.AuditByActor: actor's events, newest first.
	AuditByActor(ctx context.Context, actor string, limit int) ([]store.AuditEvent, error)
}

// The console's real backend searches too (newConsole takes it as Search).
var _ searchBackend = (*temporalBackend)(nil)

// AuditByActor reads actor's audit events from PostgreSQL, opening the
// database as AuditTrail does. (ListItems is in serve_backend.go.)
func (b *temporalBackend) AuditByActor(ctx context.Context, actor string, limit int) ([]store.AuditEvent, error) {
	s, err := b.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.AuditByActor(ctx, actor, limit)
}

// searchField is a search attribute the item search can filter on. Name is
// the signals list flag that filters on it, whose checks the value passes.
type searchField struct{ Name, Label string }

var searchFields = []searchField{
	{"integration", "Integration (IntegrationName)"},
	{"status", "Status (IntegrationStatus)"},
	{"exception", "Exception kind (ExceptionKind)"},
	{"owner", "Owning team (IntegrationOwner)"},
	{"team", "Assigned team (AssignedTeam)"},
	{"older-than", "Waiting longer than, e.g. 2h (AttentionSince)"},
}

// searchForm is what the search page's forms sent.
type searchForm struct{ Key, Field, Value, Actor string }

// searchRow is one item found.
type searchRow struct {
	ID, URL, Integration, Status, Exception, Deciders, Started string
}

// actorRow is one audit event of the actor searched for.
type actorRow struct {
	trailRow
	ID, URL string
}

// searchBody is the search page's.
type searchBody struct {
	Form    searchForm
	Fields  []searchField
	NoTeams bool

	// Searched says the item form was sent; Query is the visibility query
	// it made. Hidden counts the items found that other teams decide.
	Searched   bool
	Query      string
	ItemsError string
	Rows       []searchRow
	Hidden     int
	More       bool
	Limit      int

	// ActorSearched says the actor form was sent. EventsHidden counts the
	// events about items other teams decide, EventsUnknown those about
	// items Temporal no longer holds (whose team cannot be told).
	ActorSearched bool
	ActorError    string
	Events        []actorRow
	EventsHidden  int
	EventsUnknown int
	EventsMore    bool
	ActorLimit    int
}

// search finds items by source key or search attribute, and audit events by
// actor. Only what the operator's teams decide is shown, as the item page
// decides it (itemDeciders, operator.decides); how much else was found is
// counted, never shown.
func (c *console) search(w http.ResponseWriter, r *http.Request, op *operator) {
	q := r.URL.Query()
	body := searchBody{Fields: searchFields, NoTeams: len(op.teams) == 0, Limit: searchLimit, ActorLimit: actorLimit,
		Form: searchForm{Key: strings.TrimSpace(q.Get("key")), Field: q.Get("field"), Value: strings.TrimSpace(q.Get("value")),
			Actor: strings.TrimSpace(q.Get("actor"))}}
	v := view{Title: "Search", Nav: "search", Body: &body}
	status := http.StatusOK
	switch {
	case body.NoTeams:
		// Nothing could be shown: nothing is asked.
	case c.Search == nil:
		v.Error = "Search is not available in this console: its backend cannot search."
		status = http.StatusNotImplemented
	default:
		if q.Has("key") || q.Has("value") {
			status = max(status, c.searchItems(r.Context(), op, &body))
		}
		if q.Has("actor") {
			status = max(status, c.searchActor(r.Context(), op, &body))
		}
	}
	c.render(w, op, status, "search", v)
}

// searchItems runs the item form's search through signals list's filters.
func (c *console) searchItems(ctx context.Context, op *operator, body *searchBody) int {
	body.Searched = true
	f, err := searchFilters(body.Form)
	var query string
	if err == nil {
		query, err = f.visibilityQuery(c.Now())
	}
	if err != nil {
		body.ItemsError = "Nothing was searched: " + err.Error()
		return http.StatusBadRequest
	}
	body.Query = query
	items, more, err := c.Search.ListItems(ctx, query, searchLimit)
	if err != nil {
		body.ItemsError = "Temporal's visibility did not answer: " + err.Error()
		return http.StatusBadGateway
	}
	body.More = more
	for _, it := range items {
		team := visibleDeciders(it)
		if !op.decides(team) {
			body.Hidden++
			continue
		}
		body.Rows = append(body.Rows, searchRow{ID: it.WorkflowID, URL: itemPath(it.WorkflowID), Integration: it.Integration,
			Status: statusLabel(it), Exception: string(it.Exception), Deciders: team, Started: stamp(it.StartTime)})
	}
	return http.StatusOK
}

// searchFilters turns the item form into signals list's filters: the field
// picked is the flag of that name, the source key box the source key (an
// item ID, integration:key, is taken apart). Their values are checked where
// signals list checks them, in visibilityQuery.
func searchFilters(form searchForm) (filters, error) {
	var f filters
	if form.Key == "" && form.Value == "" {
		return f, errors.New("type a source key, or pick a field and type its value")
	}
	if form.Value != "" {
		switch form.Field {
		case "integration":
			f.integration = form.Value
		case "status":
			f.status = form.Value
		case "exception":
			f.exception = form.Value
		case "owner":
			f.owner = form.Value
		case "team":
			f.team = form.Value
		case "older-than":
			d, err := time.ParseDuration(form.Value)
			if err != nil {
				return f, fmt.Errorf("--older-than %q: a duration is a number and a unit, such as 90m, 2h or 48h", form.Value)
			}
			f.olderThan = d
		default:
			names := make([]string, len(searchFields))
			for i, sf := range searchFields {
				names[i] = sf.Name
			}
			return f, fmt.Errorf("unknown field %q (one of %s)", form.Field, strings.Join(names, ", "))
		}
	}
	if form.Key != "" {
		f.sourceKey = form.Key
		if integration, key, ok := api.SplitItemID(form.Key); ok {
			if _, err := api.SpecByName(integration); err == nil {
				if f.integration != "" && f.integration != integration {
					return f, fmt.Errorf("the item ID %q is of integration %s, not of %s", form.Key, integration, f.integration)
				}
				f.integration, f.sourceKey = integration, key
			}
		}
	}
	return f, nil
}

// visibleDeciders is the team that decides an item, by the item page's rule
// (itemDeciders), from what visibility knows of it: the state api.ReadItem
// falls back to when the item cannot be asked.
func visibleDeciders(it api.VisibleItem) string {
	s := api.ItemState{Integration: it.Integration, WorkflowID: it.WorkflowID, SourceKey: it.SourceKey, Owner: it.Owner,
		Team: it.Team, Status: it.Status, StartedAt: it.StartTime}
	if it.Exception != "" {
		s.Exception = &api.ExceptionState{Kind: it.Exception, Since: it.AttentionSince}
	}
	return itemDeciders(s)
}

// searchActor lists the actor's audit events whose items the operator may
// open: an event is shown when its item's deciding team, read from
// visibility now, is one of the operator's.
func (c *console) searchActor(ctx context.Context, op *operator, body *searchBody) int {
	body.ActorSearched = true
	if err := checkActor(body.Form.Actor); err != nil {
		body.ActorError = "Nothing was searched: " + err.Error()
		return http.StatusBadRequest
	}
	events, err := c.Search.AuditByActor(ctx, body.Form.Actor, actorLimit)
	if err != nil {
		body.ActorError = "The audit trail could not be read: " + err.Error()
		return http.StatusBadGateway
	}
	body.EventsMore = len(events) == actorLimit
	teams, err := c.itemTeams(ctx, events)
	if err != nil {
		body.ActorError = "Temporal's visibility did not answer, so whose items the events are about cannot be told and none is shown: " + err.Error()
		return http.StatusBadGateway
	}
	for _, e := range events {
		team, known := teams[e.WorkflowID]
		switch {
		case !known:
			body.EventsUnknown++
		case !op.decides(team):
			body.EventsHidden++
		default:
			body.Events = append(body.Events, actorRow{trailRow: auditRow(e), ID: e.WorkflowID, URL: itemPath(e.WorkflowID)})
		}
	}
	return http.StatusOK
}

// checkActor says what is wrong with an actor name typed into the search.
// The name is a query parameter, never part of SQL; this only refuses what
// no actor is.
func checkActor(actor string) error {
	switch {
	case actor == "":
		return errors.New("type the actor's name (an operator, or system)")
	case !utf8.ValidString(actor) || utf8.RuneCountInString(actor) > maxActorLength:
		return fmt.Errorf("an actor's name is at most %d characters", maxActorLength)
	case strings.ContainsFunc(actor, unicode.IsControl):
		return errors.New("an actor's name holds no control characters")
	}
	return nil
}

// itemTeams is the deciding team of each item the events are about, by
// visibleDeciders, in one visibility query built by signals list's filters.
// Items Temporal does not hold (their history expired, or they were synced
// in a batch) and IDs that are no item's are left out.
func (c *console) itemTeams(ctx context.Context, events []store.AuditEvent) (map[string]string, error) {
	idSet := map[string]bool{}
	for _, e := range events {
		if _, _, ok := api.SplitItemID(e.WorkflowID); ok && itemIDPattern.MatchString(e.WorkflowID) {
			idSet[e.WorkflowID] = true
		}
	}
	teams := map[string]string{}
	if len(idSet) == 0 {
		return teams, nil
	}
	ids := slices.Sorted(maps.Keys(idSet))
	f := filters{query: "WorkflowId IN ('" + strings.Join(ids, "', '") + "')"}
	query, err := f.visibilityQuery(c.Now())
	if err != nil {
		return nil, err
	}
	items, _, err := c.Search.ListItems(ctx, query, len(ids))
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if idSet[it.WorkflowID] {
			teams[it.WorkflowID] = visibleDeciders(it)
		}
	}
	return teams, nil
}
