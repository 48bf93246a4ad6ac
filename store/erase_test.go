package store_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

// scheme is the integrations' scheme as signals passes it (api's names).
var scheme = store.ErasureScheme{
	ItemID:    func(integration, key string) string { return integration + ":" + key },
	Invoices:  "invoice-to-billing",
	Customers: "customer-sync",
	People:    map[string][]string{"lead-to-crm": {"email", "firstname", "lastname", "phone", "jobtitle"}},
}

func TestEveryTableHasAnErasurePlan(t *testing.T) {
	t.Parallel()
	pool := storetest.NewPool(t)
	rows, err := pool.Query(context.Background(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, slices.Sorted(maps.Keys(store.ErasurePlan)), tables,
		"every table must say what erasing a person's data does to it (store.ErasurePlan, docs/privacy.md)")
}

// holding counts, in every text and JSON column of the schema, the rows that
// hold s in any case: found the way a new table's would be.
func holding(t *testing.T, pool *pgxpool.Pool, s string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY')`)
	require.NoError(t, err)
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var c [2]string
		return c, r.Scan(&c[0], &c[1])
	})
	require.NoError(t, err)
	out := map[string]int64{}
	for _, c := range cols {
		var n int64
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{c[0]}.Sanitize()+
			` WHERE strpos(lower(`+pgx.Identifier{c[1]}.Sanitize()+`::text), lower($1)) > 0`, s).Scan(&n))
		if n > 0 {
			out[c[0]+"."+c[1]] = n
		}
	}
	return out
}

