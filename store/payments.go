package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PaymentEvent is one report of a Stripe invoice's status that an
// invoice-payments item applies: a Stripe event, or what a reconcile run
// read from Stripe.
type PaymentEvent struct {
	// ID is the event's ID: applying it again changes nothing.
	ID   string
	Type string
	// Created orders the events of an invoice.
	Created         time.Time
	StripeInvoiceID string
	// InvoiceID is ours, from the Stripe invoice's metadata; may be empty.
	InvoiceID string
	Status    string
}

// What applying a payment event did.
const (
	// PaymentApplied: the event set the invoice's status.
	PaymentApplied = "applied"
	// PaymentOlder: the invoice holds a status set by a newer event (or,
	// at the same time, a later one in the lifecycle); nothing changed.
	PaymentOlder = "older"
	// PaymentSuperseded: the invoice its metadata names is billed as another
	// Stripe invoice now; nothing changed.
	PaymentSuperseded = "superseded"
	// PaymentUnknown: no invoice matches; nothing was recorded, so applying
	// it again once the invoice exists applies it.
	PaymentUnknown = "unknown"
	// PaymentAmbiguous: no invoice matches by our ID, and several carry the
	// Stripe invoice; nothing was recorded.
	PaymentAmbiguous = "ambiguous"
)

