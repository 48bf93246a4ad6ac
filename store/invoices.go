package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Invoice is one of the business's invoices, with its lines.
type Invoice struct {
	ID               string    `json:"id"`
	CustomerID       string    `json:"customerId"`
	CustomerName     string    `json:"customerName"`
	CustomerEmail    string    `json:"customerEmail"`
	Currency         string    `json:"currency"`
	DueDate          time.Time `json:"dueDate"`
	Status           string    `json:"status"`
	StripeCustomerID string    `json:"stripeCustomerId,omitempty"`
	StripeInvoiceID  string    `json:"stripeInvoiceId,omitempty"`
	StripeStatus     string    `json:"stripeStatus,omitempty"`
	// BilledBy says who billed it (BilledBySignalbox, BilledByHand), BilledRef
	// where: the Stripe invoice, or the reference a person gave.
	BilledBy  string `json:"billedBy,omitempty"`
	BilledRef string `json:"billedRef,omitempty"`
	// Version changes with every change of the invoice or its lines.
	Version int64         `json:"version"`
	Lines   []InvoiceLine `json:"lines"`
}

// Who billed an invoice.
const (
	BilledBySignalbox = "signalbox"
	BilledByHand      = "hand"
)

// ErrStale is returned when a write names a version of a record that is no
// longer current: someone changed it since it was read.
var ErrStale = errors.New("changed since it was read")

// InvoiceLine is one line of an invoice; UnitAmount is in minor units.
type InvoiceLine struct {
	LineNo      int    `json:"lineNo"`
	Description string `json:"description"`
	Quantity    int64  `json:"quantity"`
	UnitAmount  int64  `json:"unitAmount"`
}

// Invoice statuses.
const (
	InvoiceDraft     = "draft"
	InvoiceReady     = "ready"
	InvoiceBilled    = "billed"
	InvoiceRejected  = "rejected"
	InvoiceCancelled = "cancelled"
)

// GetInvoice reads an invoice and its lines, or returns ErrNotFound.
func (s *Store) GetInvoice(ctx context.Context, id string) (Invoice, error) {
	var inv Invoice
	var stripeCustomer, stripeInvoice, stripeStatus, billedBy, billedRef *string
	err := s.db.QueryRow(ctx, `SELECT id, customer_id, customer_name, customer_email, currency, due_date, status,
			stripe_customer_id, stripe_invoice_id, stripe_status, billed_by, billed_ref, version
		FROM invoices WHERE id = $1`, id).Scan(&inv.ID, &inv.CustomerID, &inv.CustomerName, &inv.CustomerEmail,
		&inv.Currency, &inv.DueDate, &inv.Status, &stripeCustomer, &stripeInvoice, &stripeStatus, &billedBy, &billedRef, &inv.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return inv, ErrNotFound
	}
	if err != nil {
		return inv, fmt.Errorf("read invoice %s: %w", id, err)
	}
	inv.StripeCustomerID, inv.StripeInvoiceID, inv.StripeStatus = deref(stripeCustomer), deref(stripeInvoice), deref(stripeStatus)
	inv.BilledBy, inv.BilledRef = deref(billedBy), deref(billedRef)
	rows, err := s.db.Query(ctx, `SELECT line_no, description, quantity, unit_amount FROM invoice_lines
		WHERE invoice_id = $1 ORDER BY line_no`, id)
	if err != nil {
		return inv, fmt.Errorf("read lines of invoice %s: %w", id, err)
	}
	inv.Lines, err = pgx.CollectRows(rows, pgx.RowToStructByPos[InvoiceLine])
	if err != nil {
		return inv, fmt.Errorf("read lines of invoice %s: %w", id, err)
	}
	return inv, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// InvoiceIDs lists the IDs of invoices in a status, oldest first.
func (s *Store) InvoiceIDs(ctx context.Context, status string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM invoices WHERE status = $1 ORDER BY created_at, id`, status)
	if err != nil {
		return nil, fmt.Errorf("list %s invoices: %w", status, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list %s invoices: %w", status, err)
	}
	return ids, nil
}

// InvoiceStatus returns an invoice's status, or ErrNotFound.
func (s *Store) InvoiceStatus(ctx context.Context, id string) (string, error) {
	var status string
	err := s.db.QueryRow(ctx, `SELECT status FROM invoices WHERE id = $1`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("look up invoice %s: %w", id, err)
	}
	return status, nil
}

// InsertInvoice stores a new invoice and its lines; an existing ID is left as it is.
func (s *Store) InsertInvoice(ctx context.Context, inv Invoice) error {
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO invoices (id, customer_id, customer_name, customer_email, currency, due_date, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		inv.ID, inv.CustomerID, inv.CustomerName, inv.CustomerEmail, inv.Currency, inv.DueDate, inv.Status)
	for _, l := range inv.Lines {
		batch.Queue(`INSERT INTO invoice_lines (invoice_id, line_no, description, quantity, unit_amount)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, inv.ID, l.LineNo, l.Description, l.Quantity, l.UnitAmount)
	}
	if err := s.db.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("insert invoice %s: %w", inv.ID, err)
	}
	return nil
}

