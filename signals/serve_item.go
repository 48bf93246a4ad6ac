package main

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// amendRows is how many field = value rows the amend form offers.
const amendRows = 3

// pair is a name and its value, in a list.
type pair struct{ Name, Value string }

// exceptionView is the exception an item waits on, for the page.
type exceptionView struct {
	Kind, Summary, Deciders, Since, Waited, SLA string
	Overdue                                     bool
	// Tables set side by side what the details compare (serve_item_compare.go);
	// Details are those no table took.
	Tables    []comparison
	Details   []pair
	Deadline  string
	Decisions string
}

// decisionView is one of the item's recent decisions.
type decisionView struct {
	At, Action, Actor, Via, Reason, Outcome string
	Applied                                 bool
}

// trailRow is one row of the audit trail.
type trailRow struct {
	At, Actor, Action, Change, Reason string
}

// decisionForm is the form of one allowed decision.
type decisionForm struct {
	Action  api.Action
	Label   string
	Choices []api.Choice
	// Amend offers field = value rows; Fields are those the spec lets an
	// operator amend.
	Amend  bool
	Fields []string
	Rows   []amendRow
	// Resolve asks where the item was fixed by hand.
	Resolve bool
	// Teams, for reassign, are the teams the item may be handed to.
	Teams []string
	// Reason, Choice and ExternalRef keep what was typed when a decision
	// was refused, so nothing is typed twice.
	Reason, Choice, ExternalRef string
}

// itemBody is the item page's.
type itemBody struct {
	ID, Status, Integration, Owner, Team, Started, Age, Step string
	Live                                                     bool
	Note                                                     string
	UIURL, DecideURL                                         string
	Exception                                                *exceptionView
	// ExceptionRef names the exception the forms decide (api.ExceptionRef):
	// a decision sent after the item moved on to another is refused.
	ExceptionRef string
	ExternalIDs  []pair
	Decisions    []decisionView
	Trail        []trailRow
	TrailError   string
	Forms        []decisionForm
	// Closed says why there are no forms.
	Closed string
}

// amendRow is one field = value row of the amend form: what was typed, and
// what is wrong with it.
type amendRow struct {
	Index        int
	Field, Value string
	// Unlisted is a field typed that the form does not offer.
	Unlisted bool
	// Error says what is wrong with the row; FieldInvalid or ValueInvalid
	// which of its two inputs it is about.
	Error                      string
	FieldInvalid, ValueInvalid bool
}

// attempt is a decision the operator sent and the item refused, or the
// console refused before sending it.
type attempt struct {
	decision api.Decision
	refusal  string
	// rows are the amend form's rows as typed; fieldErrors the problems
	// api.Spec.CheckAmendment found in them.
	rows        []amendRow
	fieldErrors api.FieldErrors
}

func (c *console) item(w http.ResponseWriter, r *http.Request, op *operator) {
	id, state, live, ok := c.readOwnItem(w, r, op)
	if !ok {
		return
	}
	c.renderItem(w, r, op, http.StatusOK, id, state, live, nil)
}

// readOwnItem reads the item of the request's path, answering (and
// returning !ok) when it is malformed, unknown, unreadable, or not decided
// by one of the operator's teams.
func (c *console) readOwnItem(w http.ResponseWriter, r *http.Request, op *operator) (string, api.ItemState, bool, bool) {
	id := r.PathValue("id")
	if _, _, ok := api.SplitItemID(id); !ok || !itemIDPattern.MatchString(id) {
		c.fail(w, r, op, http.StatusBadRequest, "Not an item ID", fmt.Sprintf("%q is not an item ID: they look like lead-to-crm:<key>.", id))
		return "", api.ItemState{}, false, false
	}
	state, live, err := c.Backend.ReadItem(r.Context(), id)
	if errors.Is(err, api.ErrNoItem) {
		c.fail(w, r, op, http.StatusNotFound, "No such item",
			fmt.Sprintf("Temporal has no item %s: it never existed, was synced in a batch, or its history has expired. `signals show %s` prints its audit trail, if any.", id, id))
		return "", api.ItemState{}, false, false
	}
	if err != nil {
		c.fail(w, r, op, http.StatusBadGateway, "Temporal did not answer", err.Error())
		return "", api.ItemState{}, false, false
	}
	if team := itemDeciders(state); !op.decides(team) {
		c.fail(w, r, op, http.StatusForbidden, "Not your team's item",
			fmt.Sprintf("%s is decided by team %s, and you are an operator of %s. Nothing was shown or changed.", id, cmp.Or(team, "no team"), cmp.Or(strings.Join(op.teams, ", "), "no team")))
		return "", api.ItemState{}, false, false
	}
	return id, state, live, true
}

