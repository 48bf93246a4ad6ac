package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

// customerPrefix returns an ID prefix of the test's own, so that the
// customer tests would also hold on one database shared by all.
func customerPrefix() string { return "T" + rand.Text()[:10] + "-" }

func sampleCustomer(id string) store.Customer {
	return store.Customer{ID: id, LegalName: "Acme GmbH", Domain: "acme.example", BillingEmail: "ap@acme.example",
		Phone: "+49 30 1234567", AddressLine1: "Hauptstraße 1", City: "Berlin", PostalCode: "10115", Country: "DE",
		PaymentTerms: "net30", CreditLimit: 50000, Industry: "Manufacturing", LifecycleStage: "customer", AccountOwner: "alice"}
}

func TestCustomerFieldsValuesAndWith(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"legalName", "domain", "billingEmail", "phone", "addressLine1", "city", "postalCode",
		"country", "paymentTerms", "creditLimit", "industry", "lifecycleStage", "accountOwner"}, store.CustomerFields)

	c := sampleCustomer("CUST-1001")
	c.Industry = ""
	require.Equal(t, map[string]string{"legalName": "Acme GmbH", "domain": "acme.example", "billingEmail": "ap@acme.example",
		"phone": "+49 30 1234567", "addressLine1": "Hauptstraße 1", "city": "Berlin", "postalCode": "10115", "country": "DE",
		"paymentTerms": "net30", "creditLimit": "50000", "industry": "", "lifecycleStage": "customer", "accountOwner": "alice"},
		c.Values(), "every field is present, a blank one as the empty string")
	same, err := c.With(c.Values())
	require.NoError(t, err)
	require.Equal(t, c, same)

	changed, err := c.With(map[string]string{"city": "Hamburg", "creditLimit": "0", "country": ""})
	require.NoError(t, err)
	want := c
	want.City, want.CreditLimit, want.Country = "Hamburg", 0, ""
	require.Equal(t, want, changed)
	require.Equal(t, "Berlin", c.City, "the customer With is called on stays as it is")

	for _, tc := range []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"name": "Acme"}, `unknown field "name"`},
		{map[string]string{"id": "CUST-2"}, `unknown field "id"`},
		{map[string]string{"archived": "true"}, `unknown field "archived"`},
		{map[string]string{"city": "Köln", "creditLimit": "-1"}, `creditLimit must be a whole number ≥ 0 in decimal digits, not "-1"`},
		{map[string]string{"creditLimit": "12.5"}, `creditLimit must be a whole number ≥ 0`},
		{map[string]string{"creditLimit": "1e3"}, `creditLimit must be a whole number ≥ 0`},
		{map[string]string{"creditLimit": ""}, `creditLimit must be a whole number ≥ 0`},
		{map[string]string{"creditLimit": "+5"}, `creditLimit must be a whole number ≥ 0`},
		{map[string]string{"creditLimit": " 5"}, `creditLimit must be a whole number ≥ 0`},
		{map[string]string{"creditLimit": "99999999999999999999"}, `creditLimit must be a whole number ≥ 0`},
		{map[string]string{"country": "de"}, `country must be an ISO 3166-1 alpha-2 code`},
		{map[string]string{"country": "DEU"}, `country must be an ISO 3166-1 alpha-2 code`},
		{map[string]string{"legalName": "Acme\x00"}, `legalName "Acme\x00" is not valid text`},
	} {
		got, err := c.With(tc.set)
		require.ErrorIs(t, err, store.ErrInvalidCustomer, "%v", tc.set)
		require.ErrorContains(t, err, tc.want)
		require.Equal(t, c, got, "a refused change changes nothing")
	}
}

func TestInsertAndGetCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	id := customerPrefix() + "CUST_1.a~b"

	_, err := s.GetCustomer(ctx, id)
	require.ErrorIs(t, err, store.ErrNotFound)

	c := sampleCustomer(id)
	c.Version, c.CreatedAt = 7, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) // ignored
	got, err := s.InsertCustomer(ctx, c)
	require.NoError(t, err)
	require.EqualValues(t, 1, got.Version)
	require.WithinDuration(t, time.Now(), got.CreatedAt, time.Minute)
	require.Equal(t, got.CreatedAt, got.UpdatedAt)
	want := c
	want.Version, want.CreatedAt, want.UpdatedAt = 1, got.CreatedAt, got.UpdatedAt
	require.Equal(t, want, got)
	read, err := s.GetCustomer(ctx, id)
	require.NoError(t, err)
	require.Equal(t, got, read)
	many, err := s.GetCustomers(ctx, []string{id, id + "-missing"})
	require.NoError(t, err)
	require.Equal(t, []store.Customer{got}, many, "the customers that exist")

	dup := sampleCustomer(id)
	dup.LegalName = "Someone Else"
	_, err = s.InsertCustomer(ctx, dup)
	require.ErrorIs(t, err, store.ErrExists)
	require.ErrorContains(t, err, "insert customer "+id+": already exists")
	read, err = s.GetCustomer(ctx, id)
	require.NoError(t, err)
	require.Equal(t, got, read, "a duplicate leaves the customer as it was")

	archived := sampleCustomer(customerPrefix() + "ARCH")
	archived.Archived = true
	got, err = s.InsertCustomer(ctx, archived)
	require.NoError(t, err)
	require.True(t, got.Archived)

	for _, tc := range []struct {
		edit func(*store.Customer)
		want string
	}{
		{func(c *store.Customer) { c.ID = "CUST 1" }, `id must be letters, digits`},
		{func(c *store.Customer) { c.ID = "" }, `id must be letters, digits`},
		{func(c *store.Customer) { c.ID = "CUST/1" }, `id must be letters, digits`},
		{func(c *store.Customer) { c.CreditLimit = -1 }, `creditLimit must be a whole number ≥ 0`},
		{func(c *store.Customer) { c.Country = "Germany" }, `country must be`},
	} {
		bad := sampleCustomer(customerPrefix() + "BAD")
		tc.edit(&bad)
		_, err := s.InsertCustomer(ctx, bad)
		require.ErrorIs(t, err, store.ErrInvalidCustomer)
		require.ErrorContains(t, err, tc.want)
		if bad.ID != "" {
			_, err = s.GetCustomer(ctx, bad.ID)
			require.ErrorIs(t, err, store.ErrNotFound, "nothing was written")
		}
	}

	// The database's own checks, for writers that bypass the store.
	for _, values := range []string{
		`('bad id', 'X', 'DE', 0)`, `('', 'X', 'DE', 0)`, `('OK-1', 'X', 'de', 0)`, `('OK-2', 'X', 'DE', -1)`,
	} {
		_, err := pool.Exec(ctx, `INSERT INTO customers (id, legal_name, country, credit_limit) VALUES `+values)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, values)
		require.Equal(t, "23514", pgErr.Code, "check violation for %s", values)
	}
}

