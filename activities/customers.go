package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
	"github.com/signalbox-dev/signalbox/fieldrules"
	"github.com/signalbox-dev/signalbox/store"
)

// Customers holds the local activities that read and write the customers the
// business keeps in PostgreSQL.
type Customers struct {
	Store *store.Store
}

// LoadCustomerInput names the customer to read.
type LoadCustomerInput struct {
	CustomerID string
}

// LoadCustomer reads a customer; a missing one is a non-retryable NotFound.
func (a *Customers) LoadCustomer(ctx context.Context, in LoadCustomerInput) (store.Customer, error) {
	c, err := a.Store.GetCustomer(ctx, in.CustomerID)
	if errors.Is(err, store.ErrNotFound) {
		return c, temporal.NewNonRetryableApplicationError("customer "+in.CustomerID+" does not exist in PostgreSQL", string(api.ErrorNotFound), nil)
	}
	return c, Classify(err)
}

// WriteCustomerInput carries field values to write to a customer, at the
// version they were decided on.
type WriteCustomerInput struct {
	CustomerID string
	IfVersion  int64
	Set        map[string]string
}

// WriteCustomer writes the fields if the customer is still at IfVersion, and
// returns it as written. A customer changed meanwhile is a non-retryable
// Stale (nothing was written); a value PostgreSQL cannot hold is a
// TargetRejected that names the field.
func (a *Customers) WriteCustomer(ctx context.Context, in WriteCustomerInput) (store.Customer, error) {
	c, err := a.Store.UpdateCustomer(ctx, in.CustomerID, in.IfVersion, in.Set)
	switch {
	case errors.Is(err, store.ErrStale):
		return c, temporal.NewNonRetryableApplicationError("customer "+in.CustomerID+" changed in PostgreSQL since it was read", string(api.ErrorStale), nil)
	case errors.Is(err, store.ErrNotFound):
		return c, temporal.NewNonRetryableApplicationError("customer "+in.CustomerID+" does not exist in PostgreSQL", string(api.ErrorNotFound), nil)
	case errors.Is(err, store.ErrInvalidCustomer):
		return c, temporal.NewNonRetryableApplicationError(err.Error(), string(api.ErrorTargetRejected), nil,
			Rejection{Target: "postgres", Status: http.StatusUnprocessableEntity, Message: err.Error()})
	}
	return c, Classify(err)
}

// Companies holds the activities that read and write CRM companies.
type Companies struct {
	Client *crm.Client
	Store  *store.Store
}

// FindCompanyInput names the customer whose company to find.
type FindCompanyInput struct {
	Integration string
	CustomerID  string
	// Properties are the properties to read.
	Properties []string
}

// FindCompanyResult is what the CRM holds for the customer.
type FindCompanyResult struct {
	// Company is the customer's company, archived ones included; nil when
	// there is none.
	Company *crm.Company
	// Via says how it was found: "link" (the external link), "search" (by
	// our customer ID property), or "" when it was not.
	Via string
	// Linked is set when an external link names a company: Company is nil
	// when the CRM no longer has it at all.
	Linked bool
	// Baseline is what both sides held at the last sync or settlement.
	Baseline store.Baseline `json:",omitempty"`
}

// FindCompany looks the company up by its link, else by our customer ID.
func (a *Companies) FindCompany(ctx context.Context, in FindCompanyInput) (FindCompanyResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (FindCompanyResult, error) {
		link, err := a.Store.GetLink(ctx, in.Integration, in.CustomerID, api.SystemCRM)
		switch {
		case err == nil:
			c, err := a.Client.GetCompany(ctx, link.TargetID, in.Properties, false)
			if isNotFound(err) {
				// HubSpot reads archived records only when asked for them alone.
				c, err = a.Client.GetCompany(ctx, link.TargetID, in.Properties, true)
			}
			if isNotFound(err) {
				return FindCompanyResult{Linked: true, Baseline: link.Baseline}, nil
			}
			if err != nil {
				return FindCompanyResult{}, Classify(err)
			}
			return FindCompanyResult{Company: &c, Via: "link", Linked: true, Baseline: link.Baseline}, nil
		case !errors.Is(err, store.ErrNotFound):
			return FindCompanyResult{}, Classify(err)
		}
		c, err := a.search(ctx, in.CustomerID, in.Properties)
		if err != nil || c == nil {
			return FindCompanyResult{}, err
		}
		return FindCompanyResult{Company: c, Via: "search"}, nil
	})
}