func (c *console) renderItem(w http.ResponseWriter, r *http.Request, op *operator, status int, id string, s api.ItemState, live bool, tried *attempt) {
	now := c.Now()
	run := c.Backend.DescribeRun(r.Context(), id)
	body := itemBody{ID: id, Status: string(s.Status), Integration: s.Integration, Owner: s.Owner, Team: s.Team,
		Started: stamp(s.StartedAt), Age: humanDuration(now.Sub(s.StartedAt)), Live: live, Note: runNote(s, run),
		UIURL: c.uiURL(id), DecideURL: itemPath(id) + "/decide", ExceptionRef: api.ExceptionRef(s.Exception)}
	if s.Status == api.StatusRunning {
		body.Step = s.Step
	}
	if e := s.Exception; e != nil {
		ev := &exceptionView{Kind: string(e.Kind), Summary: e.Summary, Deciders: itemDeciders(s), Since: stamp(e.Since),
			Waited: humanDuration(now.Sub(e.Since)), SLA: slaText(e.SLA), Overdue: e.SLA > 0 && now.Sub(e.Since) > e.SLA,
			Decisions: joinActions(e.Decisions)}
		ev.Tables, ev.Details = compare(s.Integration, e)
		if !e.Deadline.IsZero() {
			ev.Deadline = fmt.Sprintf("%s, then %s", stamp(e.Deadline), e.AtDeadline)
		}
		body.Exception = ev
	}
	for _, k := range slices.Sorted(maps.Keys(s.ExternalIDs)) {
		body.ExternalIDs = append(body.ExternalIDs, pair{k, s.ExternalIDs[k]})
	}
	for _, d := range slices.Backward(s.Decisions) {
		outcome := "applied"
		if !d.Applied {
			outcome = "refused: " + d.Refusal
		}
		body.Decisions = append(body.Decisions, decisionView{At: stamp(d.At), Action: string(d.Action), Actor: withIdentity(d.Actor, d.Identity),
			Via: d.Via, Reason: d.Reason, Outcome: outcome, Applied: d.Applied})
	}
	trail, err := c.Backend.AuditTrail(r.Context(), id)
	if err != nil {
		body.TrailError = err.Error()
	}
	for _, e := range trail {
		body.Trail = append(body.Trail, auditRow(e))
	}
	body.Forms, body.Closed = c.decisionForms(s, live, run, tried)
	v := view{Title: id, Nav: "inbox", Body: &body}
	if tried != nil {
		v.Error = "Refused, nothing changed: " + tried.refusal
	}
	c.render(w, op, status, "item", v)
}

func auditRow(e store.AuditEvent) trailRow {
	change := e.ToStatus
	if e.FromStatus != "" && e.FromStatus != e.ToStatus {
		change = e.FromStatus + " → " + e.ToStatus
	}
	identity, _ := e.Details["identity"].(string)
	return trailRow{At: stamp(e.At), Actor: withIdentity(e.Actor, identity), Action: e.Action, Change: change, Reason: e.Reason}
}