func TestErasePersonalData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	const ada, bob = "Ada.L@Example.com", "bob@example.com"
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

	// Ada's lead (synced, linked), Bob's lead, and Ada's second lead, found
	// in Temporal only (it waits for consent: no link yet).
	settled := func(v string) store.Settled { return store.Settled{Target: v, Source: v} }
	require.NoError(t, s.SaveLinks(ctx,
		store.Link{Integration: "lead-to-crm", SourceKey: "l1", TargetSystem: "crm", TargetID: "501", WorkflowID: "lead-to-crm:l1", SyncedAt: at,
			Baseline: store.Baseline{"email": {Target: "ada.l@example.com", Source: ada}, "firstname": settled("Ada"), "lastname": settled("Lovelace"),
				"phone": settled("+44 20 7946 0000"), "company": settled("Engines"), "lead_source": settled("webform")}},
		store.Link{Integration: "lead-to-crm", SourceKey: "l2", TargetSystem: "crm", TargetID: "502", WorkflowID: "lead-to-crm:l2", SyncedAt: at,
			Baseline: store.Baseline{"email": settled(bob), "firstname": settled("Bob"), "lastname": settled("Lovelace")}},
		// Ada's invoices' Stripe customer: a billing link, kept.
		store.Link{Integration: "invoice-to-billing", SourceKey: "customer:C-ADA", TargetSystem: "stripe", TargetID: "cus_ada", SyncedAt: at},
		// A company billed at Ada's address.
		store.Link{Integration: "customer-sync", SourceKey: "CUST-ADA", TargetSystem: "crm", TargetID: "9001", WorkflowID: "customer-sync:CUST-ADA", SyncedAt: at,
			Baseline: store.Baseline{"billing_email": settled("ada.l@example.com"), "phone": settled("+49 30 1")}},
	))

	// Ada's invoice, billed; Bob's, with a line that names Ada's address.
	lines := []store.InvoiceLine{{LineNo: 1, Description: "Consulting", Quantity: 3, UnitAmount: 15000}, {LineNo: 2, Description: "Travel", Quantity: 1, UnitAmount: 4200}}
	require.NoError(t, s.InsertInvoice(ctx, store.Invoice{ID: "INV-ADA", CustomerID: "C-ADA", CustomerName: "Ada Lovelace", CustomerEmail: " ADA.L@example.com",
		Currency: "eur", DueDate: at.AddDate(0, 1, 0), Status: store.InvoiceReady, Lines: lines}))
	_, err := s.SetBillingState(ctx, "INV-ADA", store.BillingState{Status: store.InvoiceBilled, StripeCustomerID: "cus_ada", StripeInvoiceID: "in_ada",
		StripeStatus: "open", BilledBy: store.BilledBySignalbox, BilledRef: "in_ada"})
	require.NoError(t, err)
	require.NoError(t, s.InsertInvoice(ctx, store.Invoice{ID: "INV-BOB", CustomerID: "C-BOB", CustomerName: "Bob", CustomerEmail: bob,
		Currency: "eur", DueDate: at.AddDate(0, 1, 0), Status: store.InvoiceReady,
		Lines: []store.InvoiceLine{{LineNo: 1, Description: "Referral by " + ada + " (thanks)", Quantity: 1, UnitAmount: 700}}}))
	before, err := s.GetInvoice(ctx, "INV-ADA")
	require.NoError(t, err)

	c := store.Customer{ID: "CUST-ADA", LegalName: "Engines Ltd", BillingEmail: "ada.l@example.com", Phone: "+49 30 1", Country: "GB"}
	_, err = s.InsertCustomer(ctx, c)
	require.NoError(t, err)

	ev := func(wf string, seq int, action, reason string, details map[string]any) store.AuditEvent {
		integration, _, _ := strings.Cut(wf, ":")
		return store.AuditEvent{Integration: integration, WorkflowID: wf, RunID: "r1", Seq: seq, At: at, Actor: "alice", Action: action, Reason: reason, Details: details}
	}
	require.NoError(t, s.InsertAudit(ctx,
		ev("lead-to-crm:l1", 1, "accepted", "started by intake", nil),
		ev("lead-to-crm:l1", 2, "owner_wins", "consent given by Ada on the phone",
			map[string]any{"contact": "501", "lastname": map[string]string{"crm": "Lovelace", "written": "Lovelace"}}),
		ev("lead-to-crm:l2", 1, "approve", "Bob is not "+strings.ToUpper(ada)+"; Ada said so", map[string]any{"exception": "DuplicateSuspected"}),
		ev("invoice-to-billing:INV-ADA", 1, "amend", "typo", map[string]any{"set": map[string]string{"customerEmail": ada}, "total": 1200000}),
	))
	// Ada's second lead waits in the inbox, its summary naming her.
	raised := ev("lead-to-crm:l3", 1, "raised", "the lead "+ada+" did not consent", map[string]any{"kind": "ConsentMissing", "deciders": "sales"})
	raised.FromStatus, raised.ToStatus = "Running", "Blocked"
	require.NoError(t, s.InsertAudit(ctx, raised))

	for _, n := range []struct{ key, wf string }{{"lead-to-crm:l1/synced/abc", "lead-to-crm:l1"}, {"lead-to-crm:l3/waiting/1", "lead-to-crm:l3"},
		{"lead-to-crm:l2/synced/def", "lead-to-crm:l2"}} {
		_, err := s.ClaimNotification(ctx, n.key, "sales", n.wf, time.Minute)
		require.NoError(t, err)
	}
	for _, holder := range []string{"lead-to-crm/l1", "lead-to-crm/l3", "lead-to-crm/l2"} {
		_, err := s.ClaimPerson(ctx, "digest-of-"+holder, holder, time.Minute)
		require.NoError(t, err)
	}

	run, _, err := s.BeginReconcile(ctx, "lead-to-crm", "reconcile:lead-to-crm", "cli:alice")
	require.NoError(t, err)
	str := func(v string) *string { return &v }
	applied, err := s.RecordReconcilePage(ctx, store.ReconcilePage{RunID: run.ID, Phase: store.PhaseLinked, NextPhase: store.PhaseDone, Compared: 2,
		Differences: []store.Difference{
			{SourceKey: "l1", TargetID: "501", Class: "drifted", Field: "firstName", Owner: "web-form", Source: str("Ada"), Target: str("Adah"), Baseline: str("Ada"), Action: store.DiffRepair},
			{SourceKey: "l2", TargetID: "502", Class: "drifted", Field: "firstName", Owner: "web-form", Source: str("Bob"), Target: str("Rob"), Baseline: str("Bob"), Action: store.DiffRepair},
		},
		Handoffs: []store.Handoff{
			{Integration: "lead-to-crm", Key: "l1", Signal: "resync", Why: "Ada's first name was edited in the CRM"},
			{Integration: "lead-to-crm", Key: "l2", Signal: "resync", Why: "Bob's first name was edited in the CRM"},
		}})
	require.NoError(t, err)
	require.True(t, applied)
	require.NoError(t, s.AcceptDifference(ctx, "lead-to-crm", "l1", "drifted", "fp1", "alice", "Ada asked for it"))
	require.NoError(t, s.AcceptDifference(ctx, "invoice-to-billing", "INV-ADA", "amount-differs", "fp2", "carol", "agreed with "+ada))
	require.NoError(t, s.IgnoreRecord(ctx, "customer-sync", "crm", "9002", "carol", "a duplicate of "+ada+"'s company"))

	require.NotEmpty(t, holding(t, pool, ada))
	req := store.ErasureRequest{Email: "  ada.l@EXAMPLE.com ", Scheme: scheme, Items: []string{"lead-to-crm:l3"}}

	preview, err := s.ErasePersonalData(ctx, req)
	require.NoError(t, err)
	wantChanges := []store.TableChange{
		{Table: "audit_events", Action: "masked", Rows: 4},
		{Table: "customers", Action: "masked", Rows: 1},
		{Table: "external_links", Action: "deleted", Rows: 1},
		{Table: "external_links", Action: "masked", Rows: 1},
		{Table: "ignored_records", Action: "masked", Rows: 1},
		{Table: "invoice_lines", Action: "masked", Rows: 1},
		{Table: "invoices", Action: "masked", Rows: 1},
		{Table: "notifications", Action: "deleted", Rows: 2},
		{Table: "person_claims", Action: "deleted", Rows: 2},
		{Table: "reconcile_accepted", Action: "deleted", Rows: 1},
		{Table: "reconcile_accepted", Action: "masked", Rows: 1},
		{Table: "reconcile_differences", Action: "masked", Rows: 1},
		{Table: "reconcile_handoffs", Action: "masked", Rows: 1},
		{Table: "waiting_items", Action: "masked", Rows: 1},
	}
	require.Equal(t, wantChanges, preview.Changes)
	require.Equal(t, []string{"customer-sync:CUST-ADA", "invoice-to-billing:INV-ADA", "lead-to-crm:l1", "lead-to-crm:l3"}, preview.Items)
	require.Equal(t, []string{"invoice-to-billing:INV-BOB", "lead-to-crm:l2"}, preview.Mentioning)
	require.Equal(t, []string{"customer-sync", "invoice-to-billing", "lead-to-crm"}, preview.Integrations)
	require.Equal(t, []string{"crm 501", "crm 9001", "stripe customer cus_ada", "stripe invoice in_ada"}, preview.Elsewhere)
	require.Empty(t, preview.Residue)
	require.NotEmpty(t, holding(t, pool, ada), "a preview changes nothing")
	_, err = s.GetLink(ctx, "lead-to-crm", "l1", "crm")
	require.NoError(t, err, "a preview changes nothing")

	req.Commit = true
	req.Audit = func(e store.Erasure) ([]store.AuditEvent, error) {
		return []store.AuditEvent{ev("erasure:e1", 1, "personal_data_erased", "on request", map[string]any{"rows": e.Rows()})}, nil
	}
	done, err := s.ErasePersonalData(ctx, req)
	require.NoError(t, err)
	require.Equal(t, preview.Changes, done.Changes, "the preview counts what is done")
	require.Empty(t, done.Residue)
	require.Empty(t, holding(t, pool, ada), "no column of any table holds the address")

	// Money: Ada's invoice keeps everything that decides billing.
	after, err := s.GetInvoice(ctx, "INV-ADA")
	require.NoError(t, err)
	require.Equal(t, store.Erased, after.CustomerEmail)
	require.Equal(t, "Ada Lovelace", after.CustomerName, "an invoice must name whom it bills")
	after.CustomerEmail, after.Version = before.CustomerEmail, before.Version
	require.Equal(t, before, after, "amounts, lines, status, billed_by/ref and Stripe IDs are untouched")
	_, err = s.GetLink(ctx, "invoice-to-billing", "customer:C-ADA", "stripe")
	require.NoError(t, err, "the billing link stays")
	bobs, err := s.GetInvoice(ctx, "INV-BOB")
	require.NoError(t, err)
	require.Equal(t, "Referral by [erased] (thanks)", bobs.Lines[0].Description)
	require.Equal(t, int64(700), bobs.Lines[0].UnitAmount)
	require.Equal(t, bob, bobs.CustomerEmail)

	// Ada's lead link is gone, Bob's stays; the company's link stays, the address cleared.
	_, err = s.GetLink(ctx, "lead-to-crm", "l1", "crm")
	require.ErrorIs(t, err, store.ErrNotFound)
	l2, err := s.GetLink(ctx, "lead-to-crm", "l2", "crm")
	require.NoError(t, err)
	require.Equal(t, "Lovelace", l2.Baseline["lastname"].Target, "another person's values stay")
	co, err := s.GetLink(ctx, "customer-sync", "CUST-ADA", "crm")
	require.NoError(t, err)
	require.Equal(t, store.Baseline{"billing_email": {}, "phone": settled("+49 30 1")}, co.Baseline)
	cust, err := s.GetCustomer(ctx, "CUST-ADA")
	require.NoError(t, err)
	require.Empty(t, cust.BillingEmail)
	require.Equal(t, "Engines Ltd", cust.LegalName)

	// The audit trail keeps every row; Ada's values are gone from her items' rows.
	trail, err := s.AuditTrail(ctx, "lead-to-crm:l1")
	require.NoError(t, err)
	require.Len(t, trail, 2)
	require.Equal(t, "consent given by [erased] on the phone", trail[1].Reason)
	require.Equal(t, map[string]any{"contact": "501", "lastname": map[string]any{"crm": store.Erased, "written": store.Erased}}, trail[1].Details)
	trail, err = s.AuditTrail(ctx, "lead-to-crm:l2")
	require.NoError(t, err)
	require.Equal(t, "Bob is not [erased]; Ada said so", trail[0].Reason, "only the address is masked in others' rows")
	var raw []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT details FROM audit_events WHERE workflow_id = 'invoice-to-billing:INV-ADA'`).Scan(&raw))
	require.JSONEq(t, `{"set": {"customerEmail": "[erased]"}, "total": 1200000}`, string(raw), "numbers stay as they were")
	trail, err = s.AuditTrail(ctx, "erasure:e1")
	require.NoError(t, err)
	require.Len(t, trail, 1, "the erasure's own audit event is written with it")
	require.EqualValues(t, done.Rows(), trail[0].Details["rows"])

	waiting, ok, err := s.WaitingItem(ctx, "lead-to-crm:l3")
	require.NoError(t, err)
	require.True(t, ok, "the item still waits")
	require.Equal(t, "the lead [erased] did not consent", waiting.Summary)

	var notifications, claims []string
	rows, err := pool.Query(ctx, `SELECT workflow_id FROM notifications ORDER BY 1`)
	require.NoError(t, err)
	notifications, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"lead-to-crm:l2"}, notifications)
	rows, err = pool.Query(ctx, `SELECT holder FROM person_claims ORDER BY 1`)
	require.NoError(t, err)
	claims, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"lead-to-crm/l2"}, claims)

	report, err := s.GetReconcileReport(ctx, run.ID)
	require.NoError(t, err)
	require.Len(t, report.Differences, 2, "the report keeps its rows")
	for _, d := range report.Differences {
		if d.SourceKey == "l1" {
			require.Equal(t, []string{store.Erased, store.Erased, store.Erased}, []string{*d.Source, *d.Target, *d.Baseline})
		} else {
			require.Equal(t, "Rob", *d.Target)
		}
	}
	var why string
	require.NoError(t, pool.QueryRow(ctx, `SELECT request->>'why' FROM reconcile_handoffs WHERE source_key = 'l1'`).Scan(&why))
	require.Equal(t, "[erased]'s first name was edited in the CRM", why)
	accepted, err := s.AcceptedDifferences(ctx, "lead-to-crm", []string{"l1"})
	require.NoError(t, err)
	require.Empty(t, accepted, "the person's lead's accepted differences are gone")
	accepted, err = s.AcceptedDifferences(ctx, "invoice-to-billing", []string{"INV-ADA"})
	require.NoError(t, err)
	require.Len(t, accepted, 1, "an accepted amount difference stays (money)")

	// Again: nothing is left.
	req.Audit = nil
	again, err := s.ErasePersonalData(ctx, req)
	require.NoError(t, err)
	require.Zero(t, again.Rows(), "%+v", again.Changes)
	require.Empty(t, again.Residue)
}

func TestErasureReportsWhatItCannotErase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	// An operator named by the address: the actor is who acted, and stays.
	require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:x", RunID: "r", Seq: 1,
		At: time.Now(), Actor: "ops@example.com", Action: "approve", Reason: "fine"}))
	e, err := s.ErasePersonalData(ctx, store.ErasureRequest{Email: "OPS@example.com", Scheme: scheme})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"audit_events.actor": 1}, e.Residue)
	require.Zero(t, e.Rows())
}

func TestMaskedJSONKeepsItsShape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	details := map[string]any{"list": []any{"a", "x@y.example", json.Number("12345678901234567890")}, "x@y.example": true, "n": nil}
	require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:y", RunID: "r", Seq: 1,
		At: time.Now(), Actor: "alice", Action: "amend", Details: details}))
	_, err := s.ErasePersonalData(ctx, store.ErasureRequest{Email: "X@Y.example", Scheme: scheme, Commit: true})
	require.NoError(t, err)
	var raw []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT details FROM audit_events WHERE workflow_id = 'lead-to-crm:y'`).Scan(&raw))
	require.JSONEq(t, `{"list": ["a", "[erased]", 12345678901234567890], "[erased]": true, "n": null}`, string(raw))
}

