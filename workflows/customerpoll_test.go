package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// pollFake is both sides as a poll pages through them: pages of keys that
// need a sync, and what was handed off and when the watermarks moved.
type pollFake struct {
	// mu guards the fake: the two sides' activities run at the same time.
	mu                sync.Mutex
	pgPages, crmPages [][]string
	// pgNew are, by page, customers never synced; archived the customers
	// whose company was archived in the CRM.
	pgNew      [][]string
	archived   []string
	watermarks map[string]time.Time
	// events records hand-offs and watermark moves in order.
	events []string
	since  map[string]time.Time
}

func newPollEnv(t *testing.T, p *pollFake) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	env.RegisterWorkflowWithOptions(CustomerPoll, workflow.RegisterOptions{Name: "CustomerPoll"})
	env.RegisterActivity(&activities.Customers{})
	env.RegisterActivity(&activities.Companies{})
	env.RegisterActivity(&activities.CompanyPolls{})
	env.RegisterActivity(&activities.Items{})
	p.since = map[string]time.Time{}
	page := func(pages [][]string, after int) ([]string, int, bool) {
		if after >= len(pages) {
			return nil, after, true
		}
		return pages[after], after + 1, after+1 == len(pages)
	}
	env.OnActivity(customerActivities.Watermark, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WatermarkInput) (activities.WatermarkResult, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		at, ok := p.watermarks[in.Name]
		return activities.WatermarkResult{At: at, Set: ok}, nil
	})
	env.OnActivity(customerActivities.AdvanceWatermark, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WatermarkInput) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.events = append(p.events, "advance "+in.Name)
		p.watermarks[in.Name] = in.At
		return nil
	})
	env.OnActivity(customerActivities.TriageCustomers, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TriageCustomersInput) (activities.TriageCustomersResult, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.since["postgres"] = in.Since
		after := 0
		if in.After.ID != "" {
			fmt.Sscan(in.After.ID, &after)
		}
		keys, next, done := page(p.pgPages, after)
		var fresh []string
		if after < len(p.pgNew) {
			fresh = p.pgNew[after]
		}
		return activities.TriageCustomersResult{Keys: keys, New: fresh, Seen: len(keys), Done: done, Next: store.Cursor{ID: fmt.Sprint(next)},
			Last: testStart.Add(time.Duration(next) * time.Second)}, nil
	})
	env.OnActivity(companyPollActivities.TriageCompanies, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TriageCompaniesInput) (activities.TriageCompaniesResult, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.since["crm"] = in.Since
		after := 0
		if in.After != "" {
			fmt.Sscan(in.After, &after)
		}
		keys, next, done := page(p.crmPages, after)
		r := activities.TriageCompaniesResult{Keys: keys, Seen: len(keys), Done: done, Last: testStart.Add(time.Duration(next) * time.Minute)}
		if !done {
			r.Next = fmt.Sprint(next)
		}
		return r, nil
	})
	env.OnActivity(companyPollActivities.ArchivedCompanies, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.ArchivedCompaniesInput) (activities.ArchivedCompaniesResult, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return activities.ArchivedCompaniesResult{Keys: p.archived, Seen: len(p.archived), Done: true}, nil
	})
	env.OnActivity(companyPollActivities.Backfill, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BackfillInput) (activities.BackfillResult, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.events = append(p.events, fmt.Sprint("backfill ", len(in.CustomerIDs)))
		// The first of each batch has a company already: its item judges it.
		return activities.BackfillResult{Created: len(in.CustomerIDs) - 1, ToItems: in.CustomerIDs[:1]}, nil
	}).Maybe()
	env.OnActivity(itemActivities.StartItems, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StartItemsInput) (activities.StartItemsResult, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		require.Equal(t, api.IntegrationCustomerSync, in.Integration)
		p.events = append(p.events, fmt.Sprint("hand ", in.Keys))
		return activities.StartItemsResult{Handed: len(in.Keys)}, nil
	})
	return env
}