// decisionForms are the forms of the decisions the item allows now, or
// why there are none.
func (c *console) decisionForms(s api.ItemState, live bool, run runInfo, tried *attempt) ([]decisionForm, string) {
	e := s.Exception
	switch {
	case !s.Status.Waiting() || e == nil:
		return nil, fmt.Sprintf("The item is %s: it waits for no decision.", s.Status)
	case stranded(api.VisibleItem{Status: s.Status, Execution: run.execution}):
		return nil, "No decision can reach the item: its run has ended (see above)."
	case !live:
		return nil, "The item did not answer its status query — is a worker running? Decide once it answers (reload the page)."
	}
	spec, _ := api.SpecByName(s.Integration)
	actions := slices.Clone(e.Decisions)
	if es, ok := spec.Exception(e.Kind); ok && es.Deciders == "" {
		actions = append(actions, api.ActionReassign)
	}
	var forms []decisionForm
	for _, a := range actions {
		f := decisionForm{Action: a, Label: strings.ToUpper(string(a[:1])) + string(a[1:])}
		switch a {
		case api.ActionApprove:
			f.Choices = e.Choices
		case api.ActionAmend:
			f.Amend, f.Fields = true, spec.Amendable()
			if tried != nil && tried.decision.Action == a {
				f.Rows = markRows(tried.rows, tried.fieldErrors, f.Fields)
			} else {
				f.Rows = markRows(nil, nil, f.Fields)
			}
		case api.ActionResolve:
			f.Resolve = true
		case api.ActionReassign:
			for _, team := range slices.Sorted(maps.Keys(c.Operators)) {
				if team != e.Deciders {
					f.Teams = append(f.Teams, team)
				}
			}
			if len(f.Teams) == 0 {
				continue
			}
		}
		if tried != nil && tried.decision.Action == a {
			f.Reason, f.Choice, f.ExternalRef = tried.decision.Reason, tried.decision.Choice, tried.decision.ExternalRef
		}
		forms = append(forms, f)
	}
	return forms, ""
}

// decide applies one decision, as the operator, through sendDecision. A
// refusal shows the item again, with why (and what was typed); a decision
// applied shows it with the outcome.
func (c *console) decide(w http.ResponseWriter, r *http.Request, op *operator) {
	id, state, live, ok := c.readOwnItem(w, r, op)
	if !ok {
		return
	}
	d, err := decisionFromForm(r.PostForm, op.name)
	if err == nil {
		err = d.Complete()
	}
	tried := &attempt{decision: d, rows: amendRowsFromForm(r.PostForm)}
	var problems []string
	if err != nil {
		problems = append(problems, message(err))
	}
	if d.Action == api.ActionAmend && len(d.Set) > 0 {
		// The values are checked as the workflow checks them, by the same
		// function, and nothing is sent while one is wrong.
		if spec, serr := api.SpecByName(state.Integration); serr == nil {
			if tried.fieldErrors = spec.CheckAmendment(d.Set); len(tried.fieldErrors) > 0 {
				problems = append(problems, "the amendment was not sent: "+tried.fieldErrors.Error())
			}
		}
	}
	if len(problems) > 0 {
		tried.refusal = strings.Join(problems, "; ")
		c.renderItem(w, r, op, http.StatusUnprocessableEntity, id, state, live, tried)
		return
	}
	if !live {
		tried.refusal = "the item did not answer its status query (is a worker running?): decide once it answers"
		c.renderItem(w, r, op, http.StatusConflict, id, state, live, tried)
		return
	}
	if r.PostForm.Get("exception") != api.ExceptionRef(state.Exception) {
		tried.refusal = fmt.Sprintf("%s changed since the page was drawn (it is %s%s now): read it again, then decide", id, state.Status, exceptionSuffix(state))
		c.renderItem(w, r, op, http.StatusConflict, id, state, live, tried)
		return
	}
	outcome, err := c.Backend.Decide(r.Context(), id, c.vouch(op, id, state, d))
	var refused *refusedError
	switch {
	case err == nil:
		c.sessions.setFlash(op.session, fmt.Sprintf("%s: %s", id, outcome.Message))
		http.Redirect(w, r, itemPath(id), http.StatusSeeOther)
	case errors.As(err, &refused):
		// Show the item as it is now: the refusal is in its audit trail.
		if now, nowLive, err := c.Backend.ReadItem(r.Context(), id); err == nil {
			state, live = now, nowLive
		}
		tried.refusal = refused.reason
		c.renderItem(w, r, op, http.StatusConflict, id, state, live, tried)
	default:
		c.fail(w, r, op, http.StatusBadGateway, "The decision was not delivered", err.Error()+". Read the item again before you decide again.")
	}
}