func TestAnAddressIsMatchedAsAWholeAndInAnyCase(t *testing.T) {
	t.Parallel()
	const a = "a.b@x.example"
	for text, want := range map[string]string{
		"write to A.B@X.Example.":            "write to [erased].",
		`{"email":"a.b@x.example"}`:          `{"email":"[erased]"}`,
		"<a.b@x.example>, a.b@x.example":     "<[erased]>, [erased]",
		"aa.b@x.example":                     "aa.b@x.example",
		"c.a.b@x.example":                    "c.a.b@x.example",
		"a.b@x.example.org":                  "a.b@x.example.org",
		"a.b@x.examples":                     "a.b@x.examples",
		"a.b@x.example-shop.com":             "a.b@x.example-shop.com",
		"mailto:a.b@x.example?subject=erase": "mailto:[erased]?subject=erase",
	} {
		require.Equal(t, want, store.NewAddress(" A.B@x.example ").Mask(text), text)
		require.Equal(t, want != text, store.NewAddress(a).Holds(text), text)
	}
}

func TestErasureLeavesLongerAddressesAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	const other = "aa@b.example" // holds "a@b.example", and is another address
	require.NoError(t, s.InsertInvoice(ctx, store.Invoice{ID: "INV-1", CustomerID: "C-1", CustomerName: "Aa", CustomerEmail: other,
		Currency: "eur", DueDate: time.Now(), Status: store.InvoiceReady, Lines: []store.InvoiceLine{{LineNo: 1, Description: "x", Quantity: 1, UnitAmount: 1}}}))
	_, err := s.InsertCustomer(ctx, store.Customer{ID: "C-1", LegalName: "Aa Ltd", BillingEmail: other})
	require.NoError(t, err)
	require.NoError(t, s.SaveLink(ctx, store.Link{Integration: "lead-to-crm", SourceKey: "l1", TargetSystem: "crm", TargetID: "1", SyncedAt: time.Now(),
		Baseline: store.Baseline{"email": {Target: other, Source: other}}}))
	require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:l1", RunID: "r", Seq: 1,
		At: time.Now(), Actor: "alice", Action: "amend", Reason: "was " + other}))
	e, err := s.ErasePersonalData(ctx, store.ErasureRequest{Email: "a@b.example", Scheme: scheme, Commit: true})
	require.NoError(t, err)
	require.Zero(t, e.Rows(), "%+v", e.Changes)
	require.Empty(t, e.Items)
	require.Empty(t, e.Residue, "another address is no residue")
	require.Equal(t, map[string]int64{"audit_events.reason": 1, "customers.billing_email": 1, "external_links.baseline": 1, "invoices.customer_email": 1},
		holding(t, pool, other))
}