// search finds the company carrying our customer ID, if any.
func (a *Companies) search(ctx context.Context, customerID string, properties []string) (*crm.Company, error) {
	page, err := a.Client.SearchCompanies(ctx, crm.Query{
		FilterGroups: []crm.FilterGroup{crm.Equals(crm.Properties{crm.PropCustomerID: customerID})},
		Properties:   properties, Limit: 2,
	})
	if err != nil || len(page.Results) == 0 {
		return nil, Classify(err)
	}
	if len(page.Results) > 1 {
		// Which one is the customer's is a person's call, not a guess.
		msg := fmt.Sprintf("CRM companies %s and %s both carry customer ID %s: merge them in the CRM (or clear the ID on the wrong one), then retry",
			page.Results[0].ID, page.Results[1].ID, customerID)
		return nil, temporal.NewNonRetryableApplicationError(msg, string(api.ErrorTargetRejected), nil,
			Rejection{Target: api.SystemCRM, Status: http.StatusConflict, Code: "DUPLICATE_COMPANY", Message: msg})
	}
	return &page.Results[0], nil
}

// CreateCompanyInput holds a new company's properties.
type CreateCompanyInput struct {
	Integration string
	CustomerID  string
	WorkflowID  string
	Properties  crm.Properties
}

// CreateCompany creates the customer's company and links it. HubSpot has no
// idempotency keys: a company carrying our customer ID (created by an
// attempt whose answer was lost) is taken instead of creating another.
func (a *Companies) CreateCompany(ctx context.Context, in CreateCompanyInput) (crm.Company, error) {
	return heartbeating(ctx, func(ctx context.Context) (crm.Company, error) {
		props := crm.Properties{crm.PropCustomerID: in.CustomerID}
		for k, v := range in.Properties {
			props[k] = v
		}
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		// A poll's batch may be creating this company right now: one creator
		// at a time, and the next one takes what the first made.
		key := companyClaim(in.CustomerID)
		claim, err := a.Store.ClaimPerson(ctx, key, in.WorkflowID, personClaimLife)
		if err != nil {
			return crm.Company{}, Classify(err)
		}
		if claim.Busy {
			return crm.Company{}, temporal.NewApplicationErrorWithOptions("the company of customer "+in.CustomerID+" is being created by a poll; looking again once it is",
				string(api.ErrorBusy), temporal.ApplicationErrorOptions{NextRetryDelay: time.Second, Category: temporal.ApplicationErrorCategoryBenign})
		}
		existing, err := a.search(ctx, in.CustomerID, names)
		if err != nil {
			return crm.Company{}, err
		}
		var c crm.Company
		if existing != nil {
			c = *existing
		} else if c, err = a.Client.CreateCompany(ctx, props); err != nil {
			return c, Classify(err)
		}
		if err := a.Store.RecordPersonContact(ctx, key, in.WorkflowID, c.ID); err != nil {
			return c, Classify(err)
		}
		err = a.Store.SaveLink(ctx, store.Link{Integration: in.Integration, SourceKey: in.CustomerID, TargetSystem: api.SystemCRM,
			TargetID: c.ID, WorkflowID: in.WorkflowID})
		return c, Classify(err)
	})
}

// UpdateCompanyInput holds the properties to write and those to read back.
type UpdateCompanyInput struct {
	CompanyID  string
	Properties crm.Properties
	Read       []string
}

// UpdateCompany writes the properties, then reads the company again, so that
// an edit made in the CRM during the sync is seen, not lost.
// An attempt whose write succeeded but whose read failed (a 429, say) says
// so in its heartbeat details: the next attempt only reads.
func (a *Companies) UpdateCompany(ctx context.Context, in UpdateCompanyInput) (crm.Company, error) {
	return heartbeating(ctx, func(ctx context.Context) (crm.Company, error) {
		if !writtenBefore(ctx) {
			if _, err := a.Client.UpdateCompany(ctx, in.CompanyID, in.Properties); err != nil {
				return crm.Company{}, Classify(err)
			}
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, writtenMarker)
			}
		}
		c, err := a.Client.GetCompany(ctx, in.CompanyID, in.Read, false)
		return c, Classify(err)
	})
}

// writtenMarker is the heartbeat detail of an attempt whose write took effect.
const writtenMarker = "written"

// writtenBefore reports whether an earlier attempt of this activity recorded
// that its write took effect.
func writtenBefore(ctx context.Context) bool {
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return false
	}
	var marker string
	return activity.GetHeartbeatDetails(ctx, &marker) == nil && marker == writtenMarker
}