func exceptionSuffix(s api.ItemState) string {
	if s.Exception == nil {
		return ""
	}
	return fmt.Sprintf(", waiting on %s since %s", s.Exception.Kind, stamp(s.Exception.Since))
}

// decisionFromForm reads a decision form. The actor is the signed-in
// operator, whatever the form says.
func decisionFromForm(form url.Values, actor string) (api.Decision, error) {
	d := api.Decision{Action: api.Action(form.Get("action")), Actor: actor, Reason: strings.TrimSpace(form.Get("reason")),
		Choice: form.Get("choice"), ExternalRef: strings.TrimSpace(form.Get("externalRef"))}
	if !slices.Contains(api.Actions, d.Action) {
		return d, fmt.Errorf("action %q is not one of %s", d.Action, api.JoinActions(api.Actions))
	}
	if d.Action == api.ActionReassign {
		d.Choice = form.Get("team")
	}
	fields, values := form["set-field"], form["set-value"]
	for i, field := range fields {
		value := ""
		if i < len(values) {
			value = values[i]
		}
		field = strings.TrimSpace(field)
		if field == "" {
			if strings.TrimSpace(value) != "" {
				return d, fmt.Errorf("the value %q has no field: pick the field it sets", value)
			}
			continue
		}
		if d.Set == nil {
			d.Set = map[string]string{}
		}
		if _, dup := d.Set[field]; dup {
			return d, fmt.Errorf("field %s is set twice", field)
		}
		d.Set[field] = value
	}
	return d, nil
}

