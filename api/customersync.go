package api

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// IntegrationCustomerSync is the name of the customer ↔ CRM company integration.
const IntegrationCustomerSync = "customer-sync"

// Customer sync's own exception kinds.
const (
	// NewInCRM: a company was created in the CRM that no customer matches.
	NewInCRM ExceptionKind = "NewInCRM"
	// ArchivedInCRM: the company of a customer was archived or deleted in the CRM.
	ArchivedInCRM ExceptionKind = "ArchivedInCRM"
)

// Choices of customer sync's exceptions.
const (
	// A conflict: whose values win.
	ChoiceKeepPostgres = "postgres"
	ChoiceKeepCRM      = "crm"
	// A company archived in the CRM: archive the customer too, or restore the company.
	ChoiceArchiveCustomer = "archive-customer"
	ChoiceRestoreCompany  = "restore-company"
)

// CustomerSyncSpec declares the customer sync: one customer record, kept
// consistent between PostgreSQL and the CRM company, field by field.
func CustomerSyncSpec() Spec {
	const pg, crm = "postgres", SystemCRM
	toCRM := func(name, prop string, rule string, required bool, about string) Field {
		return Field{Name: name, TargetName: prop, Owner: pg, Direction: DirToTarget, Rule: rule, Required: required, Amendable: true, Description: about}
	}
	toPG := func(name, prop, about string) Field {
		return Field{Name: name, TargetName: prop, Owner: crm, Direction: DirToSource, Rule: RuleOwnerWins, Amendable: true, Description: about}
	}
	both := func(name, prop, about string) Field {
		return Field{Name: name, TargetName: prop, Owner: OwnerBoth, Direction: DirTwoWay, Rule: RuleLatestWins, Amendable: true, Description: about}
	}
	// Its own Conflict; and a refused write is retried or resolved, not
	// amended (amend answers a Conflict).
	technical := WithoutKinds(WithoutDecision(TechnicalExceptions(time.Hour), ActionAmend), Conflict)
	return Spec{
		Name:         IntegrationCustomerSync,
		CheckValue:   checkCustomerAmendment,
		WorkflowType: "CustomerSync",
		Title:        "Customer ↔ CRM company",
		Description: "Each customer in PostgreSQL is kept consistent with one CRM company, in both directions, field by field: " +
			"each field's owner and rule decide an edit on either side, judged against the values last synced.",
		Owner:   "finance",
		Source:  pg,
		Target:  crm,
		Editors: map[string]string{pg: "finance", crm: "sales"},
		Fields: []Field{
			{Name: "id", TargetName: "signalbox_customer_id", Owner: pg, Required: true, Description: "written when the company is created; finds it (a custom company property)"},
			toCRM("legalName", "name", RuleAsk, true, "the registered name, as invoices need it"),
			toCRM("domain", "domain", RuleAsk, false, ""),
			toCRM("billingEmail", "billing_email", RuleAsk, false, "a custom company property"),
			toCRM("paymentTerms", "payment_terms", RuleOwnerWins, false, "finance's terms; a custom company property"),
			toCRM("creditLimit", "credit_limit", RuleOwnerWins, false, "whole currency units; a custom company property"),
			toPG("industry", "industry", "sales classifies accounts"),
			toPG("lifecycleStage", "lifecyclestage", ""),
			toPG("accountOwner", "hubspot_owner_id", "the sales rep (a HubSpot owner ID)"),
			both("phone", "phone", ""),
			both("addressLine1", "address", ""),
			both("city", "city", ""),
			both("postalCode", "zip", ""),
			both("country", "country", "ISO 3166 alpha-2"),
			{Name: "archived", Owner: pg, Description: "archiving the customer archives the company"},
		},
		Reconciles: "every linked customer against its company, field by field, then every CRM company (one no customer is linked to is NewInCRM, a second one carrying a customer's ID is DuplicateInTarget), then the customers never synced",
		Exceptions: append([]ExceptionSpec{
			{Kind: ValidationFailed, Status: StatusBlocked, When: "the customer is missing in PostgreSQL",
				Decisions: []Action{ActionRetry, ActionCancel}, SLA: 4 * time.Hour},
			{Kind: Conflict, Status: StatusBlocked, When: "a field whose rule is ask was edited in the CRM, or a two-way field was edited on both sides since the last sync",
				Decisions: []Action{ActionApprove, ActionAmend, ActionCancel},
				Choices: []Choice{
					{Name: ChoiceKeepPostgres, Description: "PostgreSQL's values win: written to the CRM"},
					{Name: ChoiceKeepCRM, Description: "the CRM's values win: written to PostgreSQL"},
				},
				SLA: 8 * time.Hour},
			{Kind: NewInCRM, Status: StatusBlocked, When: "a company was created in the CRM that carries no customer ID",
				Decisions: []Action{ActionApprove, ActionAmend, ActionReject}, SLA: 24 * time.Hour},
			{Kind: DuplicateInTarget, Status: StatusBlocked, When: "reconciliation found a second CRM company carrying a customer's ID; approve archives it in the CRM (merge what it holds first), reject keeps both (not asked again), resolve says where it was merged",
				Decisions: []Action{ActionApprove, ActionReject, ActionResolve}, SLA: 24 * time.Hour},
			{Kind: ArchivedInCRM, Status: StatusBlocked, When: "the company of an active customer was archived or deleted in the CRM",
				Decisions: []Action{ActionApprove, ActionCancel},
				Choices: []Choice{
					{Name: ChoiceArchiveCustomer, Description: "archive the customer in PostgreSQL too"},
					{Name: ChoiceRestoreCompany, Description: "create the company again and link it"},
				},
				SLA: 24 * time.Hour},
		}, technical...),
	}
}

