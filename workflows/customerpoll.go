package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// Change polling of customer sync.
const (
	// pollOverlap reaches back before the watermark: a change written in a
	// transaction that committed late carries an earlier time than changes
	// seen already. Changes seen twice cost a comparison, not a sync.
	pollOverlap = 2 * time.Minute
	// customerPage and companyPage are how many records one read takes (the
	// CRM's search returns at most 200).
	customerPage, companyPage = 500, 200
	// archivedPage is how many archived companies one list call reads (the
	// CRM's list returns at most 100).
	archivedPage = 100
	// companyPagesPerCall is how many CRM pages one triage activity reads.
	companyPagesPerCall = 10
	// pagesPerRun bounds one run's history: more pages continue as new.
	pagesPerRun = 40
	// Watermark names.
	watermarkPostgres = api.IntegrationCustomerSync + "/postgres"
	watermarkCRM      = api.IntegrationCustomerSync + "/crm"
)

var itemActivities *activities.Items

func customerPoll() *spine.Poll {
	return &spine.Poll{WorkflowType: "CustomerPoll", Workflow: CustomerPoll,
		Every: func(c config.Worker) time.Duration { return c.CustomerSyncEvery }}
}

// CustomerPollInput is where a poll stands when it continues as new; a
// scheduled run starts from the watermarks.
type CustomerPollInput struct {
	Continuing bool
	// PG and CRM are the two sides, paged at the same time; Archived pages
	// through the CRM's archived companies (search does not return them).
	PG, CRM, Archived PollSide
	// Seen counts the records compared, Handed those handed to items so
	// far, Created the companies created in batches.
	Seen, Handed, Created int
	// Full ignores the watermarks: every customer and company is compared
	// (a backfill).
	Full bool `json:"full,omitempty"`
}

// PollSide is how far a poll has paged through one system.
type PollSide struct {
	// Since is the query's time, Last the newest change seen; Done is set
	// once every page was read and handed off.
	Since, Last time.Time
	Done        bool
	// PGAfter and CRMAfter continue the paging; CRMPaged counts the results
	// paged under one CRM query (HubSpot pages no further than 10,000).
	PGAfter  store.Cursor
	CRMAfter string
	CRMPaged int
}

// CustomerPollResult says what a poll did.
type CustomerPollResult struct {
	Handed  int `json:"handed"`
	Created int `json:"created"`
}

// CustomerPoll finds the customers changed since the PostgreSQL watermark
// and the companies changed since the CRM's, both at once, hands those that
// differ from their baseline to their items (starting them, or telling
// running ones to sync again) — customers never synced get their companies
// in batches — and only then advances each side's watermark.
func CustomerPoll(ctx workflow.Context, in CustomerPollInput) (CustomerPollResult, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	p := &poll{in: in}
	err := workflow.SetQueryHandler(ctx, api.QueryProgress, func() (api.PollProgress, error) {
		return api.PollProgress{Side: p.sides(), Seen: p.in.Seen, Handed: p.in.Handed, Created: p.in.Created}, nil
	})
	if err != nil {
		return CustomerPollResult{}, err
	}
	if !in.Continuing {
		p.in = CustomerPollInput{Continuing: true, Full: in.Full}
		if p.in.PG.Since, err = p.since(ctx, watermarkPostgres); err != nil {
			return CustomerPollResult{}, err
		}
		if p.in.CRM.Since, err = p.since(ctx, watermarkCRM); err != nil {
			return CustomerPollResult{}, err
		}
	}
	pages, full := 0, false
	var failed error
	wg := workflow.NewWaitGroup(ctx)
	for _, side := range []*PollSide{&p.in.PG, &p.in.CRM, &p.in.Archived} {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			for !side.Done && !full && failed == nil {
				done, err := p.page(ctx, side)
				if err == nil && done {
					err = p.finish(ctx, side)
				}
				if err != nil {
					failed = err
				}
				if pages++; pages >= pagesPerRun {
					full = true // this run's history is long enough
				}
			}
		})
	}
	wg.Wait(ctx)
	if failed != nil {
		return CustomerPollResult{}, failed
	}
	if !p.in.PG.Done || !p.in.CRM.Done || !p.in.Archived.Done {
		if err := p.settle(ctx, 0); err != nil {
			return CustomerPollResult{}, err
		}
		return CustomerPollResult{}, workflow.NewContinueAsNewError(ctx, CustomerPoll, p.in)
	}
	return CustomerPollResult{Handed: p.in.Handed, Created: p.in.Created}, nil
}

// poll is one run of CustomerPoll.
type poll struct {
	in CustomerPollInput
	// batches are backfill batches still running: the next pages are read
	// meanwhile, so the CRM's rate, not round trips, bounds a backfill.
	batches []workflow.Future
}

// batchesInFlight bounds the backfill batches running at once.
const batchesInFlight = 10

// settle waits until at most n batches run, oldest first, and hands the
// customers they found with a company already to their items.
func (p *poll) settle(ctx workflow.Context, n int) error {
	for len(p.batches) > n {
		var b activities.BackfillResult
		if err := p.batches[0].Get(ctx, &b); err != nil {
			return err
		}
		p.batches = p.batches[1:]
		p.in.Created += b.Created
		if err := p.hand(ctx, b.ToItems); err != nil {
			return err
		}
	}
	return nil
}