// ArchiveCompanyInput names the company to archive.
type ArchiveCompanyInput struct {
	CompanyID string
}

// ArchiveCompany archives the company; one archived already is no error.
func (a *Companies) ArchiveCompany(ctx context.Context, in ArchiveCompanyInput) error {
	err := a.Client.ArchiveCompany(ctx, in.CompanyID)
	if isNotFound(err) {
		return nil
	}
	return Classify(err)
}

func isNotFound(err error) bool {
	var e *rest.Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// ArchiveCustomerInput archives a customer at the version it was decided on.
type ArchiveCustomerInput struct {
	CustomerID string
	IfVersion  int64
}

// ArchiveCustomer archives the customer (a person decided so); Stale if it
// changed meanwhile.
func (a *Customers) ArchiveCustomer(ctx context.Context, in ArchiveCustomerInput) (store.Customer, error) {
	c, err := a.Store.SetCustomerArchived(ctx, in.CustomerID, in.IfVersion, true)
	if errors.Is(err, store.ErrStale) {
		return c, temporal.NewNonRetryableApplicationError("customer "+in.CustomerID+" changed in PostgreSQL since it was read", string(api.ErrorStale), nil)
	}
	return c, Classify(err)
}

// TriageCustomersInput pages through the customers changed since a time.
type TriageCustomersInput struct {
	Integration string
	// Fields are the synced fields, compared with the baseline.
	Fields []string
	Since  time.Time
	After  store.Cursor
	Limit  int
}

// TriageCustomersResult says which of a page of changed customers need a
// sync: those whose values differ from what was last synced, or that were
// archived, or never synced. Our own writes equal the baseline, so they
// start nothing.
type TriageCustomersResult struct {
	// Keys need their item; New were never synced (a batch creates their
	// companies); archived customers never synced are left alone.
	Keys, New []string
	Seen      int
	// Next continues after this page; Last is the newest change seen.
	Next store.Cursor
	Last time.Time
	Done bool
}

// TriageCustomers reads one page of changed customers and their baselines.
func (a *Customers) TriageCustomers(ctx context.Context, in TriageCustomersInput) (TriageCustomersResult, error) {
	page, err := a.Store.CustomersChangedSince(ctx, in.Since, in.After, in.Limit)
	if err != nil {
		return TriageCustomersResult{}, Classify(err)
	}
	r := TriageCustomersResult{Seen: len(page), Next: in.After, Done: len(page) < in.Limit}
	if len(page) == 0 {
		return r, nil
	}
	ids := make([]string, len(page))
	for i, c := range page {
		ids[i] = c.ID
	}
	links, err := a.Store.LinksOf(ctx, in.Integration, api.SystemCRM, ids)
	if err != nil {
		return TriageCustomersResult{}, Classify(err)
	}
	for _, c := range page {
		link, linked := links[c.ID]
		switch {
		case !linked && !c.Archived:
			r.New = append(r.New, c.ID)
		case !linked:
		case c.Archived || differs(c.Values(), link.Baseline, in.Fields, func(s store.Settled) string { return s.Source }):
			r.Keys = append(r.Keys, c.ID)
		}
	}
	last := page[len(page)-1]
	r.Next, r.Last = store.Cursor{UpdatedAt: last.UpdatedAt, ID: last.ID}, last.UpdatedAt
	return r, nil
}

// differs reports whether any field's value differs from its side of the
// baseline, or has none.
func differs(values map[string]string, base store.Baseline, fields []string, side func(store.Settled) string) bool {
	for _, f := range fields {
		settled, ok := base[f]
		if !ok || values[f] != side(settled) {
			return true
		}
	}
	return false
}

// CompanyPolls holds the CRM activities of a poll: they run on a queue of
// their own (api.TaskQueueCRMPoll), beside the items' steps, with the same
// CRM client.
type CompanyPolls struct {
	Client *crm.Client
	Store  *store.Store
}

// TriageCompaniesInput pages through the companies changed since a time.
type TriageCompaniesInput struct {
	Integration string
	// Properties maps each synced field to its company property.
	Properties map[string]string
	Since      time.Time
	After      string
	Limit      int
	// Pages is how many pages one call reads (at least 1); Paged how many
	// results the query has paged through before this call.
	Pages, Paged int
}

// TriageCompaniesResult says which customers' companies changed in a way
// that needs a sync.
type TriageCompaniesResult struct {
	// Keys are the customer IDs to sync; Unknown the companies that carry no
	// customer ID (created in the CRM), unless a person decided to ignore them.
	Keys, Unknown []string
	Seen          int
	Next          string
	Last          time.Time
	Done          bool
}

// TriageCompanies searches one page of the companies modified since Since,
// oldest first, and compares each with its customer's baseline.
func (a *CompanyPolls) TriageCompanies(ctx context.Context, in TriageCompaniesInput) (TriageCompaniesResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (TriageCompaniesResult, error) {
		r := TriageCompaniesResult{Next: in.After}
		for page := 0; page < max(in.Pages, 1); page++ {
			if page > 0 && in.Paged+r.Seen+in.Limit > crm.MaxSearchResults {
				break // the query pages no further: the poll queries again
			}
			one, err := a.triagePage(ctx, in, r.Next)
			if err != nil {
				return r, err
			}
			r.Keys, r.Unknown = append(r.Keys, one.Keys...), append(r.Unknown, one.Unknown...)
			r.Seen += one.Seen
			r.Next, r.Done = one.Next, one.Done
			if one.Last.After(r.Last) {
				r.Last = one.Last
			}
			if one.Done {
				break
			}
		}
		return r, nil
	})
}

