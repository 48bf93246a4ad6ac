package workflows

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/connectors/crm"
)

// IntegrationLeadToCRM is the name of the web-form lead → CRM integration.
const IntegrationLeadToCRM = "lead-to-crm"

// Lead is a web-form submission: the contract of LeadToCRM.
type Lead struct {
	// ID is the form's submission ID; it is the item's source key unless the
	// intake was given an Idempotency-Key.
	ID        string `json:"id,omitempty"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Company   string `json:"company,omitempty"`
	Phone     string `json:"phone,omitempty"`
	JobTitle  string `json:"jobTitle,omitempty"`
	// Consent is the person's consent to be contacted; without it the lead waits
	// for a person to approve (with evidence) or reject it.
	Consent bool `json:"consent"`
	// Source names the form.
	Source string `json:"source,omitempty"`
}

// LeadInput starts a LeadToCRM item.
type LeadInput struct {
	ItemInput
	Lead Lead `json:"lead"`
}

var phonePattern = regexp.MustCompile(`^\+?[0-9][0-9 ().-]{4,29}$`)

// Validate returns every field error at once.
func (l Lead) Validate() FieldErrors {
	var errs FieldErrors
	if l.ID != "" {
		if err := CheckSourceKey(l.ID); err != nil {
			errs.add("id", "%v", err)
		}
	}
	checkEmail(&errs, "email", l.Email)
	checkText(&errs, "firstName", l.FirstName, 100, true)
	checkText(&errs, "lastName", l.LastName, 100, true)
	checkText(&errs, "company", l.Company, 200, false)
	checkText(&errs, "jobTitle", l.JobTitle, 100, false)
	checkText(&errs, "source", l.Source, 100, false)
	if l.Phone != "" && !phonePattern.MatchString(l.Phone) {
		errs.add("phone", "must be digits, spaces and + ( ) . - only, 5 to 30 characters")
	}
	return errs
}

// amendableLeadFields are the fields an operator may change with amend. Consent
// is not among them: missing consent is decided, with evidence, by approve.
var amendableLeadFields = []string{"email", "firstName", "lastName", "company", "phone", "jobTitle"}

// With returns the lead with the fields in set changed, or the field errors of
// the result.
func (l Lead) With(set map[string]string) (Lead, error) {
	var errs FieldErrors
	for field, v := range set {
		switch field {
		case "email":
			l.Email = v
		case "firstName":
			l.FirstName = v
		case "lastName":
			l.LastName = v
		case "company":
			l.Company = v
		case "phone":
			l.Phone = v
		case "jobTitle":
			l.JobTitle = v
		default:
			errs.add(field, "cannot be amended (amendable: %s)", strings.Join(amendableLeadFields, ", "))
		}
	}
	return amended(l, errs, Lead.Validate)
}

// leadOwnedProperties are the CRM properties whose values the web form owns.
var leadOwnedProperties = []string{crm.PropEmail, crm.PropFirstName, crm.PropLastName, crm.PropCompany, crm.PropPhone, crm.PropJobTitle}

// Properties maps the lead to CRM contact properties. Every form-owned property
// is written, empty ones too: the form is their source of truth.
func (l Lead) Properties() crm.Properties {
	return crm.Properties{
		crm.PropEmail:     strings.ToLower(strings.TrimSpace(l.Email)),
		crm.PropFirstName: strings.TrimSpace(l.FirstName),
		crm.PropLastName:  strings.TrimSpace(l.LastName),
		crm.PropCompany:   strings.TrimSpace(l.Company),
		crm.PropPhone:     strings.TrimSpace(l.Phone),
		crm.PropJobTitle:  strings.TrimSpace(l.JobTitle),
	}
}

// LeadToCRMSpec declares the lead → CRM integration.
func LeadToCRMSpec() Spec {
	return Spec{
		Name:         IntegrationLeadToCRM,
		WorkflowType: "LeadToCRM",
		Workflow:     LeadToCRM,
		Title:        "Web-form lead → CRM contact",
		Description:  "Each web-form submission becomes one CRM contact (found by email, else created), and the sales channel hears about it.",
		Owner:        "sales",
		Source:       "web-form",
		Target:       "crm",
		Fields: []Field{
			{Name: "email", TargetName: crm.PropEmail, Owner: "web-form", Required: true, Description: "lower-cased; finds the existing contact"},
			{Name: "firstName", TargetName: crm.PropFirstName, Owner: "web-form", Required: true},
			{Name: "lastName", TargetName: crm.PropLastName, Owner: "web-form", Required: true},
			{Name: "company", TargetName: crm.PropCompany, Owner: "web-form"},
			{Name: "phone", TargetName: crm.PropPhone, Owner: "web-form"},
			{Name: "jobTitle", TargetName: crm.PropJobTitle, Owner: "web-form"},
			{Name: "consent", Owner: "web-form", Required: true, Description: "gate only; not sent to the CRM"},
			{Name: "contact ID", TargetName: "hs_object_id", Owner: "crm", Description: "kept in external_links"},
			{Name: "lifecycle stage", TargetName: "lifecyclestage", Owner: "crm", Description: "never written by signalbox"},
			{Name: "lead status", TargetName: "hs_lead_status", Owner: "crm", Description: "never written by signalbox"},
		},
		Exceptions: append([]ExceptionSpec{
			{Kind: ValidationFailed, Status: StatusBlocked, When: "the lead breaks its contract (missing or malformed fields)",
				Decisions: []Action{ActionAmend, ActionReject, ActionCancel}, SLA: 4 * time.Hour},
			{Kind: ConsentMissing, Status: StatusBlocked, When: "the lead did not consent to be contacted",
				Decisions: []Action{ActionApprove, ActionReject}, SLA: 24 * time.Hour,
				Deadline: 14 * 24 * time.Hour, AtDeadline: ActionReject},
			{Kind: DuplicateSuspected, Status: StatusBlocked, When: "the CRM holds a contact with the same name and company under another email",
				Decisions: []Action{ActionApprove, ActionReject},
				Choices: []Choice{
					{Name: "merge", Description: "link the lead to the existing contact and add its email there"},
					{Name: "create", Description: "create a new contact: they are different people"},
				},
				SLA: 4 * time.Hour},
		}, technicalExceptions(time.Hour)...),
	}
}

// LeadToCRM syncs one web-form lead into the CRM.
func LeadToCRM(ctx workflow.Context, in LeadInput) (Result, error) {
	s := &leadSync{lead: in.Lead}
	return runItem(ctx, LeadToCRMSpec(), in.ItemInput, hooks{amend: s.amend}, s.run)
}

// leadSync is the state of one LeadToCRM run.
type leadSync struct {
	lead Lead
}

func (s *leadSync) amend(set map[string]string, apply bool) error {
	next, err := s.lead.With(set)
	if err != nil {
		return err
	}
	if apply {
		s.lead = next
	}
	return nil
}

func (s *leadSync) run(ctx workflow.Context, it *item) error {
	for errs := s.lead.Validate(); len(errs) > 0; errs = s.lead.Validate() {
		if _, err := it.Raise(ctx, ValidationFailed, "the lead breaks its contract: "+errs.Error(), errs.Details()); err != nil {
			return err
		}
	}
	if !s.lead.Consent {
		if _, err := it.Raise(ctx, ConsentMissing, "the lead did not consent to be contacted; approve only with evidence of consent in the reason", nil); err != nil {
			return err
		}
	}

	var found activities.FindContactResult
	err := it.Do(ctx, "find contact", func(ctx workflow.Context) error {
		in := activities.FindContactInput{
			Integration: IntegrationLeadToCRM, SourceKey: it.state.SourceKey, Email: s.lead.Properties()[crm.PropEmail],
			FirstName: strings.TrimSpace(s.lead.FirstName), LastName: strings.TrimSpace(s.lead.LastName), Company: strings.TrimSpace(s.lead.Company),
			Properties: append(slices.Clone(leadOwnedProperties), crm.PropAdditionalEmails),
		}
		return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueCRM, "Find the contact by link, email, or name and company"),
			crmActivities.FindContact, in).Get(ctx, &found)
	})
	if err != nil {
		return err
	}

	target := found.Contact
	// merged: the lead lives in a contact whose primary email is another's, its
	// own address filed among the additional ones (decided earlier, or now).
	merged := target != nil && found.Via == "link" && !strings.EqualFold(target.Properties[crm.PropEmail], s.lead.Properties()[crm.PropEmail]) &&
		crm.AddEmail(target.Properties[crm.PropAdditionalEmails], s.lead.Properties()[crm.PropEmail]) == target.Properties[crm.PropAdditionalEmails]
	switch {
	case target != nil && found.SyncedHash != "" && hashFields(target.Properties, leadOwnedProperties) != found.SyncedHash:
		details := s.differences(target.Properties)
		details["contact"] = target.ID
		if _, err := it.Raise(ctx, Conflict, fmt.Sprintf("CRM contact %s was edited since signalbox last wrote it; approve overwrites the CRM with the form's values", target.ID), details); err != nil {
			return err
		}
	case target == nil && len(found.Similar) > 0:
		similar := found.Similar[0]
		d, err := it.Raise(ctx, DuplicateSuspected,
			fmt.Sprintf("CRM contact %s has the same name and company under another email", similar.ID),
			map[string]string{"contact": similar.ID, "its email": maskEmail(similar.Properties[crm.PropEmail]), "lead email": maskEmail(s.lead.Email)})
		if err != nil {
			return err
		}
		if d.Choice == "merge" {
			target, merged = &similar, true
		}
	}

	contactID := ""
	if target != nil {
		contactID = target.ID
	}
	props, hash := s.desired(target, merged)
	upToDate := target != nil && found.Via == "link" && found.SyncedHash == hash && sameValues(target.Properties, props)
	if !upToDate {
		err = it.Do(ctx, "write contact", func(ctx workflow.Context) error {
			// Recomputed on every run of the step: an amend may have changed the lead.
			props, hash = s.desired(target, merged)
			merge := ""
			if merged {
				merge = s.lead.Properties()[crm.PropEmail]
			}
			id, err := s.write(ctx, it, contactID, props, hash, merge)
			if err == nil {
				contactID = id
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	it.state.ExternalIDs[activities.TargetCRM] = contactID

	text := fmt.Sprintf("Lead %s synced to CRM contact %s.", it.state.SourceKey, contactID)
	if upToDate {
		text = fmt.Sprintf("Lead %s re-synced: CRM contact %s was already up to date.", it.state.SourceKey, contactID)
	}
	return it.Do(ctx, "notify", func(ctx workflow.Context) error {
		in := activities.NotifyInput{Team: it.spec.Owner, WorkflowID: it.state.WorkflowID, Text: text,
			// The same content notifies once, however often the step or the item re-runs.
			Key: it.state.WorkflowID + "/synced/" + hash[:16]}
		return workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueChat, "Tell #"+it.spec.Owner+" the lead is synced"),
			chatActivities.Notify, in).Get(ctx, nil)
	})
}

// write creates the contact (when id is empty) or updates it, and returns its
// ID. A create answered "already exists" becomes an update of that contact.
// merge, when set, is the lead's email to add to a merged contact.
func (s *leadSync) write(ctx workflow.Context, it *item, id string, props crm.Properties, hash, merge string) (string, error) {
	if id == "" {
		var created activities.CreateContactResult
		in := activities.CreateContactInput{Integration: IntegrationLeadToCRM, SourceKey: it.state.SourceKey,
			WorkflowID: it.state.WorkflowID, Properties: props, Hash: hash}
		err := workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueCRM, "Create the CRM contact"), crmActivities.CreateContact, in).Get(ctx, &created)
		if err != nil || !created.Existed {
			return created.ContactID, err
		}
		id = created.ContactID
	}
	in := activities.UpdateContactInput{Integration: IntegrationLeadToCRM, SourceKey: it.state.SourceKey,
		WorkflowID: it.state.WorkflowID, ContactID: id, Properties: props, Hash: hash}
	// Items that began before merges took a lock keep updating as they did.
	if merge != "" && workflow.GetVersion(ctx, "merge-under-lock", workflow.DefaultVersion, 1) == 1 {
		// Adding to the contact's additional emails is a read-modify-write that
		// other items may race: the activity does it under a lock.
		in.AddEmail = merge
		return id, workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueCRM, "Merge into CRM contact "+id), crmActivities.MergeContact, in).Get(ctx, nil)
	}
	return id, workflow.ExecuteActivity(it.targetCtx(ctx, TaskQueueCRM, "Update CRM contact "+id), crmActivities.UpdateContact, in).Get(ctx, nil)
}

// desired is what the contact should hold, and its hash. A merged lead keeps
// the contact's primary email and files its own among the additional ones.
func (s *leadSync) desired(target *crm.Contact, merged bool) (crm.Properties, string) {
	props := s.lead.Properties()
	if merged {
		props[crm.PropAdditionalEmails] = crm.AddEmail(target.Properties[crm.PropAdditionalEmails], props[crm.PropEmail])
		props[crm.PropEmail] = target.Properties[crm.PropEmail]
	}
	return props, hashFields(props, leadOwnedProperties)
}

// differences lists the form-owned fields whose CRM value differs from the form's.
func (s *leadSync) differences(target crm.Properties) map[string]string {
	out := map[string]string{}
	source := s.lead.Properties()
	for _, p := range leadOwnedProperties {
		if target[p] != source[p] {
			out[p] = fmt.Sprintf("CRM %q, form %q", target[p], source[p])
		}
	}
	return out
}

func sameValues(target, want crm.Properties) bool {
	for k, v := range want {
		if target[k] != v {
			return false
		}
	}
	return true
}

// maskEmail shows enough of an address to tell two apart, not to read it.
func maskEmail(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		return "***"
	}
	r, _ := utf8.DecodeRuneInString(local)
	return string(r) + "***@" + domain
}