func TestPrivacyDocNamesEveryTable(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "privacy.md"))
	require.NoError(t, err)
	for table := range store.ErasurePlan {
		require.Contains(t, string(doc), "`"+table+"`", "docs/privacy.md must say what erasing does to %s", table)
	}
}

func TestErasureSearchesJSONDecoded(t *testing.T) {
	t.Parallel()
	addr := store.NewAddress("Tom&Jerry2@example.com")
	for doc, want := range map[string]bool{
		`{"email":"tom\u0026jerry2@example.com"}`:                true, // as Go's encoder writes "&"
		`["TOM\u0026JERRY2\u0040EXAMPLE.COM"]`:                   true, // any character may be escaped
		`{"tom\u0026jerry2@example.com":1}`:                      true, // a key
		`{"a":{"b":["x","line\ntom&jerry2@example.com"]}}`:       true,
		`{"raw":"{\"email\":\"tom\\u0026jerry2@example.com\"}"}`: true, // JSON quoted in JSON
		`"tom\u0026jerry2@example.com"`:                          true,
		`{"email":"xtom\u0026jerry2@example.com"}`:               false, // another address
		`{"email":"tom\u0026jerry2@example.com.au"}`:             false,
		`{"tom":"jerry2@example.com"}`:                           false,
		`{"n":12345678901234567890}`:                             false,
	} {
		got, err := store.JSONHolds([]byte(doc), addr.Holds)
		require.NoError(t, err, doc)
		require.Equal(t, want, got, doc)
	}
	_, err := store.JSONHolds([]byte(`{"a":`), addr.Holds)
	require.Error(t, err)
}

