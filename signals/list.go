package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/signalbox-dev/signalbox/api"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// filters select items through Temporal's visibility API.
type filters struct {
	status, integration, owner, team, exception string
	olderThan                                   time.Duration
	query                                       string
	// sourceKey finds the items of a source key: their workflow IDs are
	// api.ItemID(integration, key), one per integration (or the one
	// integration picks). The console's search sets it; the CLI has no flag.
	sourceKey string
}

func (f *filters) register(fs *flag.FlagSet) {
	fs.StringVar(&f.status, "status", "", "only items in this status (Blocked, Failed, Synced, ...)")
	fs.StringVar(&f.integration, "integration", "", "only items of this integration (lead-to-crm, ...)")
	fs.StringVar(&f.owner, "owner", "", "only items owned by this team")
	fs.StringVar(&f.team, "team", "", "only items assigned to this team (a lead's routed sales team)")
	fs.StringVar(&f.exception, "exception", "", "only items waiting on this exception kind (ConsentMissing, ...)")
	fs.DurationVar(&f.olderThan, "older-than", 0, "only items waiting for a decision longer than this (e.g. 2h)")
	fs.StringVar(&f.query, "query", "", "an extra visibility query, ANDed with the rest")
}

var plainValue = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// visibilityQuery turns the filters into a list filter. Values are checked
// against what they may be, so none can break out of its quotes.
func (f *filters) visibilityQuery(now time.Time) (string, error) {
	clauses := []string{api.AttrIntegrationName.GetName() + " IS NOT NULL"}
	if f.status != "" {
		st, err := api.ParseStatus(f.status)
		if err != nil {
			return "", err
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", api.AttrIntegrationStatus.GetName(), st))
	}
	if f.integration != "" {
		if _, err := api.SpecByName(f.integration); err != nil {
			return "", err
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", api.AttrIntegrationName.GetName(), f.integration))
	}
	if f.sourceKey != "" {
		if err := api.CheckSourceKey(f.sourceKey); err != nil {
			return "", fmt.Errorf("source key %q: %w", f.sourceKey, err)
		}
		var ids []string
		for _, s := range api.Specs() {
			if f.integration == "" || s.Name == f.integration {
				ids = append(ids, "'"+api.ItemID(s.Name, f.sourceKey)+"'")
			}
		}
		if len(ids) == 1 {
			clauses = append(clauses, "WorkflowId = "+ids[0])
		} else {
			clauses = append(clauses, "WorkflowId IN ("+strings.Join(ids, ", ")+")")
		}
	}
	if f.owner != "" {
		if !plainValue.MatchString(f.owner) {
			return "", fmt.Errorf("--owner %q: a team name is letters, digits, '.', '_' and '-'", f.owner)
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", api.AttrIntegrationOwner.GetName(), f.owner))
	}
	if f.team != "" {
		if !plainValue.MatchString(f.team) {
			return "", fmt.Errorf("--team %q: a team name is letters, digits, '.', '_' and '-'", f.team)
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", api.AttrAssignedTeam.GetName(), f.team))
	}
	if f.exception != "" {
		kind, err := parseKind(f.exception)
		if err != nil {
			return "", err
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", api.AttrExceptionKind.GetName(), kind))
	}
	if f.olderThan < 0 {
		return "", fmt.Errorf("--older-than must not be negative")
	}
	if f.olderThan > 0 {
		clauses = append(clauses, fmt.Sprintf("%s < '%s'", api.AttrAttentionSince.GetName(), now.Add(-f.olderThan).UTC().Format(time.RFC3339Nano)))
	}
	if strings.TrimSpace(f.query) != "" {
		clauses = append(clauses, "("+f.query+")")
	}
	return strings.Join(clauses, " AND "), nil
}

// exceptionKinds are the kinds the integrations declare, in declaration order.
func exceptionKinds() []api.ExceptionKind {
	var kinds []api.ExceptionKind
	for _, s := range api.Specs() {
		for _, e := range s.Exceptions {
			if !slices.Contains(kinds, e.Kind) {
				kinds = append(kinds, e.Kind)
			}
		}
	}
	return kinds
}

func parseKind(s string) (api.ExceptionKind, error) {
	kinds := exceptionKinds()
	for _, k := range kinds {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown exception kind %q (one of %s)", s, strings.Join(names, ", "))
}

// row is one listed item.
type row struct {
	api.VisibleItem
	// WaitingFor says who must decide what, for items that wait.
	WaitingFor string `json:"waitingFor,omitempty"`
	Age        string `json:"age"`
	Waiting    string `json:"waiting,omitempty"`
	// Stranded marks an item whose run ended (see execution) while its status
	// was not terminal: start it again from its source (signals show says how).
	Stranded bool `json:"stranded,omitempty"`
}

func (a *app) list(ctx context.Context, args []string, countOnly bool) error {
	name := "signals list"
	if countOnly {
		name = "signals count"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var f filters
	f.register(fs)
	limit := fs.Int("limit", 200, "show at most this many items")
	allRuns := fs.Bool("all-runs", false, "show every run of each item (its history), not only the latest")
	output := fs.String("o", "table", "output: table or json")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fmt.Fprintf(a.stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		}
		return errUsage
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(a.stderr, "%s: -o must be table or json\n", name)
		return errUsage
	}
	if *limit < 1 {
		fmt.Fprintf(a.stderr, "%s: --limit must be at least 1\n", name)
		return errUsage
	}
	query, err := f.visibilityQuery(a.now())
	if err != nil {
		return err
	}
	c, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	if countOnly {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err != nil {
			return fmt.Errorf("count items: %w (query: %s)", err, query)
		}
		if *output == "json" {
			return json.NewEncoder(a.stdout).Encode(map[string]int64{"count": resp.GetCount()})
		}
		fmt.Fprintln(a.stdout, resp.GetCount())
		return nil
	}
	items, more, err := listItems(ctx, c, query, *limit, *allRuns)
	if err != nil {
		return err
	}
	now := a.now()
	rows := make([]row, len(items))
	for i, it := range items {
		rows[i] = describeRow(it, now)
	}
	if *output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ITEM\tSTATUS\tEXCEPTION\tWAITING FOR\tWAITING\tAGE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, statusLabel(r.VisibleItem), r.Exception, r.WaitingFor, r.Waiting, r.Age)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case len(rows) == 0:
		fmt.Fprintln(a.stdout, "(no items match)")
	case more:
		fmt.Fprintf(a.stdout, "(first %d shown; raise --limit or narrow the filters)\n", len(rows))
	}
	if slices.ContainsFunc(rows, func(r row) bool { return r.Stranded }) {
		fmt.Fprintln(a.stdout, "(a status in brackets: the run ended — terminated, failed or timed out — before the item finished; see signals show ID)")
	}
	return nil
}

// listItems pages through the visibility API until it holds limit items, and
// says whether more match. Unless allRuns, an item is its latest run only:
// earlier runs, and matching runs that a newer run has superseded, are left out.
func listItems(ctx context.Context, c client.Client, query string, limit int, allRuns bool) ([]api.VisibleItem, bool, error) {
	var out []api.VisibleItem
	seen := map[string]bool{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, PageSize: int32(min(limit-len(out)+1, 1000)), NextPageToken: token})
		if err != nil {
			return nil, false, fmt.Errorf("list items: %w (query: %s)", err, query)
		}
		page := make([]api.VisibleItem, len(resp.GetExecutions()))
		for i, e := range resp.GetExecutions() {
			page[i] = api.VisibleItemFrom(e)
		}
		if !allRuns {
			if page, err = dropSuperseded(ctx, c, page); err != nil {
				return nil, false, err
			}
		}
		for _, it := range page {
			if seen[it.WorkflowID] && !allRuns {
				continue
			}
			if len(out) == limit {
				return out, true, nil
			}
			seen[it.WorkflowID] = true
			out = append(out, it)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, false, nil
		}
	}
}

// itemIDPattern is what an item's workflow ID may hold, so it can be quoted in
// a visibility query.
var itemIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~:-]+$`)

// dropSuperseded removes the ended runs that are not their item's latest run:
// an item re-synced after its run was terminated is judged by its new run.
// Running runs are always their item's latest, so they cost no query.
func dropSuperseded(ctx context.Context, c client.Client, page []api.VisibleItem) ([]api.VisibleItem, error) {
	endedSet := map[string]bool{}
	for _, it := range page {
		if it.Execution != executionRunning && itemIDPattern.MatchString(it.WorkflowID) {
			endedSet[it.WorkflowID] = true
		}
	}
	ended := slices.Sorted(maps.Keys(endedSet))
	latest := map[string]time.Time{}
	for chunk := range slices.Chunk(ended, 100) {
		query := fmt.Sprintf("WorkflowId IN ('%s')", strings.Join(chunk, "', '"))
		var token []byte
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1000, NextPageToken: token})
			if err != nil {
				return nil, fmt.Errorf("list the runs of ended items: %w", err)
			}
			for _, e := range resp.GetExecutions() {
				it := api.VisibleItemFrom(e)
				if it.StartTime.After(latest[it.WorkflowID]) {
					latest[it.WorkflowID] = it.StartTime
				}
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	return latestOnly(page, latest), nil
}

// latestOnly keeps the runs that are their item's latest, given the newest
// start time among each item's runs (items not in latest are kept).
func latestOnly(runs []api.VisibleItem, latest map[string]time.Time) []api.VisibleItem {
	return slices.DeleteFunc(slices.Clone(runs), func(it api.VisibleItem) bool {
		newest, ok := latest[it.WorkflowID]
		return ok && newest.After(it.StartTime)
	})
}

const executionRunning = "Running"

// stranded reports whether an item's run has ended — terminated, failed, timed
// out — while its status says it was still under way or waiting: nothing will
// move it on, and no decision can reach it.
func stranded(it api.VisibleItem) bool {
	return it.Execution != "" && it.Execution != executionRunning && it.Execution != "ContinuedAsNew" && !it.Status.Terminal()
}

// statusLabel is the STATUS column: the item's status, and how its run ended
// when that left it stranded ("Blocked (terminated)").
func statusLabel(it api.VisibleItem) string {
	if !stranded(it) {
		return string(it.Status)
	}
	status := string(it.Status)
	if status == "" {
		status = "(no status)"
	}
	return fmt.Sprintf("%s (%s)", status, executionWords(it.Execution))
}

// executionWords turns Temporal's execution status into words: TimedOut → "timed out".
func executionWords(execution string) string {
	var b strings.Builder
	for i, r := range execution {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func describeRow(it api.VisibleItem, now time.Time) row {
	r := row{VisibleItem: it, Age: humanDuration(now.Sub(it.StartTime)), Stranded: stranded(it)}
	if it.Status.Waiting() && it.Exception != "" && !r.Stranded {
		r.WaitingFor = waitingFor(it.Integration, it.Team, it.Exception)
		if !it.AttentionSince.IsZero() {
			r.Waiting = humanDuration(now.Sub(it.AttentionSince))
		}
	}
	return r
}

// waitingFor says, from the integration's spec, who may decide what: the
// team the spec names, else the item's assigned team, else its owner.
func waitingFor(integration, team string, kind api.ExceptionKind) string {
	spec, err := api.SpecByName(integration)
	if err != nil {
		return "a decision"
	}
	e, ok := spec.Exception(kind)
	if !ok {
		return "a decision"
	}
	deciders := e.Deciders
	if deciders == "" {
		deciders = cmp.Or(team, spec.Owner)
	}
	names := make([]string, len(e.Decisions))
	for i, d := range e.Decisions {
		names[i] = string(d)
	}
	return deciders + ": " + strings.Join(names, "|")
}

// humanDuration prints 45s, 12m, 3h4m or 2d3h.
func humanDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