// newCompanyPrefix keys the item of a company found in the CRM with no
// customer: customer-sync:crm-company-<company ID>.
const newCompanyPrefix = "crm-company-"

// NewCompanyKey is the item key of a company new in the CRM.
func NewCompanyKey(companyID string) string { return newCompanyPrefix + companyID }

// NewCompanyID is the company of a NewCompanyKey.
func NewCompanyID(key string) (string, bool) {
	id, ok := strings.CutPrefix(key, newCompanyPrefix)
	return id, ok && id != ""
}

// ImportedCustomerID is the ID a company new in the CRM is imported as.
func ImportedCustomerID(companyID string) string { return "CRM-" + companyID }

var customerCountryPattern = regexp.MustCompile(`^([A-Z]{2})?$`)

// CheckCustomerValue is what is wrong with value for the customer field
// name, or "": text PostgreSQL cannot store (invalid UTF-8, NUL), a credit
// limit that is not a whole number ≥ 0 in decimal digits, a country that is
// not a capitalised two-letter code or empty. store.Customer.With checks
// every value with it.
func CheckCustomerValue(name, value string) string {
	if !utf8.ValidString(value) || strings.ContainsRune(value, 0) {
		return fmt.Sprintf("%q is not valid text (invalid UTF-8 or a NUL character)", value)
	}
	switch name {
	case "creditLimit":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || strings.TrimLeft(value, "0123456789") != "" {
			return fmt.Sprintf("must be a whole number ≥ 0 in decimal digits, not %q", value)
		}
	case "country":
		if !customerCountryPattern.MatchString(value) {
			return fmt.Sprintf("must be an ISO 3166-1 alpha-2 code in capitals (like \"DE\") or empty, not %q", value)
		}
	}
	return ""
}

// checkCustomerAmendment checks an amended customer field with
// CheckCustomerValue.
func checkCustomerAmendment(errs *FieldErrors, field, v string) {
	if problem := CheckCustomerValue(field, v); problem != "" {
		errs.Add(field, "%s", problem)
	}
}
