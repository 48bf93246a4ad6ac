package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/billing"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
	"github.com/signalbox-dev/signalbox/fieldrules"
	"github.com/signalbox-dev/signalbox/store"
)

// ReconcileStepInput is one step of reconcile run RunID: up to Pages pages,
// from where the run stands in PostgreSQL.
type ReconcileStepInput struct {
	RunID int64
	Pages int
}

// ReconcileStepResult says where the run stands after the step.
type ReconcileStepResult struct {
	Phase    string
	Compared int64
	Done     bool
}

// page compares one page of a run from (phase, after) and says where the
// next begins (NextPhase, To).
type page func(ctx context.Context, run store.ReconcileRun, phase, after string) (store.ReconcilePage, error)

// reconcileSteps runs pages of a run, recording each at once: the run's
// cursor lives in PostgreSQL, so a step retried after a crash, or a run
// started again after it was stopped, goes on from the last page recorded.
// The next page is read while one is recorded, so the target's rate, not
// PostgreSQL, paces a run.
func reconcileSteps(ctx context.Context, st *store.Store, in ReconcileStepInput, next page) (ReconcileStepResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (ReconcileStepResult, error) {
		var r ReconcileStepResult
		run, err := st.GetReconcileRun(ctx, in.RunID)
		if err != nil {
			return r, Classify(err)
		}
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		type read struct {
			p   store.ReconcilePage
			err error
		}
		pages := make(chan read, 1)
		go func() {
			defer close(pages)
			phase, after := run.Phase, run.Cursor
			for i := 0; i < max(in.Pages, 1) && phase != store.PhaseDone; i++ {
				p, err := next(ctx, run, phase, after)
				p.RunID, p.Phase, p.From = run.ID, phase, after
				select {
				case pages <- read{p, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
				phase, after = p.NextPhase, p.To
			}
		}()
		r.Phase = run.Phase
		for rd := range pages {
			if rd.err != nil {
				return r, Classify(rd.err)
			}
			applied, err := st.RecordReconcilePage(ctx, rd.p)
			if err != nil {
				return r, Classify(err)
			}
			if !applied {
				// Another attempt of this step recorded it meanwhile: the
				// next step goes on from where that one got.
				break
			}
			r.Phase, r.Compared = rd.p.NextPhase, r.Compared+rd.p.Compared
		}
		r.Done = r.Phase == store.PhaseDone
		return r, nil
	})
}

// compareLinked compares linked records field by field: targets holds the
// target records found, by ID (a link to one not there is missing), and
// sources the source's values, by source key.
func compareLinked(spec api.Spec, run store.ReconcileRun, links []store.Link, targets map[string]map[string]string,
	sources map[string]fieldrules.Values, accepted map[[2]string]string, handoff func(store.Link, api.ReconcileFinding) store.Handoff) store.ReconcilePage {
	var p store.ReconcilePage
	for _, l := range links {
		p.Compared++
		target, ok := targets[l.TargetID]
		if !ok {
			d := store.Difference{SourceKey: l.SourceKey, TargetID: l.TargetID, Class: api.ClassMissing, Action: store.DiffAsk}
			if accepted[[2]string{l.SourceKey, api.ClassMissing}] == l.TargetID {
				// A person decided about this very record's absence before.
				d.Action = store.DiffAccepted
				p.Differences = append(p.Differences, d)
				continue
			}
			p.Differences = append(p.Differences, d)
			p.Handoffs = append(p.Handoffs, handoff(l, api.ReconcileFinding{RunID: run.ID, Class: api.ClassMissing, Fingerprint: l.TargetID,
				Details: map[string]string{"target record": l.TargetID}}))
			continue
		}
		findings := fieldrules.Classify(spec, sources[l.SourceKey], fieldrules.TargetValues(spec, target), l.Baseline)
		if len(findings) == 0 {
			p.InSync++
			continue
		}
		class, act := "", false
		for _, f := range findings {
			d := store.Difference{SourceKey: l.SourceKey, TargetID: l.TargetID, Class: f.Class, Field: f.Field, Owner: f.Owner,
				Source: &f.Source, Target: &f.Target, Action: f.Action}
			if f.Known {
				d.Baseline = &f.Base.Target
			}
			p.Differences = append(p.Differences, d)
			if f.Action != store.DiffReport {
				act = true
				if class != api.ClassDrifted {
					class = f.Class
				}
			}
		}
		if act {
			p.Handoffs = append(p.Handoffs, handoff(l, api.ReconcileFinding{RunID: run.ID, Class: class}))
		}
	}
	return p
}

// continueOrNext is where the next page begins: after the last key, or at
// the start of phase then when the page was the last.
func continueOrNext(p *store.ReconcilePage, phase, then, lastKey string, full bool) {
	if full {
		p.NextPhase, p.To = phase, lastKey
		return
	}
	p.NextPhase, p.To = then, ""
}

// startItem hands a finding to the item of key: it starts for it, or, when
// it runs already, keeps running as it is.
func startItem(integration, key, why string, f api.ReconcileFinding) store.Handoff {
	input, _ := json.Marshal(api.ItemInput{StartedBy: fmt.Sprintf("reconcile run %d", f.RunID), Reconcile: &f})
	return store.Handoff{Integration: integration, Key: key, Input: input, Why: why}
}

// resyncItem hands a finding to a long-lived item by its resync signal.
func resyncItem(integration, key, why string, runID int64) store.Handoff {
	input, _ := json.Marshal(api.ItemInput{StartedBy: fmt.Sprintf("reconcile run %d", runID)})
	return store.Handoff{Integration: integration, Key: key, Input: input, Signal: api.SignalResync, Why: why}
}

func why(f api.ReconcileFinding) string {
	return fmt.Sprintf("reconcile run %d found it %s", f.RunID, f.Class)
}

// LeadReconcile compares leads' CRM contacts with what was last synced.
type LeadReconcile struct {
	Client *crm.Client
	Store  *store.Store
}

// ReconcileLeads runs a step of a lead → CRM reconcile run. The form is the
// source and never changes after it is sent, so the source's values are the
// link's baseline; contacts are read a batch at a time.
func (a *LeadReconcile) ReconcileLeads(ctx context.Context, in ReconcileStepInput) (ReconcileStepResult, error) {
	spec := api.LeadToCRMSpec()
	return reconcileSteps(ctx, a.Store, in, func(ctx context.Context, run store.ReconcileRun, phase, after string) (store.ReconcilePage, error) {
		links, err := a.Store.LinksAfter(ctx, spec.Name, api.SystemCRM, after, crm.MaxBatch)
		if err != nil || len(links) == 0 {
			return store.ReconcilePage{NextPhase: store.PhaseDone}, err
		}
		contacts, err := a.Client.BatchReadContacts(ctx, targetIDs(links), targetProperties(spec))
		if err != nil {
			return store.ReconcilePage{}, err
		}
		targets, sources := map[string]map[string]string{}, map[string]fieldrules.Values{}
		for _, c := range contacts {
			targets[c.ID] = c.Properties
		}
		for i, l := range links {
			// Its baselines are keyed by the contact's property names.
			links[i].Baseline = fieldrules.ByField(spec, l.Baseline)
			sources[l.SourceKey] = fieldrules.BaselineSource(links[i].Baseline)
		}
		accepted, err := a.Store.AcceptedDifferences(ctx, spec.Name, sourceKeys(links))
		if err != nil {
			return store.ReconcilePage{}, err
		}
		p := compareLinked(spec, run, links, targets, sources, accepted, func(l store.Link, f api.ReconcileFinding) store.Handoff {
			return startItem(spec.Name, l.SourceKey, why(f), f)
		})
		p.Requests = 1
		continueOrNext(&p, phase, store.PhaseDone, links[len(links)-1].SourceKey, len(links) == crm.MaxBatch)
		return p, nil
	})
}

// CustomerReconcile compares customers with their CRM companies, then walks
// the CRM's companies for those signalbox never linked or holds twice.
type CustomerReconcile struct {
	Client *crm.Client
	Store  *store.Store
}

// ReconcileCustomers runs a step of a customer sync reconcile run.
func (a *CustomerReconcile) ReconcileCustomers(ctx context.Context, in ReconcileStepInput) (ReconcileStepResult, error) {
	spec := api.CustomerSyncSpec()
	return reconcileSteps(ctx, a.Store, in, func(ctx context.Context, run store.ReconcileRun, phase, after string) (store.ReconcilePage, error) {
		switch phase {
		case store.PhaseTarget:
			return a.companies(ctx, spec, run, after)
		case store.PhaseSource:
			return a.unlinked(ctx, spec, run, after)
		}
		links, err := a.Store.LinksAfter(ctx, spec.Name, api.SystemCRM, after, crm.MaxBatch)
		if err != nil || len(links) == 0 {
			return store.ReconcilePage{NextPhase: store.PhaseTarget}, err
		}
		companies, err := a.Client.BatchReadCompanies(ctx, targetIDs(links), targetProperties(spec), "")
		if err != nil {
			return store.ReconcilePage{}, err
		}
		customers, err := a.Store.GetCustomers(ctx, sourceKeys(links))
		if err != nil {
			return store.ReconcilePage{}, err
		}
		targets, sources, archived := map[string]map[string]string{}, map[string]fieldrules.Values{}, map[string]bool{}
		for _, c := range companies {
			targets[c.ID] = c.Properties
		}
		for _, c := range customers {
			sources[c.ID], archived[c.ID] = c.Values(), c.Archived
		}
		// Where the next page begins is the page's own, whatever is left out.
		full, last := len(links) == crm.MaxBatch, links[len(links)-1].SourceKey
		var p store.ReconcilePage
		var compare []store.Link
		for _, l := range links {
			_, live := targets[l.TargetID]
			switch {
			case sources[l.SourceKey] == nil:
				// Deleted from PostgreSQL: nothing to compare it with.
			case archived[l.SourceKey] && !live:
				p.Compared++
				p.InSync++ // archived on both sides, as its sync does
			case archived[l.SourceKey]:
				p.Compared++
				yes, no := "true", "false"
				p.Differences = append(p.Differences, store.Difference{SourceKey: l.SourceKey, TargetID: l.TargetID, Class: api.ClassNotSynced,
					Field: "archived", Owner: spec.Source, Source: &yes, Target: &no, Action: store.DiffRepair})
				p.Handoffs = append(p.Handoffs, resyncItem(spec.Name, l.SourceKey, fmt.Sprintf("reconcile run %d found customer %s archived, its company not", run.ID, l.SourceKey), run.ID))
			default:
				compare = append(compare, l)
			}
		}
		p.Add(compareLinked(spec, run, compare, targets, sources, nil, func(l store.Link, f api.ReconcileFinding) store.Handoff {
			return resyncItem(spec.Name, l.SourceKey, why(f), run.ID)
		}))
		p.Requests = 1
		continueOrNext(&p, phase, store.PhaseTarget, last, full)
		return p, nil
	})
}

// companies compares one page of the CRM's live companies with the links:
// a company no link names is present in the target only, unless it carries
// the ID of a customer, whose other company makes it a duplicate.
func (a *CustomerReconcile) companies(ctx context.Context, spec api.Spec, run store.ReconcileRun, after string) (store.ReconcilePage, error) {
	page, err := a.Client.ListCompanies(ctx, false, after, crm.MaxBatch, []string{crm.PropCustomerID, crm.PropCompanyName})
	if err != nil {
		return store.ReconcilePage{}, err
	}
	p := store.ReconcilePage{Requests: 1}
	continueOrNext(&p, store.PhaseTarget, store.PhaseSource, page.After, page.After != "")
	ids := make([]string, len(page.Results))
	for i, c := range page.Results {
		ids[i] = c.ID
	}
	linked, err := a.Store.LinksToTargets(ctx, spec.Name, api.SystemCRM, ids)
	if err != nil {
		return p, err
	}
	var claimed []string
	for _, c := range page.Results {
		if cid := c.Properties[crm.PropCustomerID]; cid != "" && linked[c.ID].SourceKey == "" {
			claimed = append(claimed, cid)
		}
	}
	links, err := a.Store.LinksOf(ctx, spec.Name, api.SystemCRM, claimed)
	if err != nil {
		return p, err
	}
	for _, c := range page.Results {
		if _, ok := linked[c.ID]; ok {
			continue // compared with its customer
		}
		p.Compared++
		id, cid := c.ID, c.Properties[crm.PropCustomerID]
		ignored, err := a.Store.IsIgnored(ctx, spec.Name, api.SystemCRM, id)
		if err != nil {
			return p, err
		}
		if ignored {
			p.InSync++ // a person decided to leave it alone
			continue
		}
		switch l, ok := links[cid]; {
		case cid == "":
			name := c.Properties[crm.PropCompanyName]
			p.Differences = append(p.Differences, store.Difference{TargetID: id, Class: api.ClassTargetOnly, Field: spec.TargetName("name"), Target: &name, Action: store.DiffAsk})
			p.Handoffs = append(p.Handoffs, resyncItem(spec.Name, api.NewCompanyKey(id), fmt.Sprintf("reconcile run %d found company %s in the CRM only", run.ID, id), run.ID))
		case ok && l.TargetID != id:
			p.Differences = append(p.Differences, store.Difference{SourceKey: cid, TargetID: id, Class: api.ClassDuplicate, Field: crm.PropCustomerID,
				Source: &l.TargetID, Target: &id, Action: store.DiffAsk})
			f := api.ReconcileFinding{RunID: run.ID, Class: api.ClassDuplicate, Details: map[string]string{"customer": cid, "linked company": l.TargetID, "company": id}}
			p.Handoffs = append(p.Handoffs, startItem(spec.Name, api.NewCompanyKey(id), why(f), f))
		default:
			// Carries a customer's ID but no link: the customer's sync links it.
			p.Differences = append(p.Differences, store.Difference{SourceKey: cid, TargetID: id, Class: api.ClassNotSynced, Action: store.DiffRepair})
			p.Handoffs = append(p.Handoffs, resyncItem(spec.Name, cid, fmt.Sprintf("reconcile run %d found company %s not linked", run.ID, id), run.ID))
		}
	}
	return p, nil
}

// unlinkedPage bounds a page of customers never synced (PostgreSQL only).
const unlinkedPage = 500

// unlinked reports the active customers no company is linked to: the
// source holds them and the target not yet. Each is handed to its sync.
func (a *CustomerReconcile) unlinked(ctx context.Context, spec api.Spec, run store.ReconcileRun, after string) (store.ReconcilePage, error) {
	ids, err := a.Store.UnlinkedCustomers(ctx, spec.Name, api.SystemCRM, after, unlinkedPage)
	if err != nil || len(ids) == 0 {
		return store.ReconcilePage{NextPhase: store.PhaseDone}, err
	}
	var p store.ReconcilePage
	for _, id := range ids {
		p.Compared++
		p.Differences = append(p.Differences, store.Difference{SourceKey: id, Class: api.ClassNotSynced, Owner: spec.Source, Action: store.DiffRepair})
		p.Handoffs = append(p.Handoffs, resyncItem(spec.Name, id, fmt.Sprintf("reconcile run %d found customer %s without a company", run.ID, id), run.ID))
	}
	continueOrNext(&p, store.PhaseSource, store.PhaseDone, ids[len(ids)-1], len(ids) == unlinkedPage)
	return p, nil
}

// InvoiceReconcile compares billed invoices with Stripe's.
type InvoiceReconcile struct {
	Client *billing.Client
	Store  *store.Store
}

// invoicesPerPage is small: Stripe reads an invoice a request.
const invoicesPerPage = 25

// ReconcileInvoices runs a step of an invoice reconcile run: each billed
// invoice's payment status (Stripe's to own) and total (ours) against Stripe.
func (a *InvoiceReconcile) ReconcileInvoices(ctx context.Context, in ReconcileStepInput) (ReconcileStepResult, error) {
	return reconcileSteps(ctx, a.Store, in, func(ctx context.Context, run store.ReconcileRun, phase, after string) (store.ReconcilePage, error) {
		invoices, err := a.Store.BilledInvoicesAfter(ctx, after, invoicesPerPage)
		if err != nil || len(invoices) == 0 {
			return store.ReconcilePage{NextPhase: store.PhaseDone}, err
		}
		keys := make([]string, len(invoices))
		for i, inv := range invoices {
			keys[i] = inv.ID
		}
		accepted, err := a.Store.AcceptedDifferences(ctx, api.IntegrationInvoiceToBilling, keys)
		if err != nil {
			return store.ReconcilePage{}, err
		}
		var p store.ReconcilePage
		for _, inv := range invoices {
			theirs, err := a.Client.GetInvoice(ctx, inv.StripeInvoiceID)
			p.Requests++
			var re *rest.Error
			if errors.As(err, &re) && re.StatusCode == 404 {
				p.Compared++
				a.differ(&p, run, inv, accepted, api.ClassMissing, "", nil, nil, inv.StripeInvoiceID)
				continue
			}
			if err != nil {
				return p, err
			}
			p.Compared++
			before := len(p.Differences)
			if theirs.Total != inv.Total {
				ours, their := strconv.FormatInt(inv.Total, 10), strconv.FormatInt(theirs.Total, 10)
				a.differ(&p, run, inv, accepted, api.ClassAmountDiffers, "total", &ours, &their, ours+"/"+their)
			}
			if theirs.Status != inv.StripeStatus && theirs.Status != "draft" {
				status := theirs.Status
				p.Differences = append(p.Differences, store.Difference{SourceKey: inv.ID, TargetID: inv.StripeInvoiceID, Class: api.ClassStatusDiffers,
					Field: "stripe_status", Owner: api.SystemStripe, Source: &inv.StripeStatus, Target: &status, Action: store.DiffRepair})
				event, _ := json.Marshal(api.PaymentEvent{ID: api.ReconcilePaymentEventID(fmt.Sprint(run.ID), inv.ID), Type: api.PaymentEventReconcile, Created: theirs.StatusAt,
					StripeInvoiceID: inv.StripeInvoiceID, InvoiceID: inv.ID, Status: status, AmountDue: theirs.AmountDue, AmountPaid: theirs.AmountPaid, Currency: theirs.Currency})
				input, _ := json.Marshal(api.ItemInput{StartedBy: fmt.Sprintf("reconcile run %d", run.ID)})
				p.Handoffs = append(p.Handoffs, store.Handoff{Integration: api.IntegrationInvoicePayments, Key: inv.StripeInvoiceID, Input: input,
					Signal: api.SignalPaymentEvent, Arg: event, Why: fmt.Sprintf("reconcile run %d found invoice %s %s in Stripe, %q in PostgreSQL", run.ID, inv.ID, status, inv.StripeStatus)})
			}
			if len(p.Differences) == before {
				p.InSync++
			}
		}
		continueOrNext(&p, phase, store.PhaseDone, invoices[len(invoices)-1].ID, len(invoices) == invoicesPerPage)
		return p, nil
	})
}

// differ records a difference of an invoice that no rule repairs: its item
// raises it for finance, unless finance accepted these very values before.
func (a *InvoiceReconcile) differ(p *store.ReconcilePage, run store.ReconcileRun, inv store.BilledInvoice, accepted map[[2]string]string,
	class, field string, ours, theirs *string, fingerprint string) {
	d := store.Difference{SourceKey: inv.ID, TargetID: inv.StripeInvoiceID, Class: class, Field: field, Owner: "postgres", Source: ours, Target: theirs, Action: store.DiffAsk}
	if accepted[[2]string{inv.ID, class}] == fingerprint {
		d.Action = store.DiffAccepted
		p.Differences = append(p.Differences, d)
		return
	}
	p.Differences = append(p.Differences, d)
	details := map[string]string{"stripe invoice": inv.StripeInvoiceID}
	if ours != nil && theirs != nil {
		details["total in PostgreSQL"], details["total in Stripe"] = *ours, *theirs
	}
	f := api.ReconcileFinding{RunID: run.ID, Class: class, Fingerprint: fingerprint, Details: details}
	p.Handoffs = append(p.Handoffs, startItem(api.IntegrationInvoiceToBilling, inv.ID, why(f), f))
}

func targetIDs(links []store.Link) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.TargetID
	}
	return out
}

