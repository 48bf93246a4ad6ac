package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signalbox-dev/signalbox/api"
)

// Customer is one of the business's customers. PostgreSQL is the source of
// truth for them; the customer sync keeps each consistent with a CRM company.
type Customer struct {
	ID           string `json:"id"`
	LegalName    string `json:"legalName"`
	Domain       string `json:"domain"`
	BillingEmail string `json:"billingEmail"`
	Phone        string `json:"phone"`
	AddressLine1 string `json:"addressLine1"`
	City         string `json:"city"`
	PostalCode   string `json:"postalCode"`
	// Country is an ISO 3166-1 alpha-2 code in capitals ("DE"), or empty.
	Country      string `json:"country"`
	PaymentTerms string `json:"paymentTerms"`
	// CreditLimit is in whole units of the customer's currency, never negative.
	CreditLimit    int64     `json:"creditLimit"`
	Industry       string    `json:"industry"`
	LifecycleStage string    `json:"lifecycleStage"`
	AccountOwner   string    `json:"accountOwner"`
	Archived       bool      `json:"archived"`
	CreatedAt      time.Time `json:"createdAt"`
	// UpdatedAt and Version change with every change of the customer, and only then.
	UpdatedAt time.Time `json:"updatedAt"`
	Version   int64     `json:"version"`
}

// CustomerFields names, in order, the fields of a customer that are compared
// and written by name (Values, With, UpdateCustomer): not the ID, Archived,
// the timestamps or the version. Do not modify it.
var CustomerFields = []string{
	"legalName", "domain", "billingEmail", "phone", "addressLine1", "city", "postalCode", "country",
	"paymentTerms", "creditLimit", "industry", "lifecycleStage", "accountOwner",
}

// ErrExists is returned when a record to create exists already.
var ErrExists = errors.New("already exists")

// ErrInvalidCustomer is returned when a customer, or a value of one of its
// fields, cannot be stored; the error names the field.
var ErrInvalidCustomer = errors.New("invalid customer")

// customerField maps a field name to its column: the only column names an
// UPDATE built from field names may contain.
type customerField struct {
	name   string
	column string
	text   func(*Customer) *string // nil for creditLimit
}

const fieldCreditLimit = "creditLimit"

var customerFieldList = []customerField{
	{"legalName", "legal_name", func(c *Customer) *string { return &c.LegalName }},
	{"domain", "domain", func(c *Customer) *string { return &c.Domain }},
	{"billingEmail", "billing_email", func(c *Customer) *string { return &c.BillingEmail }},
	{"phone", "phone", func(c *Customer) *string { return &c.Phone }},
	{"addressLine1", "address_line1", func(c *Customer) *string { return &c.AddressLine1 }},
	{"city", "city", func(c *Customer) *string { return &c.City }},
	{"postalCode", "postal_code", func(c *Customer) *string { return &c.PostalCode }},
	{"country", "country", func(c *Customer) *string { return &c.Country }},
	{"paymentTerms", "payment_terms", func(c *Customer) *string { return &c.PaymentTerms }},
	{fieldCreditLimit, "credit_limit", nil},
	{"industry", "industry", func(c *Customer) *string { return &c.Industry }},
	{"lifecycleStage", "lifecycle_stage", func(c *Customer) *string { return &c.LifecycleStage }},
	{"accountOwner", "account_owner", func(c *Customer) *string { return &c.AccountOwner }},
}

var customerFieldByName = func() map[string]customerField {
	m := make(map[string]customerField, len(customerFieldList))
	for _, f := range customerFieldList {
		m[f.name] = f
	}
	return m
}()

var customerIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// Values returns every field of CustomerFields by name: the credit limit in
// decimal, a blank field as the empty string.
func (c Customer) Values() map[string]string {
	out := make(map[string]string, len(customerFieldList))
	for _, f := range customerFieldList {
		if f.text == nil {
			out[f.name] = strconv.FormatInt(c.CreditLimit, 10)
			continue
		}
		out[f.name] = *f.text(&c)
	}
	return out
}

