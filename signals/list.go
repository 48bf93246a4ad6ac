package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/workflows"
)

// filters select items through Temporal's visibility API.
type filters struct {
	status, integration, owner, exception string
	olderThan                             time.Duration
	query                                 string
}

func (f *filters) register(fs *flag.FlagSet) {
	fs.StringVar(&f.status, "status", "", "only items in this status (Blocked, Failed, Synced, ...)")
	fs.StringVar(&f.integration, "integration", "", "only items of this integration (lead-to-crm, ...)")
	fs.StringVar(&f.owner, "owner", "", "only items owned by this team")
	fs.StringVar(&f.exception, "exception", "", "only items waiting on this exception kind (ConsentMissing, ...)")
	fs.DurationVar(&f.olderThan, "older-than", 0, "only items waiting for a decision longer than this (e.g. 2h)")
	fs.StringVar(&f.query, "query", "", "an extra visibility query, ANDed with the rest")
}

var plainValue = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// visibilityQuery turns the filters into a list filter. Values are checked
// against what they may be, so none can break out of its quotes.
func (f *filters) visibilityQuery(now time.Time) (string, error) {
	clauses := []string{workflows.AttrIntegrationName.GetName() + " IS NOT NULL"}
	if f.status != "" {
		st, err := workflows.ParseStatus(f.status)
		if err != nil {
			return "", err
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", workflows.AttrIntegrationStatus.GetName(), st))
	}
	if f.integration != "" {
		if _, err := workflows.SpecByName(f.integration); err != nil {
			return "", err
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", workflows.AttrIntegrationName.GetName(), f.integration))
	}
	if f.owner != "" {
		if !plainValue.MatchString(f.owner) {
			return "", fmt.Errorf("--owner %q: a team name is letters, digits, '.', '_' and '-'", f.owner)
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", workflows.AttrIntegrationOwner.GetName(), f.owner))
	}
	if f.exception != "" {
		kind, err := parseKind(f.exception)
		if err != nil {
			return "", err
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", workflows.AttrExceptionKind.GetName(), kind))
	}
	if f.olderThan < 0 {
		return "", fmt.Errorf("--older-than must not be negative")
	}
	if f.olderThan > 0 {
		clauses = append(clauses, fmt.Sprintf("%s < '%s'", workflows.AttrAttentionSince.GetName(), now.Add(-f.olderThan).UTC().Format(time.RFC3339Nano)))
	}
	if strings.TrimSpace(f.query) != "" {
		clauses = append(clauses, "("+f.query+")")
	}
	return strings.Join(clauses, " AND "), nil
}

var exceptionKinds = []workflows.ExceptionKind{workflows.ConsentMissing, workflows.DuplicateSuspected, workflows.ValidationFailed,
	workflows.ApprovalRequired, workflows.Conflict, workflows.TargetRejected, workflows.TargetUnavailable, workflows.AuthFailed}

func parseKind(s string) (workflows.ExceptionKind, error) {
	for _, k := range exceptionKinds {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	names := make([]string, len(exceptionKinds))
	for i, k := range exceptionKinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown exception kind %q (one of %s)", s, strings.Join(names, ", "))
}

// row is one listed item.
type row struct {
	workflows.VisibleItem
	// WaitingFor says who must decide what, for items that wait.
	WaitingFor string `json:"waitingFor,omitempty"`
	Age        string `json:"age"`
	Waiting    string `json:"waiting,omitempty"`
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
	items, more, err := listItems(ctx, c, query, *limit)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, r.Status, r.Exception, r.WaitingFor, r.Waiting, r.Age)
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
	return nil
}

// listItems pages through the visibility API.
func listItems(ctx context.Context, c client.Client, query string, limit int) ([]workflows.VisibleItem, bool, error) {
	var out []workflows.VisibleItem
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, PageSize: int32(min(limit-len(out), 1000)), NextPageToken: token})
		if err != nil {
			return nil, false, fmt.Errorf("list items: %w (query: %s)", err, query)
		}
		for _, e := range resp.GetExecutions() {
			if len(out) == limit {
				return out, true, nil
			}
			out = append(out, workflows.VisibleItemFrom(e))
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, false, nil
		}
		if len(out) == limit {
			return out, true, nil
		}
	}
}

func describeRow(it workflows.VisibleItem, now time.Time) row {
	r := row{VisibleItem: it, Age: humanDuration(now.Sub(it.StartTime))}
	if it.Status.Waiting() && it.Exception != "" {
		r.WaitingFor = waitingFor(it.Integration, it.Exception)
		if !it.AttentionSince.IsZero() {
			r.Waiting = humanDuration(now.Sub(it.AttentionSince))
		}
	}
	return r
}

// waitingFor says, from the integration's spec, who may decide what.
func waitingFor(integration string, kind workflows.ExceptionKind) string {
	spec, err := workflows.SpecByName(integration)
	if err != nil {
		return "a decision"
	}
	e, ok := spec.Exception(kind)
	if !ok {
		return "a decision"
	}
	deciders := e.Deciders
	if deciders == "" {
		deciders = spec.Owner
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
