package api

import (
	"regexp"
	"time"
)

// IntegrationLeadToCRM is the name of the web-form lead → CRM integration.
const IntegrationLeadToCRM = "lead-to-crm"

// LeadToCRMSpec declares the lead → CRM integration.
func LeadToCRMSpec() Spec {
	return Spec{
		Name:         IntegrationLeadToCRM,
		CheckValue:   CheckLeadField,
		WorkflowType: "LeadToCRM",
		Title:        "Web-form lead → CRM contact",
		Description:  "Each web-form submission becomes one CRM contact (found by email, else created), and the sales channel hears about it.",
		Owner:        "sales",
		Source:       "web-form",
		Target:       "crm",
		Fields: []Field{
			{Name: "email", TargetName: "email", Owner: "web-form", Rule: RuleAsk, Direction: DirToTarget, Amendable: true, Required: true, Description: "lower-cased; finds the existing contact"},
			{Name: "firstName", TargetName: "firstname", Owner: "web-form", Rule: RuleOwnerWins, Direction: DirToTarget, Amendable: true, Required: true, Description: "the person knows their own name"},
			{Name: "lastName", TargetName: "lastname", Owner: "web-form", Rule: RuleOwnerWins, Direction: DirToTarget, Amendable: true, Required: true, Description: "the person knows their own name"},
			{Name: "company", TargetName: "company", Owner: "web-form", Rule: RuleAsk, Direction: DirToTarget, Amendable: true},
			{Name: "phone", TargetName: "phone", Owner: "web-form", Rule: RuleAsk, Direction: DirToTarget, Amendable: true},
			{Name: "jobTitle", TargetName: "jobtitle", Owner: "web-form", Rule: RuleAsk, Direction: DirToTarget, Amendable: true},
			{Name: "source", TargetName: "lead_source", Owner: "web-form", Rule: RuleOwnerWins, Direction: DirToTarget, Amendable: true, Description: "the form the lead came from; a custom contact property to create in HubSpot"},
			{Name: "consent", Owner: "web-form", Required: true, Description: "gate only; not sent to the CRM"},
			{Name: "country, companySize", Owner: "web-form", Description: "route the lead to a sales team (SIGNALBOX_LEAD_ROUTES); not sent to the CRM"},
			{Name: "contact ID", TargetName: "hs_object_id", Owner: "crm", Description: "kept in external_links"},
			{Name: "lifecycle stage", TargetName: "lifecyclestage", Owner: "crm", Description: "never written by signalbox"},
			{Name: "lead status", TargetName: "hs_lead_status", Owner: "crm", Description: "never written by signalbox"},
		},
		Reconciles: "every linked contact against the lead as last synced: drifted fields go back through the lead's sync, a deleted contact waits for sales (MissingInTarget)",
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
			{Kind: RoutingUnclear, Status: StatusBlocked, When: "no rule of SIGNALBOX_LEAD_ROUTES, or the rules of more than one team, take the lead",
				Decisions: []Action{ActionApprove, ActionReject}, Deciders: "sales-ops", SLA: 4 * time.Hour},
			{Kind: MissingInTarget, Status: StatusBlocked, When: "reconciliation found the lead's CRM contact deleted outside signalbox",
				Decisions: []Action{ActionApprove, ActionReject, ActionResolve}, SLA: 24 * time.Hour},
		}, TechnicalExceptions(time.Hour)...),
	}
}

var leadPhonePattern = regexp.MustCompile(`^\+?[0-9][0-9 ().-]{4,29}$`)

// CheckLeadField adds the problem of one text field of a lead (email,
// firstName, lastName, company, jobTitle, source, phone); other fields it
// leaves alone. Lead.Validate checks these fields with it.
func CheckLeadField(errs *FieldErrors, field, v string) {
	switch field {
	case "email":
		CheckEmail(errs, field, v)
	case "firstName", "lastName":
		CheckText(errs, field, v, 100, true)
	case "company":
		CheckText(errs, field, v, 200, false)
	case "jobTitle", "source":
		CheckText(errs, field, v, 100, false)
	case "phone":
		if v != "" && !leadPhonePattern.MatchString(v) {
			errs.Add(field, "must be digits, spaces and + ( ) . - only, 5 to 30 characters")
		}
	}
}