func sourceKeys(links []store.Link) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.SourceKey
	}
	return out
}

// targetProperties are the target's names of spec's synced fields.
func targetProperties(spec api.Spec) []string {
	var out []string
	for _, f := range spec.SyncedFields() {
		out = append(out, f.TargetName)
	}
	return out
}

// Reconciles opens, closes and hands off reconcile runs.
type Reconciles struct {
	Store  *store.Store
	Client client.Client
}

// BeginReconcileInput opens (or resumes) a run.
type BeginReconcileInput struct {
	Integration, WorkflowID, StartedBy string
}

// BeginReconcileResult is the run, and whether it resumes one stopped midway.
type BeginReconcileResult struct {
	Run     store.ReconcileRun
	Resumed bool
}

// BeginReconcile opens a run, or returns the one still open. A run another
// workflow still works is not worked twice (the nightly schedule's runs have
// IDs of their own): the call fails for good, naming that workflow; one
// whose workflow stopped is taken over.
func (a *Reconciles) BeginReconcile(ctx context.Context, in BeginReconcileInput) (BeginReconcileResult, error) {
	run, resumed, err := a.Store.BeginReconcile(ctx, in.Integration, in.WorkflowID, in.StartedBy)
	if err != nil || run.WorkflowID == in.WorkflowID {
		return BeginReconcileResult{Run: run, Resumed: resumed}, Classify(err)
	}
	if running, err := workflowRuns(ctx, a.Client, run.WorkflowID); err != nil || running {
		if err != nil {
			return BeginReconcileResult{}, err
		}
		return BeginReconcileResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"reconcile run %d of %s is being worked by workflow %s: follow it (signals reconcile %s --now follows it), or wait for it to end",
			run.ID, in.Integration, run.WorkflowID, in.Integration), string(api.ErrorBusy), nil)
	}
	took, err := a.Store.TakeOverReconcile(ctx, run.ID, run.WorkflowID, in.WorkflowID)
	if err != nil {
		return BeginReconcileResult{}, Classify(err)
	}
	if !took {
		return BeginReconcileResult{}, fmt.Errorf("reconcile run %d of %s was taken over by another workflow meanwhile", run.ID, in.Integration)
	}
	run.WorkflowID = in.WorkflowID
	return BeginReconcileResult{Run: run, Resumed: resumed}, nil
}