// TestErasureFindsEscapedAddresses: Go's JSON encoder writes "&" as
// "\u0026", and a sender may escape any character; the residue check reads
// JSON columns decoded, a table added later included, and the erasure masks
// what the audit trail's JSON holds, however it was written.
func TestErasureFindsEscapedAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	s := store.New(pool)
	const email = "tom&jerry2@example.com"

	// An audit event whose details Go encoded: stored with "\u0026".
	require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:g", RunID: "r", Seq: 1,
		At: time.Now(), Actor: "alice", Action: "raised", Details: map[string]any{"similar": email}}))
	_, err := pool.Exec(ctx, `INSERT INTO audit_events (integration, workflow_id, run_id, seq, at, actor, action, details)
		VALUES ('lead-to-crm', 'lead-to-crm:h', 'r', 1, now(), 'alice', 'raised', '{"note": "tom\u0026jerry2\u0040example.com"}')`)
	require.NoError(t, err)

	// A table a migration added without teaching the erasure about it.
	_, err = pool.Exec(ctx, `CREATE TABLE later_notes (id int PRIMARY KEY, doc json, body jsonb, note text)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO later_notes (id, doc, body, note) VALUES
		(1, '{"to": "tom\u0026jerry2@example.com"}', '{"x\ntom\u0026jerry2@example.com": 1}', ''),
		(2, '{"to": "xtom\u0026jerry2@example.com"}', '{"to": "tom\u0026jerry2@example.com.au"}', 'tom\u0026jerry2@example.com'),
		(3, '{"raw": "{\"email\": \"tom\\u0026jerry2@example.com\"}"}', NULL, '')`)
	require.NoError(t, err)

	e, err := s.ErasePersonalData(ctx, store.ErasureRequest{Email: "Tom&Jerry2@example.com", Scheme: scheme, Commit: true})
	require.NoError(t, err)
	require.Equal(t, []store.TableChange{{Table: "audit_events", Action: "masked", Rows: 2}}, e.Changes)
	require.Equal(t, []string{"lead-to-crm:g", "lead-to-crm:h"}, e.Mentioning)
	// A json column keeps escapes as written; a jsonb key decoded is
	// "x", a new line, then the address. A text column is searched as text:
	// the escaped form there (row 2's note) is not the address.
	require.Equal(t, map[string]int64{"later_notes.doc": 2, "later_notes.body": 1}, e.Residue)
	require.NotContains(t, holding(t, pool, email), "audit_events.details", "the audit trail no longer holds it")
	var details []string
	rows, err := pool.Query(ctx, `SELECT details->>(CASE workflow_id WHEN 'lead-to-crm:g' THEN 'similar' ELSE 'note' END) FROM audit_events ORDER BY workflow_id`)
	require.NoError(t, err)
	details, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{store.Erased, store.Erased}, details)
}