// With returns the customer with the fields named in set (names from
// CustomerFields) changed to the values given. It refuses, with an error
// wrapping ErrInvalidCustomer that names the field, an unknown field name, a
// credit limit that is not a whole number ≥ 0 in decimal digits, a country
// that is not a capitalised two-letter code or empty, and text PostgreSQL
// cannot store (invalid UTF-8, NUL); the customer is then returned unchanged.
func (c Customer) With(set map[string]string) (Customer, error) {
	orig := c
	for _, name := range sortedKeys(set) {
		v, err := customerValue(name, set[name])
		if err != nil {
			return orig, err
		}
		if n, ok := v.(int64); ok {
			c.CreditLimit = n
			continue
		}
		*customerFieldByName[name].text(&c) = v.(string)
	}
	return c, nil
}

// customerValue checks value for the field name and returns it as its
// column holds it: an int64 for creditLimit, else a string.
func customerValue(name, value string) (any, error) {
	f, ok := customerFieldByName[name]
	if !ok {
		return nil, fmt.Errorf("%w: unknown field %q (the fields are %s)", ErrInvalidCustomer, name, strings.Join(CustomerFields, ", "))
	}
	// The same check as an amendment's values get, in the workflow and in
	// the console.
	if problem := api.CheckCustomerValue(name, value); problem != "" {
		return nil, fmt.Errorf("%w: %s %s", ErrInvalidCustomer, name, problem)
	}
	if f.name == fieldCreditLimit {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidCustomer, name, err) // CheckCustomerValue refused it already
		}
		return n, nil
	}
	return value, nil
}

func sortedKeys(set map[string]string) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkCustomer checks what InsertCustomer stores as With would.
func checkCustomer(c Customer) error {
	if !customerIDPattern.MatchString(c.ID) {
		return fmt.Errorf("%w: id must be letters, digits, '.', '_', '~' or '-', not %q", ErrInvalidCustomer, c.ID)
	}
	_, err := c.With(c.Values())
	return err
}

const customerColumns = `id, legal_name, domain, billing_email, phone, address_line1, city, postal_code, country,
	payment_terms, credit_limit, industry, lifecycle_stage, account_owner, archived, created_at, updated_at, version`