func TestUpdateCustomerBumpsVersionOnlyOnChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	id := customerPrefix() + "CUST"
	v1, err := s.InsertCustomer(ctx, sampleCustomer(id))
	require.NoError(t, err)

	v2, err := s.UpdateCustomer(ctx, id, v1.Version, map[string]string{"city": "Hamburg", "creditLimit": "75000", "industry": ""})
	require.NoError(t, err)
	want := v1
	want.City, want.CreditLimit, want.Industry = "Hamburg", 75000, ""
	want.Version, want.UpdatedAt = 2, v2.UpdatedAt
	require.Equal(t, want, v2, "only the named fields change, and the version by one")
	require.True(t, v2.UpdatedAt.After(v1.UpdatedAt))
	read, err := s.GetCustomer(ctx, id)
	require.NoError(t, err)
	require.Equal(t, v2, read, "the row returned is the row written")

	same, err := s.UpdateCustomer(ctx, id, v2.Version, map[string]string{"city": "Hamburg", "creditLimit": "75000"})
	require.NoError(t, err)
	require.Equal(t, v2, same, "writing the values it holds changes neither version nor updatedAt")
	all, err := s.UpdateCustomer(ctx, id, v2.Version, v2.Values())
	require.NoError(t, err)
	require.Equal(t, v2, all)

	none, err := s.UpdateCustomer(ctx, id, v2.Version, nil)
	require.NoError(t, err)
	require.Equal(t, v2, none, "an empty set returns the current row")
	_, err = s.UpdateCustomer(ctx, id, v1.Version, map[string]string{})
	require.ErrorIs(t, err, store.ErrStale, "even an empty set checks the version")
	_, err = s.UpdateCustomer(ctx, "NOPE-"+id, 1, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.UpdateCustomer(ctx, "NOPE-"+id, 1, map[string]string{"city": "Bonn"})
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = s.UpdateCustomer(ctx, id, v2.Version, map[string]string{"city": "Bonn", "legal_name": "x; DROP TABLE customers"})
	require.ErrorIs(t, err, store.ErrInvalidCustomer)
	require.ErrorContains(t, err, `unknown field "legal_name"`)
	_, err = s.UpdateCustomer(ctx, id, v2.Version, map[string]string{"creditLimit": "-5"})
	require.ErrorContains(t, err, "creditLimit must be a whole number ≥ 0")
	read, err = s.GetCustomer(ctx, id)
	require.NoError(t, err)
	require.Equal(t, v2, read, "a refused update writes nothing")

	// version and updated_at belong to the trigger.
	_, err = pool.Exec(ctx, `UPDATE customers SET version = 99, updated_at = 'epoch' WHERE id = $1`, id)
	require.NoError(t, err)
	read, err = s.GetCustomer(ctx, id)
	require.NoError(t, err)
	require.Equal(t, v2, read)

	// Two updates in one transaction: two versions, two different times.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		ts := store.New(tx)
		a, err := ts.UpdateCustomer(ctx, id, v2.Version, map[string]string{"phone": "1"})
		require.NoError(t, err)
		b, err := ts.UpdateCustomer(ctx, id, a.Version, map[string]string{"phone": "2"})
		require.NoError(t, err)
		require.Equal(t, v2.Version+1, a.Version)
		require.Equal(t, v2.Version+2, b.Version)
		require.True(t, b.UpdatedAt.After(a.UpdatedAt), "%s then %s", a.UpdatedAt, b.UpdatedAt)
		return nil
	})
	require.NoError(t, err)
}

func TestStaleCustomerWritesLeaveTheRowUntouched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	id := customerPrefix() + "CUST"
	read, err := s.InsertCustomer(ctx, sampleCustomer(id))
	require.NoError(t, err)

	// Someone else changes it after we read it.
	current, err := s.UpdateCustomer(ctx, id, read.Version, map[string]string{"billingEmail": "billing@acme.example"})
	require.NoError(t, err)

	_, err = s.UpdateCustomer(ctx, id, read.Version, map[string]string{"billingEmail": "old@acme.example", "city": "Bonn"})
	require.ErrorIs(t, err, store.ErrStale)
	_, err = s.SetCustomerArchived(ctx, id, read.Version, true)
	require.ErrorIs(t, err, store.ErrStale)
	_, err = s.UpdateCustomer(ctx, id, 0, map[string]string{"city": "Bonn"})
	require.ErrorIs(t, err, store.ErrStale, "version 0 is no wildcard")
	got, err := s.GetCustomer(ctx, id)
	require.NoError(t, err)
	require.Equal(t, current, got)
}