// triagePage searches one page of changed companies after the cursor.
func (a *CompanyPolls) triagePage(ctx context.Context, in TriageCompaniesInput, after string) (TriageCompaniesResult, error) {
	props := []string{crm.PropCustomerID, crm.PropLastModified}
	for _, p := range in.Properties {
		props = append(props, p)
	}
	page, err := a.Client.SearchCompanies(ctx, crm.Query{
		FilterGroups: []crm.FilterGroup{{Filters: []crm.Filter{{PropertyName: crm.PropLastModified, Operator: "GTE",
			Value: strconv.FormatInt(in.Since.UnixMilli(), 10)}}}},
		Sorts:      []crm.Sort{{PropertyName: crm.PropLastModified, Direction: "ASCENDING"}},
		Properties: props, Limit: in.Limit, After: after,
	})
	if err != nil {
		return TriageCompaniesResult{}, Classify(err)
	}
	r := TriageCompaniesResult{Seen: len(page.Results), Next: page.After, Done: page.After == ""}
	var ids []string
	for _, c := range page.Results {
		if id := c.Properties[crm.PropCustomerID]; id != "" {
			ids = append(ids, id)
		}
	}
	links, err := a.Store.LinksOf(ctx, in.Integration, api.SystemCRM, ids)
	if err != nil {
		return TriageCompaniesResult{}, Classify(err)
	}
	companyIDs := make([]string, len(page.Results))
	for i, c := range page.Results {
		companyIDs[i] = c.ID
	}
	// A company's customer ID can be edited in the CRM: the customer linked
	// to the company is the one whose item syncs it (and puts the ID back).
	linkedTo, err := a.Store.LinksToTargets(ctx, in.Integration, api.SystemCRM, companyIDs)
	if err != nil {
		return TriageCompaniesResult{}, Classify(err)
	}
	for _, c := range page.Results {
		if l, ok := linkedTo[c.ID]; ok && l.SourceKey != c.Properties[crm.PropCustomerID] {
			r.Keys = append(r.Keys, l.SourceKey)
		}
		if t, err := time.Parse(time.RFC3339, c.Properties[crm.PropLastModified]); err == nil && t.After(r.Last) {
			r.Last = t
		}
		id := c.Properties[crm.PropCustomerID]
		if id == "" {
			ignored, err := a.Store.IsIgnored(ctx, in.Integration, api.SystemCRM, c.ID)
			if err != nil {
				return TriageCompaniesResult{}, Classify(err)
			}
			if !ignored {
				r.Unknown = append(r.Unknown, c.ID)
			}
			continue
		}
		values := map[string]string{}
		fields := make([]string, 0, len(in.Properties))
		for field, prop := range in.Properties {
			values[field] = c.Properties[prop]
			fields = append(fields, field)
		}
		link, linked := links[id]
		if !linked || link.TargetID != c.ID || differs(values, link.Baseline, fields, func(s store.Settled) string { return s.Target }) {
			r.Keys = append(r.Keys, id)
		}
	}
	return r, nil
}

// WatermarkInput names a watermark; At is where to move it.
type WatermarkInput struct {
	Name string
	At   time.Time
}

// WatermarkResult is a watermark's time; Set is false when it has none yet.
type WatermarkResult struct {
	At  time.Time
	Set bool
}

