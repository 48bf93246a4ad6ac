package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

func TestOpenCreatesDatabaseAndMigratesOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewDatabaseURL(t)

	const starters = 4
	pools := make([]*pgxpool.Pool, starters)
	errs := make([]error, starters)
	var wg sync.WaitGroup
	for i := range starters {
		wg.Go(func() { pools[i], errs[i] = store.Open(ctx, url) })
	}
	wg.Wait()
	for i := range starters {
		require.NoError(t, errs[i])
		defer pools[i].Close()
	}

	var applied, distinct int
	require.NoError(t, pools[0].QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&applied, &distinct))
	require.Equal(t, distinct, applied, "each migration must be applied once")
	require.Positive(t, applied)

	// Opening again is a no-op.
	again, err := store.Open(ctx, url)
	require.NoError(t, err)
	again.Close()
}

func TestOpenReportsUnreachableServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Open(ctx, "postgres://postgres@127.0.0.1:1/signalbox?connect_timeout=2")
	require.ErrorContains(t, err, "check DATABASE_URL")
}

func TestAuditInsertIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	first := store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:l1", RunID: "r1", Seq: 1, At: at,
		Actor: "system", Action: "start", FromStatus: "Pending", ToStatus: "Running", Details: map[string]any{}}
	second := first
	second.Seq, second.At, second.Actor, second.Action = 2, at.Add(time.Second), "alice", "approve"
	second.Reason, second.Details = "consent on file", map[string]any{"choice": "create"}

	require.NoError(t, s.InsertAudit(ctx, first, second))
	require.NoError(t, s.InsertAudit(ctx, first, second), "a retried insert must be harmless")
	other := first
	other.RunID, other.At = "r2", at.Add(time.Minute)
	require.NoError(t, s.InsertAudit(ctx, other), "another run may reuse a sequence number")

	trail, err := s.AuditTrail(ctx, "lead-to-crm:l1")
	require.NoError(t, err)
	require.Len(t, trail, 3)
	require.Equal(t, []store.AuditEvent{first, second, other}, []store.AuditEvent{trail[0], trail[1], trail[2]})
}

func TestLinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	_, err := s.GetLink(ctx, "lead-to-crm", "l1", "crm")
	require.ErrorIs(t, err, store.ErrNotFound)

	l := store.Link{Integration: "lead-to-crm", SourceKey: "l1", TargetSystem: "crm", TargetID: "101",
		SyncedHash: "h1", WorkflowID: "lead-to-crm:l1", SyncedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	require.NoError(t, s.SaveLink(ctx, l))
	l.SyncedHash = "h2"
	require.NoError(t, s.SaveLink(ctx, l), "saving again replaces the hash")
	got, err := s.GetLink(ctx, "lead-to-crm", "l1", "crm")
	require.NoError(t, err)
	require.Equal(t, l, got)

	other := l
	other.SourceKey, other.TargetID = "l2", "102"
	require.NoError(t, s.SaveLink(ctx, other))
	links, err := s.LinksOf(ctx, "lead-to-crm", "crm", []string{"l1", "l2", "l3"})
	require.NoError(t, err)
	require.Equal(t, map[string]store.Link{"l1": l, "l2": other}, links, "every key that has a link, and no other")
	byTarget, err := s.LinksToTargets(ctx, "lead-to-crm", "crm", []string{"102", "999"})
	require.NoError(t, err)
	require.Equal(t, map[string]store.Link{"102": other}, byTarget, "by the record they name")
}

func TestNotificationsAreClaimedOnceAndRememberDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	const key, lease = "lead-to-crm:l1/synced", time.Minute
	claim := func() store.Claim {
		c, err := s.ClaimNotification(ctx, key, "sales", "lead-to-crm:l1", lease)
		require.NoError(t, err)
		return c
	}
	require.Equal(t, store.Claimed, claim())
	require.Equal(t, store.Busy, claim(), "a second attempt at the same time must not send too")

	require.NoError(t, s.ReleaseNotification(ctx, key))
	require.Equal(t, store.Claimed, claim(), "a failed attempt released its claim")

	c, err := s.ClaimNotification(ctx, key, "sales", "lead-to-crm:l1", 0)
	require.NoError(t, err)
	require.Equal(t, store.Claimed, c, "a claim older than the lease is taken over (its holder died)")

	require.NoError(t, s.MarkNotificationSent(ctx, key))
	require.Equal(t, store.AlreadySent, claim())
	require.NoError(t, s.ReleaseNotification(ctx, key))
	require.Equal(t, store.AlreadySent, claim(), "a delivered notification stays delivered")
}

