package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/activities"
	"github.com/signalbox-dev/signalbox/api"
)

// A total that differs from Stripe's waits for finance; approving accepts
// it (remembered, so the next run does not raise it again) and bills nothing.
func TestAnAmountMismatchWaitsForFinanceAndApprovalAcceptsIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "invoice-to-billing:INV-1")
	var accepted []activities.AcceptDifferenceInput
	f.env.OnActivity(spineActivities.AcceptDifference, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AcceptDifferenceInput) error {
		accepted = append(accepted, in)
		return nil
	})
	finding := api.ReconcileFinding{RunID: 7, Class: api.ClassAmountDiffers, Fingerprint: "49200/51000",
		Details: map[string]string{"stripe invoice": "in_1", "total in PostgreSQL": "49200", "total in Stripe": "51000"}}
	f.at(time.Hour, func() {
		s := f.state()
		require.Equal(t, api.AmountMismatch, s.Exception.Kind)
		require.Contains(t, s.Exception.Summary, "totals 49200 in PostgreSQL but 51000 in Stripe")
		require.Equal(t, []api.Action{api.ActionApprove, api.ActionResolve}, s.Exception.Decisions)
		f.decide("finance", api.Decision{Action: api.ActionApprove, Actor: "carol", Reason: "credit note CN-4 covers it"})
	})
	in := testInvoiceInput()
	in.Reconcile = &finding
	f.env.ExecuteWorkflow(InvoiceToBilling, in)

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, []activities.AcceptDifferenceInput{{Integration: api.IntegrationInvoiceToBilling, SourceKey: "INV-1", Finding: finding,
		Actor: "carol", Reason: "credit note CN-4 covers it"}}, accepted)
}