func TestSetCustomerArchived(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	id := customerPrefix() + "CUST"
	v1, err := s.InsertCustomer(ctx, sampleCustomer(id))
	require.NoError(t, err)

	v2, err := s.SetCustomerArchived(ctx, id, v1.Version, true)
	require.NoError(t, err)
	require.True(t, v2.Archived)
	require.Equal(t, v1.Version+1, v2.Version)
	again, err := s.SetCustomerArchived(ctx, id, v2.Version, true)
	require.NoError(t, err)
	require.Equal(t, v2, again, "archiving an archived customer changes nothing")
	v3, err := s.SetCustomerArchived(ctx, id, v2.Version, false)
	require.NoError(t, err)
	require.False(t, v3.Archived)
	require.Equal(t, v2.Version+1, v3.Version)
	_, err = s.SetCustomerArchived(ctx, "NOPE-"+id, 1, true)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestCustomersChangedSincePagesWithoutLossOrRepeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	prefix := customerPrefix()
	insert := func(s *store.Store, n int) store.Customer {
		c, err := s.InsertCustomer(ctx, sampleCustomer(fmt.Sprintf("%s%03d", prefix, n)))
		require.NoError(t, err)
		return c
	}

	early := insert(s, 900)
	insert(s, 901)
	// 25 customers created in one transaction share one updated_at; created
	// out of ID order.
	batch := mathrand.Perm(25)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, n := range batch {
			insert(store.New(tx), n)
		}
		return nil
	})
	require.NoError(t, err)
	first, err := s.GetCustomer(ctx, fmt.Sprintf("%s%03d", prefix, 0))
	require.NoError(t, err)
	shared := first.UpdatedAt
	require.True(t, shared.After(early.UpdatedAt))
	insert(s, 950)
	archived, err := s.SetCustomerArchived(ctx, fmt.Sprintf("%s%03d", prefix, 10), 1, true)
	require.NoError(t, err)

	// Read it all in pages of 4; between the first two pages, a customer not
	// read yet changes (it moves on to the end) and one is created.
	var seen []store.Customer
	var after store.Cursor
	for page := 0; ; page++ {
		require.Less(t, page, 100)
		rows, err := s.CustomersChangedSince(ctx, time.Time{}, after, 4)
		require.NoError(t, err)
		if len(rows) == 0 {
			break
		}
		require.LessOrEqual(t, len(rows), 4)
		for _, c := range rows {
			if strings.HasPrefix(c.ID, prefix) {
				seen = append(seen, c)
			}
		}
		last := rows[len(rows)-1]
		after = store.Cursor{UpdatedAt: last.UpdatedAt, ID: last.ID}
		if page == 0 {
			_, err := s.UpdateCustomer(ctx, fmt.Sprintf("%s%03d", prefix, 20), 1, map[string]string{"phone": "+49 40 1"})
			require.NoError(t, err)
			insert(s, 960)
		}
	}

	// Every customer once, in (updated_at, id) order: as they stand now.
	rows, err := pool.Query(ctx, `SELECT id FROM customers WHERE starts_with(id, $1) ORDER BY updated_at, id`, prefix)
	require.NoError(t, err)
	want, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, want, 2+25+2)
	ids := make([]string, len(seen))
	sharing := 0
	for i, c := range seen {
		ids[i] = c.ID
		if c.UpdatedAt.Equal(shared) {
			sharing++
		}
		if i > 0 {
			prev := seen[i-1]
			require.True(t, prev.UpdatedAt.Before(c.UpdatedAt) || prev.UpdatedAt.Equal(c.UpdatedAt) && prev.ID < c.ID,
				"%s (%s) before %s (%s)", prev.ID, prev.UpdatedAt, c.ID, c.UpdatedAt)
		}
	}
	require.Equal(t, want, ids, "no customer lost or repeated")
	require.Equal(t, 23, sharing, "the batch, less the archived and the changed one, shares one updated_at")
	require.Contains(t, seen, archived, "archived customers are included")

	// since: from the batch on; and a cursor in the middle of the batch.
	changed, err := s.CustomersChangedSince(ctx, shared, store.Cursor{}, 1000)
	require.NoError(t, err)
	require.Equal(t, ids[2:], idsWithPrefix(changed, prefix), "from the batch on")
	changed, err = s.CustomersChangedSince(ctx, shared, store.Cursor{UpdatedAt: shared, ID: fmt.Sprintf("%s%03d", prefix, 5)}, 1000)
	require.NoError(t, err)
	require.Equal(t, ids[2+6:], idsWithPrefix(changed, prefix), "after 000–005 of the batch")
	changed, err = s.CustomersChangedSince(ctx, seen[len(seen)-1].UpdatedAt.Add(time.Microsecond), store.Cursor{}, 10)
	require.NoError(t, err)
	require.Empty(t, idsWithPrefix(changed, prefix))

	_, err = s.CustomersChangedSince(ctx, time.Time{}, store.Cursor{}, 0)
	require.Error(t, err)
}