// Watermark reads how far a poll has handed changes off.
func (a *Customers) Watermark(ctx context.Context, in WatermarkInput) (WatermarkResult, error) {
	at, ok, err := a.Store.Watermark(ctx, in.Name)
	return WatermarkResult{At: at, Set: ok}, Classify(err)
}

// AdvanceWatermark moves a watermark forward (never back).
func (a *Customers) AdvanceWatermark(ctx context.Context, in WatermarkInput) error {
	return Classify(a.Store.AdvanceWatermark(ctx, in.Name, in.At))
}

// BackfillInput names customers that have no company link yet: never
// synced. At most crm.MaxBatch.
type BackfillInput struct {
	CustomerIDs []string
	// RunID is the poll's run, for the audit trail.
	RunID string
}

// BackfillResult says what became of each customer: a company created and
// linked, or handed to its item (a company carrying its ID exists already,
// to be judged field by field).
type BackfillResult struct {
	Created int
	ToItems []string
}

// Backfill creates the companies of customers never synced, a batch at a
// time: one search (companies an earlier attempt created are taken, not
// made again) and one batch create, then their links, with the baseline,
// and an audit row each, so signals show tells what happened.
func (a *CompanyPolls) Backfill(ctx context.Context, in BackfillInput) (BackfillResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (BackfillResult, error) {
		spec := api.CustomerSyncSpec()
		customers, err := a.Store.GetCustomers(ctx, in.CustomerIDs)
		if err != nil {
			return BackfillResult{}, Classify(err)
		}
		// signalbox_customer_id has unique values: one read finds the
		// companies an earlier attempt (or a person) made for these customers.
		found, err := a.Client.BatchReadCompanies(ctx, in.CustomerIDs, []string{crm.PropCustomerID}, crm.PropCustomerID)
		if err != nil {
			return BackfillResult{}, Classify(err)
		}
		exists := map[string]string{} // customer → its company
		for _, c := range found {
			exists[c.Properties[crm.PropCustomerID]] = c.ID
		}
		var r BackfillResult
		var create []store.Customer
		var props []crm.Properties
		holder := "backfill/" + in.RunID
		var keys []string
		for _, c := range customers {
			if !c.Archived {
				keys = append(keys, companyClaim(c.ID))
			}
		}
		claims, err := a.Store.ClaimPersons(ctx, keys, holder, personClaimLife)
		if err != nil {
			return r, Classify(err)
		}
		records := map[string]string{} // claim → the company made for it
		for _, c := range customers {
			if c.Archived {
				continue
			}
			claim := claims[companyClaim(c.ID)]
			switch {
			case exists[c.ID] != "":
				// It has a company (one this batch made before its answer was
				// lost, say): the item links and judges it, at once.
				records[companyClaim(c.ID)] = exists[c.ID]
				r.ToItems = append(r.ToItems, c.ID)
			case claim.Busy || claim.ContactID != "":
				// An item is making its company, or made it: the item judges it.
				r.ToItems = append(r.ToItems, c.ID)
			default:
				p := crm.Properties{crm.PropCustomerID: c.ID}
				for field, v := range fieldrules.Decide(spec, c.Values(), nil, nil).ToTarget {
					p[spec.TargetName(field)] = v
				}
				create, props = append(create, c), append(props, p)
			}
		}
		var created []crm.Company
		if len(create) > 0 {
			if created, err = a.Client.BatchCreateCompanies(ctx, props); err != nil {
				return r, Classify(err)
			}
		}
		byCustomer := map[string]crm.Company{}
		for _, co := range created {
			byCustomer[co.Properties[crm.PropCustomerID]] = co
		}
		now := time.Now().UTC()
		var events []store.AuditEvent
		var links []store.Link
		for _, c := range create {
			co, ok := byCustomer[c.ID]
			if !ok {
				r.ToItems = append(r.ToItems, c.ID)
				continue
			}
			values := fieldrules.Values{}
			for _, f := range spec.SyncedFields() {
				values[f.Name] = co.Properties[f.TargetName]
			}
			records[companyClaim(c.ID)] = co.ID
			wf := api.ItemID(spec.Name, c.ID)
			links = append(links, store.Link{Integration: spec.Name, SourceKey: c.ID, TargetSystem: api.SystemCRM, TargetID: co.ID, WorkflowID: wf,
				SyncedAt: now, Baseline: fieldrules.Decide(spec, c.Values(), values, nil).Baseline})
			events = append(events, store.AuditEvent{Integration: spec.Name, WorkflowID: wf, RunID: in.RunID, Seq: 1, At: now,
				Actor: api.ActorSystem, Action: "created_in_target", ToStatus: string(api.StatusSynced),
				Reason: "created CRM company " + co.ID + " in a batch (never synced before)", Details: map[string]any{"company": co.ID}})
			r.Created++
		}
		if err := a.Store.RecordPersonContacts(ctx, holder, records); err != nil {
			return r, Classify(err)
		}
		if len(links) > 0 {
			if err := a.Store.SaveLinks(ctx, links...); err != nil {
				return r, Classify(err)
			}
		}
		if len(events) == 0 {
			return r, nil
		}
		return r, Classify(a.Store.InsertAudit(ctx, events...))
	})
}

