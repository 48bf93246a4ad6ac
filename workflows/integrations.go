// Package workflows holds signalbox's integrations, each a Temporal workflow
// on the spine (package spine): its code, how its items start and what it
// calls. What it is — fields, owners, exceptions — is its spec in package api.
package workflows

import (
	"fmt"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// defined holds each integration's code by name. An integration's own file
// adds it (var _ = define(...)); api.Specs() says which integrations exist.
var defined = map[string]func() spine.Integration{}

func define(code func() spine.Integration) bool {
	defined[code().Spec.Name] = code
	return true
}

// Integrations is the code of every integration api.Specs() declares, in its
// order. An integration declared without code, or code without a declaration,
// is an error (a test and every worker's start check it).
func Integrations() ([]spine.Integration, error) {
	var out []spine.Integration
	for _, s := range api.Specs() {
		code, ok := defined[s.Name]
		if !ok {
			return nil, fmt.Errorf("integration %s is declared in api.Specs() but has no code: define it in package workflows", s.Name)
		}
		in := code()
		if (in.Reconcile != nil) != (s.Reconciles != "") {
			return nil, fmt.Errorf("integration %s: its spec's Reconciles and its code's Reconcile must be set together", s.Name)
		}
		out = append(out, in)
	}
	for name := range defined {
		if _, err := api.SpecByName(name); err != nil {
			return nil, fmt.Errorf("integration %s has code but is not declared: add its spec to api.Specs()", name)
		}
	}
	return out, nil
}

// The activities integrations call, by method value.
var (
	spineActivities   *activities.Spine
	crmActivities     *activities.CRM
	billingActivities *activities.Billing
	invoiceActivities *activities.Invoices
	leadReconcile     *activities.LeadReconcile
	customerReconcile *activities.CustomerReconcile
	invoiceReconcile  *activities.InvoiceReconcile
)
