package api

import (
	"slices"
	"strings"
	"time"
)

// IntegrationInvoiceToBilling is the name of the invoice → billing integration.
const IntegrationInvoiceToBilling = "invoice-to-billing"

// TaskQueueBilling runs the activities that call Stripe.
const TaskQueueBilling = "billing"

// InvoiceToBillingSpec declares the invoice → billing integration.
func InvoiceToBillingSpec() Spec {
	return Spec{
		Name:         IntegrationInvoiceToBilling,
		CheckValue:   checkInvoiceAmendment,
		AmendHint:    "; change lines and amounts in the billing system, then retry",
		WorkflowType: "InvoiceToBilling",
		Title:        "Invoice → Stripe billing",
		Description:  "Each ready invoice in PostgreSQL becomes one finalized Stripe invoice for one Stripe customer; large ones wait for finance's approval.",
		Owner:        "finance",
		Source:       "postgres",
		Target:       "stripe",
		Fields: []Field{
			{Name: "customerId", TargetName: "customer.metadata.signalbox_customer_id", Owner: "postgres", Direction: DirToTarget, Required: true, Description: "finds the Stripe customer"},
			{Name: "customerName", TargetName: "customer.name", Owner: "postgres", Direction: DirToTarget, Required: true, Amendable: true, Description: "amendable"},
			{Name: "customerEmail", TargetName: "customer.email", Owner: "postgres", Direction: DirToTarget, Required: true, Amendable: true, Description: "amendable"},
			{Name: "currency", TargetName: "invoice.currency", Owner: "postgres", Direction: DirToTarget, Required: true, Amendable: true, Description: "amendable"},
			{Name: "dueDate", TargetName: "invoice.due_date", Owner: "postgres", Direction: DirToTarget, Required: true, Amendable: true, Description: "amendable"},
			{Name: "lines and amounts", TargetName: "invoiceitem.quantity, unit_amount_decimal", Owner: "postgres", Direction: DirToTarget, Required: true, Description: "minor units; change them in the billing system, then retry"},
			{Name: "Stripe customer and invoice IDs", TargetName: "customer.id, invoice.id", Owner: "stripe", Direction: DirToSource, Description: "written back to invoices and external_links"},
			{Name: "payment status", TargetName: "invoice.status", Owner: "stripe", Direction: DirToSource, Description: "written back to invoices.stripe_status; a re-sync refreshes it"},
		},
		Reconciles: "every billed invoice against Stripe's: a payment status that differs goes to its invoice-payments item, a total that differs or a Stripe invoice gone waits for finance",
		Exceptions: append([]ExceptionSpec{
			{Kind: ValidationFailed, Status: StatusBlocked, When: "the invoice breaks its contract (currency, lines, amounts, customer email) or is not ready",
				Decisions: []Action{ActionAmend, ActionRetry, ActionReject, ActionCancel}, SLA: 4 * time.Hour},
			{Kind: ApprovalRequired, Status: StatusBlocked, When: "the invoice's total is above SIGNALBOX_INVOICE_APPROVAL_THRESHOLD",
				Decisions: []Action{ActionApprove, ActionReject}, Deciders: "finance", SLA: 24 * time.Hour},
			{Kind: AmountMismatch, Status: StatusBlocked, When: "reconciliation found the invoice's total in Stripe differs from its lines in PostgreSQL; approve accepts the difference as it is (not raised again while both totals stay), resolve says where it was corrected",
				Decisions: []Action{ActionApprove, ActionResolve}, SLA: 24 * time.Hour},
			{Kind: MissingInTarget, Status: StatusBlocked, When: "reconciliation found the invoice's Stripe invoice gone; approve accepts that (not raised again), resolve says where it was billed instead",
				Decisions: []Action{ActionApprove, ActionResolve}, SLA: 24 * time.Hour},
		}, TechnicalExceptions(time.Hour)...),
	}
}

// ZeroDecimalCurrencies are the currencies Stripe counts in whole units.
var ZeroDecimalCurrencies = []string{"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}

// InvoiceCurrencies are the currencies signalbox bills in; Stripe supports
// more, and adding one here is all it takes.
var InvoiceCurrencies = append([]string{"aud", "cad", "chf", "czk", "dkk", "eur", "gbp", "hkd", "nok", "nzd", "pln", "sek", "sgd", "usd"}, ZeroDecimalCurrencies...)

// NormalizeCurrency is a currency as an amendment sets it: trimmed, lower case.
func NormalizeCurrency(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// ParseDueDate reads an invoice's due date as an amendment sets it.
func ParseDueDate(v string) (time.Time, error) { return time.Parse(time.DateOnly, v) }

// CheckInvoiceField adds the problem of one header field of an invoice as
// it is stored (customerName, customerEmail, currency); other fields it
// leaves alone. The invoice's validation checks these fields with it.
func CheckInvoiceField(errs *FieldErrors, field, v string) {
	switch field {
	case "customerName":
		CheckText(errs, field, v, 200, true)
	case "customerEmail":
		CheckEmail(errs, field, v)
	case "currency":
		if !slices.Contains(InvoiceCurrencies, v) {
			errs.Add(field, "must be one of %s (lower case)", strings.Join(InvoiceCurrencies, ", "))
		}
	}
}

// checkInvoiceAmendment checks an amended invoice field as the invoice
// workflow reads it: a due date as a date, a currency normalized.
func checkInvoiceAmendment(errs *FieldErrors, field, v string) {
	switch field {
	case "dueDate":
		if _, err := ParseDueDate(v); err != nil {
			errs.Add(field, "must be a date like 2026-12-31")
		}
	case "currency":
		CheckInvoiceField(errs, field, NormalizeCurrency(v))
	default:
		CheckInvoiceField(errs, field, v)
	}
}