func TestAPollHandsChangesOffBeforeItMovesTheWatermarks(t *testing.T) {
	t.Parallel()
	p := &pollFake{
		pgPages:    [][]string{{"C1", "C2"}, {"C3"}},
		crmPages:   [][]string{{"C2", "C2", "C4"}, {}},
		watermarks: map[string]time.Time{watermarkPostgres: testStart.Add(-time.Hour)},
	}
	env := newPollEnv(t, p)
	env.ExecuteWorkflow(CustomerPoll, CustomerPollInput{})
	require.NoError(t, env.GetWorkflowError())
	var r CustomerPollResult
	require.NoError(t, env.GetWorkflowResult(&r))
	require.Equal(t, 5, r.Handed)
	require.ElementsMatch(t, []string{"hand [C1 C2]", "hand [C3]", "advance " + watermarkPostgres, "hand [C2 C4]", "advance " + watermarkCRM}, p.events,
		"a key is handed once per page")
	requireBefore(t, p.events, []string{"hand [C1 C2]", "hand [C3]"}, "advance "+watermarkPostgres)
	requireBefore(t, p.events, []string{"hand [C2 C4]"}, "advance "+watermarkCRM)
	require.Equal(t, testStart.Add(-time.Hour-pollOverlap), p.since["postgres"], "the query reaches back by the overlap")
	require.True(t, p.since["crm"].IsZero(), "no CRM watermark yet: from the beginning")
	require.Equal(t, testStart.Add(2*time.Second), p.watermarks[watermarkPostgres])
	require.Equal(t, testStart.Add(2*time.Minute), p.watermarks[watermarkCRM])
}

func TestCustomersWhoseCompanyWasArchivedAreHandedToTheirItems(t *testing.T) {
	t.Parallel()
	p := &pollFake{archived: []string{"C7", "C9"}, watermarks: map[string]time.Time{}}
	env := newPollEnv(t, p)
	env.ExecuteWorkflow(CustomerPoll, CustomerPollInput{})
	require.NoError(t, env.GetWorkflowError())
	require.Contains(t, p.events, "hand [C7 C9]", "archived in the CRM: their items ask the owner team")
}

func TestALongPollContinuesAsNew(t *testing.T) {
	t.Parallel()
	p := &pollFake{watermarks: map[string]time.Time{}}
	for i := range pagesPerRun + 5 {
		p.pgPages = append(p.pgPages, []string{fmt.Sprint("C", i)})
	}
	env := newPollEnv(t, p)
	env.ExecuteWorkflow(CustomerPoll, CustomerPollInput{})
	require.True(t, workflow.IsContinueAsNewError(env.GetWorkflowError()), "%v", env.GetWorkflowError())
	require.NotContains(t, p.events, "advance "+watermarkPostgres, "no watermark moved before its side is done")
	hands := 0
	for _, e := range p.events {
		if strings.HasPrefix(e, "hand ") {
			hands++
		}
	}
	require.Equal(t, pagesPerRun-2, hands, "a run reads %d pages in all (the CRM's one and its archive's, done, and PostgreSQL's), then continues as new", pagesPerRun)
	require.Contains(t, p.events, "advance "+watermarkCRM, "a side that is done moves its watermark though the other continues")
}

func TestCustomersNeverSyncedAreCreatedInBatches(t *testing.T) {
	t.Parallel()
	var fresh []string
	for i := range 250 {
		fresh = append(fresh, fmt.Sprintf("N%03d", i))
	}
	p := &pollFake{pgPages: [][]string{{"C1"}}, pgNew: [][]string{fresh}, crmPages: [][]string{{}}, watermarks: map[string]time.Time{}}
	env := newPollEnv(t, p)
	env.ExecuteWorkflow(CustomerPoll, CustomerPollInput{Full: true})
	require.NoError(t, env.GetWorkflowError())
	var r CustomerPollResult
	require.NoError(t, env.GetWorkflowResult(&r))
	require.Equal(t, 247, r.Created)
	require.ElementsMatch(t, []string{"hand [C1]", "backfill 100", "hand [N000]", "backfill 100", "hand [N100]", "backfill 50", "hand [N200]",
		"advance " + watermarkPostgres, "advance " + watermarkCRM}, p.events,
		"batches of at most 100; a customer whose company exists goes to its item")
	requireBefore(t, p.events, []string{"hand [C1]", "hand [N000]", "hand [N100]", "hand [N200]"}, "advance "+watermarkPostgres)
}

// requireBefore checks that each of first comes before then in events.
func requireBefore(t *testing.T, events, first []string, then string) {
	t.Helper()
	at := slices.Index(events, then)
	require.GreaterOrEqual(t, at, 0, "%s happened", then)
	for _, e := range first {
		i := slices.Index(events, e)
		require.True(t, i >= 0 && i < at, "%s happens before %s: %v", e, then, events)
	}
}