func TestInvoices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	_, err := s.GetInvoice(ctx, "INV-1")
	require.ErrorIs(t, err, store.ErrNotFound)

	inv := store.Invoice{ID: "INV-1", CustomerID: "C-1", CustomerName: "Acme", CustomerEmail: "ap@acme.example", Currency: "eur",
		DueDate: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), Status: store.InvoiceReady,
		Lines: []store.InvoiceLine{{LineNo: 1, Description: "Consulting", Quantity: 3, UnitAmount: 15000}, {LineNo: 2, Description: "Travel", Quantity: 1, UnitAmount: 4200}}}
	require.NoError(t, s.InsertInvoice(ctx, inv))
	require.NoError(t, s.InsertInvoice(ctx, inv), "inserting again is harmless")
	got, err := s.GetInvoice(ctx, "INV-1")
	require.NoError(t, err)
	got.DueDate = got.DueDate.UTC()
	require.Positive(t, got.Version)
	inv.Version = got.Version
	require.Equal(t, inv, got)

	ids, err := s.InvoiceIDs(ctx, store.InvoiceReady)
	require.NoError(t, err)
	require.Equal(t, []string{"INV-1"}, ids)
	status, err := s.InvoiceStatus(ctx, "INV-1")
	require.NoError(t, err)
	require.Equal(t, store.InvoiceReady, status)
	_, err = s.InvoiceStatus(ctx, "INV-404")
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = s.UpdateInvoiceHeader(ctx, "INV-1", 0, store.InvoiceHeader{CustomerName: "Acme Ltd", CustomerEmail: "billing@acme.example",
		Currency: "gbp", DueDate: time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	_, err = s.SetBillingState(ctx, "INV-1", store.BillingState{StripeCustomerID: "cus_1"})
	require.NoError(t, err)
	_, err = s.SetBillingState(ctx, "INV-1", store.BillingState{Status: store.InvoiceBilled, StripeInvoiceID: "in_1", StripeStatus: "open"})
	require.NoError(t, err)
	got, err = s.GetInvoice(ctx, "INV-1")
	require.NoError(t, err)
	require.Equal(t, "billing@acme.example", got.CustomerEmail)
	require.Equal(t, "gbp", got.Currency)
	require.Equal(t, store.InvoiceBilled, got.Status)
	require.Equal(t, "cus_1", got.StripeCustomerID, "an empty value keeps what was there")
	require.Equal(t, "in_1", got.StripeInvoiceID)
	require.Equal(t, "open", got.StripeStatus)
	ids, err = s.InvoiceIDs(ctx, store.InvoiceReady)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = s.SetBillingState(ctx, "INV-404", store.BillingState{Status: "billed"})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestInvoiceVersionGuardsEveryWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	inv := store.Invoice{ID: "INV-V", CustomerID: "C", CustomerName: "Acme", CustomerEmail: "ap@acme.example", Currency: "eur",
		DueDate: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), Status: store.InvoiceReady,
		Lines: []store.InvoiceLine{{LineNo: 1, Description: "A", Quantity: 1, UnitAmount: 100}}}
	require.NoError(t, s.InsertInvoice(ctx, inv))
	read, err := s.GetInvoice(ctx, "INV-V")
	require.NoError(t, err)

	// The billing system changes a line: the version moves on.
	more := inv
	more.Lines = append(more.Lines, store.InvoiceLine{LineNo: 2, Description: "B", Quantity: 1, UnitAmount: 5})
	require.NoError(t, s.InsertInvoice(ctx, more))
	now, err := s.GetInvoice(ctx, "INV-V")
	require.NoError(t, err)
	require.Greater(t, now.Version, read.Version, "a new line is a change of the invoice")

	header := store.InvoiceHeader{CustomerName: "Acme Ltd", CustomerEmail: "ap@acme.example", Currency: "eur", DueDate: inv.DueDate}
	_, err = s.UpdateInvoiceHeader(ctx, "INV-V", read.Version, header)
	require.ErrorIs(t, err, store.ErrStale, "a stale copy does not overwrite")
	unchanged, err := s.GetInvoice(ctx, "INV-V")
	require.NoError(t, err)
	require.Equal(t, "Acme", unchanged.CustomerName)
	version, err := s.UpdateInvoiceHeader(ctx, "INV-V", now.Version, header)
	require.NoError(t, err)
	require.Equal(t, now.Version+1, version)
	_, err = s.UpdateInvoiceHeader(ctx, "INV-404", 1, header)
	require.ErrorIs(t, err, store.ErrNotFound)

	// Billed by hand, then a late rejection: it stays billed, and where stays recorded.
	_, err = s.SetBillingState(ctx, "INV-V", store.BillingState{Status: store.InvoiceBilled, BilledBy: store.BilledByHand, BilledRef: "paper invoice 7"})
	require.NoError(t, err)
	_, err = s.SetBillingState(ctx, "INV-V", store.BillingState{Status: store.InvoiceRejected})
	require.NoError(t, err)
	_, err = s.SetBillingState(ctx, "INV-V", store.BillingState{Status: store.InvoiceBilled, BilledBy: store.BilledBySignalbox, BilledRef: "in_2"})
	require.NoError(t, err)
	got, err := s.GetInvoice(ctx, "INV-V")
	require.NoError(t, err)
	require.Equal(t, store.InvoiceBilled, got.Status)
	require.Equal(t, store.BilledByHand, got.BilledBy, "the first billing recorded stays")
	require.Equal(t, "paper invoice 7", got.BilledRef)
}

func TestSendSlotsSpaceRequestsAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Two stores on one database stand for two worker processes.
	url := storetest.NewDatabaseURL(t)
	var slots []store.SendSlots
	for range 2 {
		pool, err := store.Open(ctx, url)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		slots = append(slots, store.SendSlots{Store: store.New(pool), Target: "crm"})
	}
	const interval = 20 * time.Millisecond
	var mu sync.Mutex
	var got []time.Time
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			at, err := slots[i%2].Reserve(ctx, interval)
			require.NoError(t, err)
			mu.Lock()
			got = append(got, at)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(got); i++ {
		require.GreaterOrEqual(t, got[i].Sub(got[i-1]), interval, "reservation %d is spaced from the one before", i)
	}
	other, err := store.SendSlots{Store: slots[0].Store, Target: "billing"}.Reserve(ctx, interval)
	require.NoError(t, err)
	require.Less(t, other.Sub(got[0]), time.Duration(len(got))*interval/2, "each target has its own spacing")
}

// A rate lifted high (a benchmark's 100000/s) spaces requests by
// microseconds: the interval reaches PostgreSQL as a number, not as Go's
// "10µs", which it cannot read.
func TestSendSlotsTakeMicrosecondIntervals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	slots := store.SendSlots{Store: store.New(storetest.NewPool(t)), Target: "crm"}
	first, err := slots.Reserve(ctx, 10300*time.Nanosecond)
	require.NoError(t, err)
	second, err := slots.Reserve(ctx, 10300*time.Nanosecond)
	require.NoError(t, err)
	require.GreaterOrEqual(t, second.Sub(first), 10*time.Microsecond)
}

func TestClaimsOfABatchAgreeWithClaimsOfOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(storetest.NewPool(t))
	const ttl = time.Minute
	// An item holds a, with no record yet; b's earlier holder made its record.
	_, err := s.ClaimPerson(ctx, "a", "item-a", ttl)
	require.NoError(t, err)
	_, err = s.ClaimPerson(ctx, "b", "item-b", ttl)
	require.NoError(t, err)
	require.NoError(t, s.RecordPersonContact(ctx, "b", "item-b", "co-b"))

	claims, err := s.ClaimPersons(ctx, []string{"a", "b", "c"}, "batch", ttl)
	require.NoError(t, err)
	require.Equal(t, store.PersonClaim{Busy: true}, claims["a"], "a is the item's")
	require.Equal(t, store.PersonClaim{ContactID: "co-b"}, claims["b"], "b's record is known")
	require.Equal(t, store.PersonClaim{}, claims["c"], "c is free")

	require.NoError(t, s.RecordPersonContacts(ctx, "batch", map[string]string{"c": "co-c", "a": "co-a"}))
	again, err := s.ClaimPerson(ctx, "c", "item-c", ttl)
	require.NoError(t, err)
	require.Equal(t, store.PersonClaim{ContactID: "co-c"}, again, "the batch's record is found by the next claimant")
	held, err := s.ClaimPerson(ctx, "a", "someone-else", ttl)
	require.NoError(t, err)
	require.True(t, held.Busy, "a batch records only what it claimed: a stays the item's")

	links := []store.Link{{Integration: "customer-sync", SourceKey: "c1", TargetSystem: "crm", TargetID: "1"},
		{Integration: "customer-sync", SourceKey: "c2", TargetSystem: "crm", TargetID: "2", Baseline: store.Baseline{"x": {Target: "1", Source: "1"}}}}
	require.NoError(t, s.SaveLinks(ctx, links...))
	got, err := s.LinksOf(ctx, "customer-sync", "crm", []string{"c1", "c2"})
	require.NoError(t, err)
	require.Equal(t, "2", got["c2"].TargetID)
	require.Equal(t, links[1].Baseline, got["c2"].Baseline)
}