// PaymentStatus is an invoice's Stripe status and when the event that set it
// was created (zero when billing wrote it, or when there is none).
type PaymentStatus struct {
	Status string    `json:"status,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// PaymentOutcome says what applying a payment event did.
type PaymentOutcome struct {
	// Outcome is one of PaymentApplied, …; for a Duplicate, what the event
	// did when it was first applied.
	Outcome string
	// Duplicate is set when the event had been handled before.
	Duplicate bool
	// InvoiceID is the invoice the event is about.
	InvoiceID string `json:",omitempty"`
	// Candidates are, for PaymentAmbiguous, the invoices that carry its
	// Stripe invoice.
	Candidates []string `json:",omitempty"`
	// BilledAs is, for PaymentSuperseded, the Stripe invoice the invoice is
	// billed as now.
	BilledAs string `json:",omitempty"`
	// Before and Now are the invoice's status before and after the event.
	Before, Now PaymentStatus
}

// ApplyPaymentEvent sets the status an event reports on its invoice, once per
// event ID and never over a status set by a newer event (the order is the
// migration's stripe_status_supersedes). The invoice is ours from the
// event's metadata (unless it is billed as another Stripe invoice now), else
// the one that carries its Stripe invoice. An unknown invoice records
// nothing, so that the event applies when it is handed again.
func (s *Store) ApplyPaymentEvent(ctx context.Context, e PaymentEvent) (PaymentOutcome, error) {
	var out PaymentOutcome
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT outcome, invoice_id FROM payment_events WHERE event_id = $1`, e.ID).Scan(&out.Outcome, &out.InvoiceID)
		if err == nil {
			out.Duplicate = true
			out.Now, err = paymentStatusOf(ctx, tx, out.InvoiceID)
			out.Before = out.Now
			if errors.Is(err, ErrNotFound) {
				return nil // deleted since: the event was handled all the same
			}
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		inv, err := paymentInvoice(ctx, tx, e, &out)
		if err != nil || inv == nil {
			return err
		}
		out.InvoiceID, out.Before, out.Now = inv.id, inv.status, inv.status
		if out.Outcome == "" {
			out.Outcome = PaymentOlder
			tag, err := tx.Exec(ctx, `UPDATE invoices SET stripe_status = $2, stripe_status_at = $3
				WHERE id = $1 AND stripe_status_supersedes($2, $3, stripe_status, stripe_status_at)`, inv.id, e.Status, e.Created)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				out.Outcome, out.Now = PaymentApplied, PaymentStatus{Status: e.Status, At: e.Created.UTC()}
			}
		}
		// A second transaction applying the same event at once fails here
		// (primary key) and rolls back; its retry finds the event handled.
		_, err = tx.Exec(ctx, `INSERT INTO payment_events (event_id, stripe_invoice_id, invoice_id, type, status, created, outcome)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.ID, e.StripeInvoiceID, inv.id, e.Type, e.Status, e.Created, out.Outcome)
		return err
	})
	if err != nil {
		return PaymentOutcome{}, fmt.Errorf("apply payment event %s to Stripe invoice %s: %w", e.ID, e.StripeInvoiceID, err)
	}
	return out, nil
}

// paymentRow is an invoice as a payment event finds it, locked.
type paymentRow struct {
	id, stripeInvoiceID string
	status              PaymentStatus
}

// paymentInvoice locks the invoice e is about, or returns nil and says in
// out why there is none. out.Outcome is PaymentSuperseded when the invoice
// is billed as another Stripe invoice.
func paymentInvoice(ctx context.Context, tx pgx.Tx, e PaymentEvent, out *PaymentOutcome) (*paymentRow, error) {
	const columns = `SELECT id, COALESCE(stripe_invoice_id, ''), COALESCE(stripe_status, ''), stripe_status_at FROM invoices`
	scan := func(rows pgx.CollectableRow) (paymentRow, error) {
		var r paymentRow
		var at *time.Time
		err := rows.Scan(&r.id, &r.stripeInvoiceID, &r.status.Status, &at)
		if at != nil {
			r.status.At = at.UTC()
		}
		return r, err
	}
	if e.InvoiceID != "" {
		rows, _ := tx.Query(ctx, columns+` WHERE id = $1 FOR UPDATE`, e.InvoiceID)
		found, err := pgx.CollectRows(rows, scan)
		if err != nil {
			return nil, err
		}
		if len(found) == 1 {
			r := found[0]
			if r.stripeInvoiceID != "" && r.stripeInvoiceID != e.StripeInvoiceID {
				out.Outcome, out.BilledAs = PaymentSuperseded, r.stripeInvoiceID
			}
			return &r, nil
		}
	}
	rows, _ := tx.Query(ctx, columns+` WHERE stripe_invoice_id = $1 ORDER BY id LIMIT 10 FOR UPDATE`, e.StripeInvoiceID)
	found, err := pgx.CollectRows(rows, scan)
	switch {
	case err != nil:
		return nil, err
	case len(found) == 0:
		out.Outcome = PaymentUnknown
		return nil, nil
	case len(found) > 1:
		out.Outcome = PaymentAmbiguous
		for _, r := range found {
			out.Candidates = append(out.Candidates, r.id)
		}
		return nil, nil
	}
	return &found[0], nil
}

// InvoicePaymentStatus is the invoice's Stripe status and when the event that
// set it was created; ErrNotFound when there is no such invoice.
func (s *Store) InvoicePaymentStatus(ctx context.Context, invoiceID string) (PaymentStatus, error) {
	st, err := paymentStatusOf(ctx, s.db, invoiceID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return st, fmt.Errorf("read the payment status of invoice %s: %w", invoiceID, err)
	}
	return st, err
}

func paymentStatusOf(ctx context.Context, db DBTX, invoiceID string) (PaymentStatus, error) {
	var st PaymentStatus
	var at *time.Time
	err := db.QueryRow(ctx, `SELECT COALESCE(stripe_status, ''), stripe_status_at FROM invoices WHERE id = $1`, invoiceID).Scan(&st.Status, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, ErrNotFound
	}
	if at != nil {
		st.At = at.UTC()
	}
	return st, err
}

// StripeDelivery is one webhook delivery from Stripe: Digest is the SHA-256
// of what Stripe signed ("<timestamp>.<body>"), SignedAt its timestamp.
type StripeDelivery struct {
	Digest   string
	EventID  string
	SignedAt time.Time
}

// ClaimStripeDelivery records a delivery and reports whether it is new:
// false means it was received before (a replay). Deliveries signed before
// forgetBefore are forgotten first: the signature check refuses them as
// stale anyway.
func (s *Store) ClaimStripeDelivery(ctx context.Context, d StripeDelivery, forgetBefore time.Time) (bool, error) {
	if _, err := s.db.Exec(ctx, `DELETE FROM stripe_webhook_deliveries WHERE signed_at < $1`, forgetBefore); err != nil {
		return false, fmt.Errorf("forget old Stripe deliveries: %w", err)
	}
	tag, err := s.db.Exec(ctx, `INSERT INTO stripe_webhook_deliveries (delivery, event_id, signed_at) VALUES ($1, $2, $3)
		ON CONFLICT (delivery) DO NOTHING`, d.Digest, d.EventID, d.SignedAt)
	if err != nil {
		return false, fmt.Errorf("record Stripe delivery of event %s: %w", d.EventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseStripeDelivery forgets a claimed delivery that was not taken (its
// event could not be handed on): receiving it again is no replay.
func (s *Store) ReleaseStripeDelivery(ctx context.Context, digest string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM stripe_webhook_deliveries WHERE delivery = $1`, digest); err != nil {
		return fmt.Errorf("forget a Stripe delivery: %w", err)
	}
	return nil
}