func idsWithPrefix(cs []store.Customer, prefix string) []string {
	var ids []string
	for _, c := range cs {
		if strings.HasPrefix(c.ID, prefix) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

func TestCustomerIDsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	prefix := customerPrefix()
	var want []string
	for _, n := range mathrand.Perm(8) {
		c := sampleCustomer(fmt.Sprintf("%s%02d", prefix, n))
		c.Archived = n == 3
		_, err := s.InsertCustomer(ctx, c)
		require.NoError(t, err)
		want = append(want, c.ID)
	}
	slices.Sort(want)

	var got []string
	after := prefix // every ID of the test comes after its prefix
	for page := 0; ; page++ {
		require.Less(t, page, 10)
		ids, err := s.CustomerIDs(ctx, after, 3)
		require.NoError(t, err)
		require.LessOrEqual(t, len(ids), 3)
		if len(ids) == 0 || !strings.HasPrefix(ids[0], prefix) {
			break
		}
		for _, id := range ids {
			if strings.HasPrefix(id, prefix) {
				got = append(got, id)
			}
		}
		after = ids[len(ids)-1]
	}
	require.Equal(t, want, got, "archived ones included, each once, in order")
	_, err := s.CustomerIDs(ctx, "", 0)
	require.Error(t, err)
}

func TestWatermarkNeverMovesBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	name := "customer-sync/" + customerPrefix()

	_, ok, err := s.Watermark(ctx, name)
	require.NoError(t, err)
	require.False(t, ok)

	t1 := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	require.NoError(t, s.AdvanceWatermark(ctx, name, t1))
	at, ok, err := s.Watermark(ctx, name)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, t1, at)

	require.NoError(t, s.AdvanceWatermark(ctx, name, t1.Add(-time.Hour)), "going back is ignored, not an error")
	at, _, err = s.Watermark(ctx, name)
	require.NoError(t, err)
	require.Equal(t, t1, at, "a watermark never goes back")
	require.NoError(t, s.AdvanceWatermark(ctx, name, t1), "nor is staying where it is")
	at, _, err = s.Watermark(ctx, name)
	require.NoError(t, err)
	require.Equal(t, t1, at)

	t2 := t1.Add(time.Microsecond)
	require.NoError(t, s.AdvanceWatermark(ctx, name, t2))
	at, _, err = s.Watermark(ctx, name)
	require.NoError(t, err)
	require.Equal(t, t2, at)

	_, ok, err = s.Watermark(ctx, name+"other")
	require.NoError(t, err)
	require.False(t, ok, "watermarks are by name")
}

func TestIgnoreRecordIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	const integration, system = "customer-sync", "crm"
	record := customerPrefix() + "company-42"

	ignored, err := s.IsIgnored(ctx, integration, system, record)
	require.NoError(t, err)
	require.False(t, ignored)

	require.NoError(t, s.IgnoreRecord(ctx, integration, system, record, "alice", "a supplier, not a customer"))
	require.NoError(t, s.IgnoreRecord(ctx, integration, system, record, "bob", "duplicate of another"), "ignoring again is harmless")
	ignored, err = s.IsIgnored(ctx, integration, system, record)
	require.NoError(t, err)
	require.True(t, ignored)

	var actor, reason string
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT actor, reason, count(*) OVER () FROM ignored_records
		WHERE integration = $1 AND system = $2 AND record_id = $3`, integration, system, record).Scan(&actor, &reason, &n))
	require.Equal(t, 1, n)
	require.Equal(t, "alice", actor, "the first decision stays")
	require.Equal(t, "a supplier, not a customer", reason)

	for _, other := range [][3]string{{"lead-to-crm", system, record}, {integration, "erp", record}, {integration, system, record + "x"}} {
		ignored, err = s.IsIgnored(ctx, other[0], other[1], other[2])
		require.NoError(t, err)
		require.False(t, ignored, "%v", other)
	}
}