// hand gives keys to their items: started, or told to sync again.
func (p *poll) hand(ctx workflow.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var r activities.StartItemsResult
	err := workflow.ExecuteLocalActivity(ctx, itemActivities.StartItems, activities.StartItemsInput{
		Integration: api.IntegrationCustomerSync, Keys: keys, StartedBy: "poll"}).Get(ctx, &r)
	p.in.Handed += r.Handed
	return err
}

// since is where a side's query starts: its watermark less the overlap, or
// the beginning when there is none (the first poll syncs everything).
func (p *poll) since(ctx workflow.Context, name string) (time.Time, error) {
	if p.in.Full {
		return time.Time{}, nil
	}
	var w activities.WatermarkResult
	err := workflow.ExecuteLocalActivity(ctx, customerActivities.Watermark, activities.WatermarkInput{Name: name}).Get(ctx, &w)
	if err != nil || !w.Set {
		return time.Time{}, err
	}
	return w.At.Add(-pollOverlap), nil
}

// sides names the systems still being paged.
func (p *poll) sides() string {
	var open []string
	if !p.in.PG.Done {
		open = append(open, "postgres")
	}
	if !p.in.CRM.Done {
		open = append(open, "crm")
	}
	if !p.in.Archived.Done {
		open = append(open, "crm archive")
	}
	if len(open) == 0 {
		return "done"
	}
	return strings.Join(open, " and ")
}

// page triages one page of a side and hands its keys off; it reports
// whether the side has no more pages.
func (p *poll) page(ctx workflow.Context, side *PollSide) (bool, error) {
	spec := api.CustomerSyncSpec()
	var keys []string
	var done bool
	var last time.Time
	if side == &p.in.PG {
		var fields []string
		for _, f := range spec.SyncedFields() {
			fields = append(fields, f.Name)
		}
		var r activities.TriageCustomersResult
		err := workflow.ExecuteLocalActivity(ctx, customerActivities.TriageCustomers, activities.TriageCustomersInput{
			Integration: spec.Name, Fields: fields, Since: side.Since, After: side.PGAfter, Limit: customerPage}).Get(ctx, &r)
		if err != nil {
			return false, err
		}
		keys, done, last, side.PGAfter = r.Keys, r.Done, r.Last, r.Next
		p.in.Seen += r.Seen
		for batch := range slices.Chunk(r.New, crm.MaxBatch) {
			p.batches = append(p.batches, workflow.ExecuteActivity(p.crmCtx(ctx, fmt.Sprintf("Create the CRM companies of %d customers never synced", len(batch))),
				companyPollActivities.Backfill, activities.BackfillInput{CustomerIDs: batch, RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID}))
		}
		if err := p.settle(ctx, batchesInFlight); err != nil {
			return false, err
		}
	} else if side == &p.in.Archived {
		var r activities.ArchivedCompaniesResult
		err := workflow.ExecuteActivity(p.crmCtx(ctx, "List the CRM's archived companies"), companyPollActivities.ArchivedCompanies,
			activities.ArchivedCompaniesInput{Integration: spec.Name, After: side.CRMAfter, Limit: archivedPage}).Get(ctx, &r)
		if err != nil {
			return false, err
		}
		keys, done, side.CRMAfter = r.Keys, r.Done, r.Next
	} else {
		props := map[string]string{}
		for _, f := range spec.SyncedFields() {
			props[f.Name] = f.TargetName
		}
		var r activities.TriageCompaniesResult
		actx := p.crmCtx(ctx, "Find the CRM companies changed since "+side.Since.Format(time.RFC3339))
		err := workflow.ExecuteActivity(actx, companyPollActivities.TriageCompanies, activities.TriageCompaniesInput{
			Integration: spec.Name, Properties: props, Since: side.Since, After: side.CRMAfter, Limit: companyPage,
			Pages: companyPagesPerCall, Paged: side.CRMPaged}).Get(ctx, &r)
		if err != nil {
			return false, err
		}
		keys, done, last, side.CRMAfter = r.Keys, r.Done, r.Last, r.Next
		for _, company := range r.Unknown {
			keys = append(keys, api.NewCompanyKey(company))
		}
		side.CRMPaged += r.Seen
		p.in.Seen += r.Seen
		if !done && side.CRMPaged+companyPage > crm.MaxSearchResults {
			// The CRM pages no further under one query: query again from the
			// newest change seen (the overlap is compared, not synced, again).
			side.Since, side.CRMAfter, side.CRMPaged = last, "", 0
		}
	}
	if last.After(side.Last) {
		side.Last = last
	}
	return done, p.hand(ctx, keys)
}

// finish ends a side once every change it covers was handed off: its
// batches done, its watermark moved to the newest change seen.
func (p *poll) finish(ctx workflow.Context, side *PollSide) error {
	if side == &p.in.Archived {
		side.Done = true // listed whole each poll: no watermark
		return nil
	}
	name := watermarkCRM
	if side == &p.in.PG {
		name = watermarkPostgres
		if err := p.settle(ctx, 0); err != nil {
			return err
		}
	}
	side.Done = true
	if side.Last.IsZero() {
		return nil
	}
	return workflow.ExecuteLocalActivity(ctx, customerActivities.AdvanceWatermark, activities.WatermarkInput{Name: name, At: side.Last}).Get(ctx, nil)
}

// crmCtx runs an activity on the poll's CRM queue, at the CRM's rate.
func (p *poll) crmCtx(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: api.TaskQueueCRMPoll, StartToCloseTimeout: 2 * time.Minute, ScheduleToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: 20 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
		Summary:     summary,
	})
}