// workflowRuns reports whether the latest run of workflow id is running.
func workflowRuns(ctx context.Context, c client.Client, id string) (bool, error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up workflow %s: %w", id, err)
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// FinishReconcile closes a run.
func (a *Reconciles) FinishReconcile(ctx context.Context, runID int64) (store.ReconcileRun, error) {
	run, err := a.Store.FinishReconcile(ctx, runID)
	return run, Classify(err)
}

// HandOffResult counts the handoffs made, and says whether more wait.
type HandOffResult struct {
	Handed int
	More   bool
}

// handOffBatch bounds one HandOff call.
const handOffBatch = 50

// HandOff hands a run's findings to their items, each once: it starts the
// item (or signals it, when it runs) and audits the repair with the run's ID.
func (a *Reconciles) HandOff(ctx context.Context, runID int64) (HandOffResult, error) {
	var r HandOffResult
	pending, err := a.Store.PendingHandoffs(ctx, runID, handOffBatch)
	if err != nil {
		return r, Classify(err)
	}
	for _, h := range pending {
		spec, err := api.SpecByName(h.Integration)
		if err != nil {
			return r, err
		}
		opts := api.StartOptions(spec, h.Key)
		input := json.RawMessage(h.Input)
		action, reason := "repair", h.Why
		if h.Signal != "" {
			var arg any
			if len(h.Arg) > 0 {
				arg = json.RawMessage(h.Arg)
			}
			_, err = a.Client.SignalWithStartWorkflow(ctx, opts.ID, h.Signal, arg, opts, spec.WorkflowType, input)
		} else {
			// An item that runs already is left to finish what it does: it
			// takes no finding, and the next run finds the record again if it
			// still differs.
			opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL
			_, err = a.Client.ExecuteWorkflow(ctx, opts, spec.WorkflowType, input)
			var running *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &running) {
				action, reason, err = "repair_skipped", h.Why+"; not handed: the item is running (the next run finds it again if it still differs)", nil
			}
		}
		if err != nil {
			return r, fmt.Errorf("hand %s to its item: %w", opts.ID, err)
		}
		ev := store.AuditEvent{Integration: spec.Name, WorkflowID: opts.ID, RunID: fmt.Sprintf("reconcile-%d", runID), At: time.Now().UTC(),
			Actor: api.ActorSystem, Action: action, Reason: reason, Details: map[string]any{"reconcileRun": runID}}
		if err := a.Store.InsertAudit(ctx, ev); err != nil {
			return r, Classify(err)
		}
		if err := a.Store.MarkHandedOff(ctx, runID, h); err != nil {
			return r, Classify(err)
		}
		r.Handed++
	}
	r.More = len(pending) == handOffBatch
	return r, nil
}