// companyClaim is the claim on creating a customer's company.
func companyClaim(customerID string) string { return "company-of:" + customerID }

// ReadCompanyInput names a company and the properties to read.
type ReadCompanyInput struct {
	CompanyID  string
	Properties []string
}

// ReadCompany reads a live company; one archived or deleted since is nil.
func (a *Companies) ReadCompany(ctx context.Context, in ReadCompanyInput) (*crm.Company, error) {
	c, err := a.Client.GetCompany(ctx, in.CompanyID, in.Properties, false)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, Classify(err)
	}
	return &c, nil
}

// InsertCustomerInput is a customer to create in PostgreSQL.
type InsertCustomerInput struct {
	Customer store.Customer
}

// InsertCustomer creates the customer; one that exists already with that ID
// is returned as it is (a retried insert).
func (a *Customers) InsertCustomer(ctx context.Context, in InsertCustomerInput) (store.Customer, error) {
	c, err := a.Store.InsertCustomer(ctx, in.Customer)
	switch {
	case errors.Is(err, store.ErrExists):
		return a.Store.GetCustomer(ctx, in.Customer.ID)
	case errors.Is(err, store.ErrInvalidCustomer):
		return c, temporal.NewNonRetryableApplicationError(err.Error(), string(api.ErrorTargetRejected), nil,
			Rejection{Target: "postgres", Status: http.StatusUnprocessableEntity, Message: err.Error()})
	}
	return c, Classify(err)
}

// IgnoreRecordInput remembers a person's decision to leave a record alone.
type IgnoreRecordInput struct {
	Integration, System, RecordID, Actor, Reason string
}

// IgnoreRecord records it, so later polls do not ask again.
func (a *Customers) IgnoreRecord(ctx context.Context, in IgnoreRecordInput) error {
	return Classify(a.Store.IgnoreRecord(ctx, in.Integration, in.System, in.RecordID, in.Actor, in.Reason))
}

// ArchivedCompaniesInput pages through the CRM's archived companies.
type ArchivedCompaniesInput struct {
	Integration string
	After       string
	Limit       int
}

// ArchivedCompaniesResult names the active customers whose company was
// archived in the CRM: their items ask the owner team (ArchivedInCRM).
type ArchivedCompaniesResult struct {
	Keys []string
	Seen int
	Next string
	Done bool
}

// ArchivedCompanies reads one page of archived companies. HubSpot's search
// does not return archived records, so a poll lists them: a company whose
// customer is still active and still linked to it needs its item.
func (a *CompanyPolls) ArchivedCompanies(ctx context.Context, in ArchivedCompaniesInput) (ArchivedCompaniesResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (ArchivedCompaniesResult, error) {
		page, err := a.Client.ListArchivedCompanies(ctx, in.After, in.Limit, []string{crm.PropCustomerID})
		if err != nil {
			return ArchivedCompaniesResult{}, Classify(err)
		}
		r := ArchivedCompaniesResult{Seen: len(page.Results), Next: page.After, Done: page.After == ""}
		company := map[string]string{} // customer → its archived company
		var ids []string
		for _, c := range page.Results {
			if id := c.Properties[crm.PropCustomerID]; id != "" {
				company[id] = c.ID
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return r, nil
		}
		links, err := a.Store.LinksOf(ctx, in.Integration, api.SystemCRM, ids)
		if err != nil {
			return r, Classify(err)
		}
		customers, err := a.Store.GetCustomers(ctx, ids)
		if err != nil {
			return r, Classify(err)
		}
		for _, c := range customers {
			if link, ok := links[c.ID]; ok && !c.Archived && link.TargetID == company[c.ID] {
				r.Keys = append(r.Keys, c.ID)
			}
		}
		return r, nil
	})
}