// InvoiceHeader holds the header fields an operator may amend.
type InvoiceHeader struct {
	CustomerName  string
	CustomerEmail string
	Currency      string
	DueDate       time.Time
}

// UpdateInvoiceHeader writes amended header fields back to the source of
// truth, if the invoice is still at version ifVersion (0: whatever its
// version), and returns its new version; otherwise it returns ErrStale and
// writes nothing.
func (s *Store) UpdateInvoiceHeader(ctx context.Context, id string, ifVersion int64, h InvoiceHeader) (int64, error) {
	var version int64
	err := s.db.QueryRow(ctx, `UPDATE invoices SET customer_name = $2, customer_email = $3, currency = $4, due_date = $5
		WHERE id = $1 AND ($6 = 0 OR version = $6) RETURNING version`, id, h.CustomerName, h.CustomerEmail, h.Currency, h.DueDate, ifVersion).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, s.missingOrStale(ctx, id)
	}
	if err != nil {
		return 0, fmt.Errorf("amend invoice %s: %w", id, err)
	}
	return version, nil
}

func (s *Store) missingOrStale(ctx context.Context, id string) error {
	if _, err := s.InvoiceStatus(ctx, id); err != nil {
		return err
	}
	return ErrStale
}

// BillingState is what Stripe holds for an invoice, written back to it.
type BillingState struct {
	Status           string // ours: billed, rejected, cancelled; empty keeps it
	StripeCustomerID string
	StripeInvoiceID  string
	StripeStatus     string
	// BilledBy and BilledRef, with Status billed, say who billed it and where;
	// the first billing recorded stays.
	BilledBy  string
	BilledRef string
}

// SetBillingState writes the Stripe IDs and statuses back, and returns the
// invoice's new version; empty values keep what is there. Once billed, an
// invoice stays billed: a later rejection or cancellation of a re-sync does
// not undo that; and a payment status a Stripe event set is not moved back
// (billing's "open" written after a webhook's "paid" keeps "paid").
func (s *Store) SetBillingState(ctx context.Context, id string, b BillingState) (int64, error) {
	var version int64
	err := s.db.QueryRow(ctx, `UPDATE invoices SET
			status = CASE WHEN status = 'billed' THEN status ELSE COALESCE(NULLIF($2, ''), status) END,
			stripe_customer_id = COALESCE(NULLIF($3, ''), stripe_customer_id),
			stripe_invoice_id = COALESCE(NULLIF($4, ''), stripe_invoice_id),
			-- A status a Stripe event set (stripe_status_at) gives way only to a
			-- later one in the lifecycle: billing's write may arrive after it.
			stripe_status = CASE WHEN NULLIF($5, '') IS NULL THEN stripe_status
				WHEN stripe_status_at IS NULL OR stripe_status_rank($5) > stripe_status_rank(stripe_status) THEN $5
				ELSE stripe_status END,
			-- A status billing wrote carries no event's time: only an event that
			-- does not go back in the lifecycle replaces it (an older event
			-- stamped before it must not take a paid invoice back to open).
			stripe_status_at = CASE WHEN NULLIF($5, '') IS NOT NULL AND stripe_status_at IS NOT NULL
				AND stripe_status_rank($5) > stripe_status_rank(stripe_status) THEN NULL ELSE stripe_status_at END,
			billed_by = COALESCE(billed_by, NULLIF($6, '')),
			billed_ref = CASE WHEN billed_by IS NULL THEN NULLIF($7, '') ELSE billed_ref END,
			billed_at = CASE WHEN $2 = 'billed' AND billed_at IS NULL THEN now() ELSE billed_at END
		WHERE id = $1 RETURNING version`, id, b.Status, b.StripeCustomerID, b.StripeInvoiceID, b.StripeStatus, b.BilledBy, b.BilledRef).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("write billing state of invoice %s: %w", id, err)
	}
	return version, nil
}

// BilledInvoice is what reconciliation compares of an invoice with Stripe.
type BilledInvoice struct {
	ID              string
	StripeInvoiceID string
	StripeStatus    string
	Currency        string
	// Total is the sum of its lines, in minor units.
	Total int64
}

// BilledInvoicesAfter returns up to limit invoices that have a Stripe
// invoice, whose ID sorts after after, in ID order.
func (s *Store) BilledInvoicesAfter(ctx context.Context, after string, limit int) ([]BilledInvoice, error) {
	rows, err := s.db.Query(ctx, `SELECT i.id, i.stripe_invoice_id, COALESCE(i.stripe_status, ''), i.currency,
			COALESCE((SELECT sum(l.quantity * l.unit_amount) FROM invoice_lines l WHERE l.invoice_id = i.id), 0)::bigint
		FROM invoices i WHERE i.stripe_invoice_id IS NOT NULL AND i.id COLLATE "C" > $1
		ORDER BY i.id COLLATE "C" LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list billed invoices: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[BilledInvoice])
	if err != nil {
		return nil, fmt.Errorf("list billed invoices: %w", err)
	}
	return out, nil
}