// amendRowsFromForm are the amend form's rows as typed, at most
// api.MaxSetFields of them.
func amendRowsFromForm(form url.Values) []amendRow {
	fields, values := form["set-field"], form["set-value"]
	var rows []amendRow
	for i := 0; i < max(len(fields), len(values)) && i < api.MaxSetFields; i++ {
		row := amendRow{Index: i}
		if i < len(fields) {
			row.Field = strings.TrimSpace(fields[i])
		}
		if i < len(values) {
			row.Value = values[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// markRows are the amend form's rows — at least amendRows, holding what
// was typed — each with the problems errs finds in its field, shown next to
// it: the field's input is marked when operators may not amend it (it is
// not one of fields), else the value's.
func markRows(typed []amendRow, errs api.FieldErrors, fields []string) []amendRow {
	rows := slices.Clone(typed)
	for i := len(rows); i < amendRows; i++ {
		rows = append(rows, amendRow{Index: i})
	}
	problems := map[string][]string{}
	for _, e := range errs {
		problems[e.Field] = append(problems[e.Field], e.Problem)
	}
	for i := range rows {
		row := &rows[i]
		row.Index = i
		row.Unlisted = row.Field != "" && !slices.Contains(fields, row.Field)
		if p, ok := problems[row.Field]; ok && row.Field != "" {
			row.Error = row.Field + ": " + strings.Join(p, "; ")
			row.FieldInvalid, row.ValueInvalid = row.Unlisted, !row.Unlisted
			delete(problems, row.Field) // shown once, at the first row setting it
		}
	}
	return rows
}

// bulkOutcome is what became of one item of a bulk decision.
type bulkOutcome struct {
	ID, URL string
	// Outcome is applied, refused or failed; Message says more.
	Outcome, Message string
}

// bulkBody is the bulk decision's answer page's: its head (Count items,
// Parallel at a time), then a row per outcome as it comes, then the counts.
type bulkBody struct {
	Action                   api.Action
	Reason                   string
	Count, Parallel          int
	Applied, Refused, Failed int
}

// maxBulk bounds the items one bulk decision may name (a page shows 50).
const maxBulk = 200

// bulkDecide applies one decision to the items ticked in the inbox, each
// through sendDecision, and lists what became of each.
func (c *console) bulkDecide(w http.ResponseWriter, r *http.Request, op *operator) {
	ids := uniqueIDs(r.PostForm["id"])
	d := api.Decision{Action: api.Action(r.PostForm.Get("action")), Actor: op.name, Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	var problem string
	switch {
	case len(ids) == 0:
		problem = "Tick at least one item, then decide."
	case len(ids) > maxBulk:
		problem = fmt.Sprintf("At most %d items at once; tick fewer.", maxBulk)
	case !slices.Contains(bulkActions, d.Action):
		problem = fmt.Sprintf("In bulk the decision is one of %s, not %q.", api.JoinActions(bulkActions), d.Action)
	default:
		if err := d.Complete(); err != nil {
			problem = message(err)
		}
	}
	if problem != "" {
		c.fail(w, r, op, http.StatusUnprocessableEntity, "Nothing decided", problem+" Nothing was sent.")
		return
	}
	// The answer streams: its head at once, a row per item as it answers,
	// then the counts, so a long bulk decision shows its progress without
	// any script.
	body := &bulkBody{Action: d.Action, Reason: d.Reason, Count: len(ids), Parallel: consoleParallel}
	page, err := c.stream(w, op, "bulk", view{Title: "Bulk " + string(d.Action), Nav: "inbox", Body: body})
	if err != nil {
		return
	}
	var mu sync.Mutex
	done := make([]bool, len(ids))
	emit := func(i int, o bulkOutcome) {
		mu.Lock()
		defer mu.Unlock()
		done[i] = true
		switch o.Outcome {
		case "applied":
			body.Applied++
		case "refused":
			body.Refused++
		default:
			body.Failed++
		}
		page.write("row", o)
	}
	eachParallel(r.Context(), len(ids), consoleParallel, func(i int) { emit(i, c.decideOne(r, op, ids[i], d)) })
	for i, id := range ids {
		if !done[i] { // not begun: the request ended first
			emit(i, bulkOutcome{ID: id, URL: itemPath(id), Outcome: "failed", Message: "not sent: the request ended first"})
		}
	}
	page.write("done", body)
	page.end()
}

// decideOne is one item of a bulk decision: refused unless one of the
// operator's teams decides it, else sent through sendDecision.
func (c *console) decideOne(r *http.Request, op *operator, id string, d api.Decision) bulkOutcome {
	o := bulkOutcome{ID: id, URL: itemPath(id), Outcome: "refused"}
	if _, _, ok := api.SplitItemID(id); !ok || !itemIDPattern.MatchString(id) {
		o.URL, o.Message = "", "not an item ID"
		return o
	}
	state, _, err := c.Backend.ReadItem(r.Context(), id)
	switch {
	case errors.Is(err, api.ErrNoItem):
		o.Message = "no such item in Temporal"
		return o
	case err != nil:
		o.Outcome, o.Message = "failed", err.Error()
		return o
	}
	if team := itemDeciders(state); !op.decides(team) {
		o.Message = fmt.Sprintf("decided by team %s, not one of yours", cmp.Or(team, "(none)"))
		c.refused(r, op, itemPath(id), "bulk "+string(d.Action)+": "+o.Message)
		return o
	}
	outcome, err := c.Backend.Decide(r.Context(), id, c.vouch(op, id, state, d))
	var refused *refusedError
	switch {
	case err == nil:
		o.Outcome, o.Message = "applied", outcome.Message
	case errors.As(err, &refused):
		o.Message = refused.reason
	default:
		o.Outcome, o.Message = "failed", err.Error()
	}
	return o
}

func uniqueIDs(ids []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// uiURL is the item's page in the Temporal UI.
func (c *console) uiURL(id string) string {
	return strings.TrimSuffix(c.Console.UIBaseURL, "/") + "/namespaces/" + url.PathEscape(c.Namespace) + "/workflows/" + url.PathEscape(id)
}

// stamp prints a time for a page, in UTC.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// vouch signs d as the console's, for the exception state waits on, when the
// sign-on proxy authenticated the operator and the console has a key
// (SIGNALBOX_CONSOLE_KEY_FILE): workers that trust the console's key apply
// it as the operator's. A token sign-in's decisions are sent unsigned.
func (c *console) vouch(op *operator, id string, state api.ItemState, d api.Decision) api.Decision {
	if c.Key == nil || !op.viaProxy {
		return d
	}
	d.Signer = c.Key.console
	return api.SignDecision(c.Key.key, id, api.ExceptionRef(state.Exception), d, c.Now())
}