func scanCustomer(row pgx.Row) (Customer, error) {
	var c Customer
	err := row.Scan(&c.ID, &c.LegalName, &c.Domain, &c.BillingEmail, &c.Phone, &c.AddressLine1, &c.City, &c.PostalCode,
		&c.Country, &c.PaymentTerms, &c.CreditLimit, &c.Industry, &c.LifecycleStage, &c.AccountOwner, &c.Archived,
		&c.CreatedAt, &c.UpdatedAt, &c.Version)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// customerWriteError translates what PostgreSQL reports about a write of a customer.
func customerWriteError(action, id string, err error) error {
	switch {
	case isCode(err, "23505"):
		return fmt.Errorf("%s customer %s: %w", action, id, ErrExists)
	case isCode(err, "23514"):
		return fmt.Errorf("%s customer %s: %w: %w", action, id, ErrInvalidCustomer, err)
	}
	return fmt.Errorf("%s customer %s: %w", action, id, err)
}

// GetCustomer reads a customer, or returns ErrNotFound.
func (s *Store) GetCustomer(ctx context.Context, id string) (Customer, error) {
	c, err := scanCustomer(s.db.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Customer{}, ErrNotFound
	}
	if err != nil {
		return Customer{}, fmt.Errorf("read customer %s: %w", id, err)
	}
	return c, nil
}

// GetCustomers reads the customers with the IDs given (those that exist),
// in ID order.
func (s *Store) GetCustomers(ctx context.Context, ids []string) ([]Customer, error) {
	rows, err := s.db.Query(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	defer rows.Close()
	var out []Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, fmt.Errorf("read customers: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// InsertCustomer creates a customer, at version 1, and returns it as stored;
// its CreatedAt, UpdatedAt and Version are ignored. An existing ID is an error
// wrapping ErrExists; a value that cannot be stored one wrapping
// ErrInvalidCustomer.
func (s *Store) InsertCustomer(ctx context.Context, c Customer) (Customer, error) {
	if err := checkCustomer(c); err != nil {
		return Customer{}, fmt.Errorf("insert customer %s: %w", c.ID, err)
	}
	got, err := scanCustomer(s.db.QueryRow(ctx, `INSERT INTO customers (id, legal_name, domain, billing_email, phone,
			address_line1, city, postal_code, country, payment_terms, credit_limit, industry, lifecycle_stage,
			account_owner, archived)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		RETURNING `+customerColumns,
		c.ID, c.LegalName, c.Domain, c.BillingEmail, c.Phone, c.AddressLine1, c.City, c.PostalCode, c.Country,
		c.PaymentTerms, c.CreditLimit, c.Industry, c.LifecycleStage, c.AccountOwner, c.Archived))
	if err != nil {
		return Customer{}, customerWriteError("insert", c.ID, err)
	}
	return got, nil
}

// UpdateCustomer writes the fields named in set (names from CustomerFields,
// values as With takes them) if the customer is still at version ifVersion,
// in one statement, and returns it as written. Writing the values it holds
// already changes nothing, its version included. If the version moved on it
// writes nothing and returns ErrStale; ErrNotFound if there is no such
// customer. An empty set writes nothing and returns the customer as it is
// (or ErrStale).
func (s *Store) UpdateCustomer(ctx context.Context, id string, ifVersion int64, set map[string]string) (Customer, error) {
	if len(set) == 0 {
		c, err := s.GetCustomer(ctx, id)
		if err != nil {
			return Customer{}, err
		}
		if c.Version != ifVersion {
			return Customer{}, ErrStale
		}
		return c, nil
	}
	args := []any{id, ifVersion}
	var assignments []string
	for _, name := range sortedKeys(set) {
		v, err := customerValue(name, set[name])
		if err != nil {
			return Customer{}, fmt.Errorf("update customer %s: %w", id, err)
		}
		args = append(args, v)
		// The column comes from the fixed list, never from the caller.
		assignments = append(assignments, fmt.Sprintf("%s = $%d", customerFieldByName[name].column, len(args)))
	}
	c, err := scanCustomer(s.db.QueryRow(ctx, `UPDATE customers SET `+strings.Join(assignments, ", ")+`
		WHERE id = $1 AND version = $2 RETURNING `+customerColumns, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return Customer{}, s.customerMissingOrStale(ctx, id)
	}
	if err != nil {
		return Customer{}, customerWriteError("update", id, err)
	}
	return c, nil
}

// SetCustomerArchived archives or restores a customer if it is still at
// version ifVersion, and returns it as written; like UpdateCustomer, it
// returns ErrStale or ErrNotFound otherwise.
func (s *Store) SetCustomerArchived(ctx context.Context, id string, ifVersion int64, archived bool) (Customer, error) {
	c, err := scanCustomer(s.db.QueryRow(ctx, `UPDATE customers SET archived = $3
		WHERE id = $1 AND version = $2 RETURNING `+customerColumns, id, ifVersion, archived))
	if errors.Is(err, pgx.ErrNoRows) {
		return Customer{}, s.customerMissingOrStale(ctx, id)
	}
	if err != nil {
		return Customer{}, customerWriteError("archive", id, err)
	}
	return c, nil
}

func (s *Store) customerMissingOrStale(ctx context.Context, id string) error {
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("look up customer %s: %w", id, err)
	}
	if !exists {
		return ErrNotFound
	}
	return ErrStale
}

// Cursor is where a page of changes ended: the UpdatedAt and ID of its last
// row. The zero Cursor starts from the beginning.
type Cursor struct {
	UpdatedAt time.Time `json:"updatedAt"`
	ID        string    `json:"id"`
}

// CustomersChangedSince returns up to limit customers, archived ones
// included, last changed at or after since, in (UpdatedAt, ID) order, from
// after the cursor on. The next page starts after the last row returned.
//
// UpdatedAt is stamped when a row is written, not when its transaction
// commits: a change committed after a poll read the table can carry an
// UpdatedAt earlier than rows that poll returned. A poller should therefore
// start its next poll (since) earlier than the last UpdatedAt it saw, by more
// than any write transaction lasts, and take a customer seen again in stride.
func (s *Store) CustomersChangedSince(ctx context.Context, since time.Time, after Cursor, limit int) ([]Customer, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list changed customers: limit %d, want at least 1", limit)
	}
	// The zero Cursor (year 1, "") comes before every row.
	rows, err := s.db.Query(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE updated_at >= $1 AND (updated_at, id) > ($2::timestamptz, $3::text)
		ORDER BY updated_at, id LIMIT $4`, since, after.UpdatedAt, after.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("list customers changed since %s: %w", since.Format(time.RFC3339Nano), err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Customer, error) { return scanCustomer(row) })
	if err != nil {
		return nil, fmt.Errorf("list customers changed since %s: %w", since.Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// CustomerIDs returns up to limit customer IDs after afterID ("": from the
// first), archived ones included, in order: pages of a full backfill.
func (s *Store) CustomerIDs(ctx context.Context, afterID string, limit int) ([]string, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list customers: limit %d, want at least 1", limit)
	}
	rows, err := s.db.Query(ctx, `SELECT id FROM customers WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list customers after %q: %w", afterID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list customers after %q: %w", afterID, err)
	}
	return ids, nil
}

// Watermark returns how far the poller name has read, and false if it has
// not recorded anything yet.
func (s *Store) Watermark(ctx context.Context, name string) (time.Time, bool, error) {
	var at time.Time
	err := s.db.QueryRow(ctx, `SELECT at FROM sync_watermarks WHERE name = $1`, name).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read watermark %s: %w", name, err)
	}
	return at.UTC(), true, nil
}

// AdvanceWatermark records that the poller name has read up to at. A
// watermark never moves backwards: an earlier at than the one recorded is
// ignored, and that is not an error.
func (s *Store) AdvanceWatermark(ctx context.Context, name string, at time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO sync_watermarks (name, at) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET at = excluded.at, updated_at = now()
			WHERE sync_watermarks.at < excluded.at`, name, at)
	if err != nil {
		return fmt.Errorf("advance watermark %s: %w", name, err)
	}
	return nil
}

// IgnoreRecord records that actor decided to ignore the record recordID of
// system for integration, and why. Ignoring it again changes nothing: the
// first decision stays.
func (s *Store) IgnoreRecord(ctx context.Context, integration, system, recordID, actor, reason string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO ignored_records (integration, system, record_id, actor, reason)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, integration, system, recordID, actor, reason)
	if err != nil {
		return fmt.Errorf("ignore %s record %s for %s: %w", system, recordID, integration, err)
	}
	return nil
}

// IsIgnored reports whether a person decided to ignore the record recordID of
// system for integration.
func (s *Store) IsIgnored(ctx context.Context, integration, system, recordID string) (bool, error) {
	var ignored bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ignored_records
		WHERE integration = $1 AND system = $2 AND record_id = $3)`, integration, system, recordID).Scan(&ignored)
	if err != nil {
		return false, fmt.Errorf("look up ignored %s record %s for %s: %w", system, recordID, integration, err)
	}
	return ignored, nil
}

// UnlinkedCustomers returns up to limit IDs of active customers, after
// afterID, that have no company linked for integration: never synced.
func (s *Store) UnlinkedCustomers(ctx context.Context, integration, targetSystem, afterID string, limit int) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT c.id FROM customers c
		WHERE NOT c.archived AND c.id COLLATE "C" > $3 AND NOT EXISTS (SELECT 1 FROM external_links l
			WHERE l.integration = $1 AND l.target_system = $2 AND l.source_key = c.id AND l.target_id <> '')
		ORDER BY c.id COLLATE "C" LIMIT $4`, integration, targetSystem, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list unlinked customers: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list unlinked customers: %w", err)
	}
	return ids, nil
}
