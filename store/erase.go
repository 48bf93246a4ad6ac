package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Erased replaces a person's data where the row that held it must stay.
const Erased = "[erased]"

// ErasurePlan says, for every table of signalbox's schema, what erasing a
// person's data does to it (docs/privacy.md says it for each). A migration
// that adds a table adds it here: a test fails until it does.
var ErasurePlan = map[string]string{
	"waiting_items":             "kept while the item waits (the console's inbox); the address is masked in its summary, and in the person's own items' the rest of their values, as in audit_events",
	"audit_events":              "kept: the audit trail says who did what, when; the address is masked wherever it appears, and in the person's own items' rows their name, phone and job title too",
	"external_links":            "a person's own link (a lead's) is deleted: a later re-sync finds the contact by email again; other links stay (they keep an invoice from being billed twice and a company from being created twice), the address taken out of their baselines",
	"notifications":             "the person's items' rows are deleted (they hold keys only)",
	"notification_digests":      "no personal data: team, exception kind, time",
	"invoices":                  "kept, with amounts, status, who billed it and its Stripe IDs: customer_email becomes " + Erased + "; the customer's name stays (an invoice must name whom it bills)",
	"invoice_lines":             "kept, amounts untouched; the address is masked in descriptions",
	"person_claims":             "the person's leads' claims are deleted (a digest of their name and company)",
	"customers":                 "kept (a company); billing_email is cleared when it is the address",
	"sync_watermarks":           "no personal data: poll positions",
	"ignored_records":           "kept; the address is masked in reasons",
	"rate_slots":                "no personal data: send times",
	"payment_events":            "no personal data: Stripe event and invoice IDs, statuses",
	"stripe_webhook_deliveries": "no personal data: digests and event IDs",
	"reconcile_runs":            "no personal data: counts and a cursor (a source key)",
	"reconcile_differences":     "kept (the report's counts): the values of the person's leads become " + Erased + ", the address is masked elsewhere",
	"reconcile_handoffs":        "kept; the address (and, for the person's leads, their values) masked",
	"reconcile_accepted":        "the person's leads' rows are deleted; elsewhere the address is masked in reasons",
	"schema_migrations":         "no personal data",
	"intake_signatures":         "no personal data: digests of signatures",
	"intake_items":              "no personal data: workflow IDs and source names",
}

// ErasureScheme tells the store how its tables map to integrations and items.
type ErasureScheme struct {
	// ItemID makes an item's workflow ID from its integration and source key.
	ItemID func(integration, sourceKey string) string
	// Invoices and Customers name the integrations whose items sync the
	// invoices and customers tables.
	Invoices, Customers string
	// People maps the integrations whose source records are people (leads)
	// to the fields of their links' baselines that are the person's (name,
	// phone, …). A link of theirs that holds the address is the person's own
	// record: it is deleted, and those values are masked in its item's rows.
	People map[string][]string
}

// ErasureRequest asks to erase the personal data keyed to an email address.
type ErasureRequest struct {
	Email  string
	Scheme ErasureScheme
	// Items are the workflow IDs of the person's own items found elsewhere
	// (in Temporal: items whose input holds the address).
	Items []string
	// Commit applies the erasure; without it everything is rolled back and
	// the result says what would have been done.
	Commit bool
	// Audit, when committing, returns the audit events to record in the
	// same transaction, given what was erased.
	Audit func(Erasure) ([]AuditEvent, error)
}

// TableChange counts the rows of a table an erasure deleted or masked.
type TableChange struct {
	Table  string `json:"table"`
	Action string `json:"action"` // "deleted" or "masked"
	Rows   int64  `json:"rows"`
}

// Erasure is what an erasure did (or, not committed, would do).
type Erasure struct {
	Changes []TableChange `json:"changes"`
	// Items are the person's own items: the workflow IDs of their records
	// (a lead, an invoice billed to them, a customer billed at the address)
	// and those of ErasureRequest.Items.
	Items []string `json:"items"`
	// Mentioning are other items whose rows held the address.
	Mentioning []string `json:"mentioning,omitempty"`
	// Integrations are those of every row changed.
	Integrations []string `json:"integrations"`
	// Elsewhere names the records in other systems that the person's
	// records are linked to ("crm 1234", "stripe customer cus_…"): signalbox
	// does not erase them there.
	Elsewhere []string `json:"elsewhere,omitempty"`
	// Residue counts, by "table.column", rows still holding the address
	// afterwards: data this erasure does not know how to erase.
	Residue map[string]int64 `json:"residue,omitempty"`
}

// Rows counts every row changed.
func (e Erasure) Rows() int64 {
	var n int64
	for _, c := range e.Changes {
		n += c.Rows
	}
	return n
}

// Address finds one email address in text: in any case, and only as an
// address of its own ("aa@example.com" and "a@example.com.au" are other
// addresses than "a@example.com").
type Address struct {
	email string
	re    *regexp.Regexp
}

// NewAddress returns the Address that finds email.
func NewAddress(email string) Address {
	email = NormalizeEmail(email)
	return Address{email: email, re: regexp.MustCompile(`(?i)` + regexp.QuoteMeta(email))}
}

// Email is the address found, normalized (NormalizeEmail).
func (a Address) Email() string { return a.email }

// inLocalPart are the characters that may come before an address's first
// character within a longer one; inDomain those that may follow its last.
func inLocalPart(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!#$%&'*+/=?^_`{|}~.-", r)
}

func inDomain(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' }

// bounded reports whether s[i:j] is an address of its own: nothing of a
// longer address before it, and no more of a domain after it (a full stop
// ending a sentence is no part of one).
func bounded(s string, i, j int) bool {
	if before, _ := utf8.DecodeLastRuneInString(s[:i]); i > 0 && inLocalPart(before) {
		return false
	}
	after, n := utf8.DecodeRuneInString(s[j:])
	switch {
	case j == len(s):
		return true
	case inDomain(after):
		return false
	case after == '.':
		next, _ := utf8.DecodeRuneInString(s[j+n:])
		return j+n == len(s) || !inDomain(next)
	}
	return true
}

func (a Address) matches(s string) [][]int {
	var out [][]int
	for _, m := range a.re.FindAllStringIndex(s, -1) {
		if bounded(s, m[0], m[1]) {
			out = append(out, m)
		}
	}
	return out
}

// Holds reports whether s holds the address.
func (a Address) Holds(s string) bool { return len(a.matches(s)) > 0 }

// Mask replaces the address in s with Erased.
func (a Address) Mask(s string) string {
	ms := a.matches(s)
	if len(ms) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range ms {
		b.WriteString(s[last:m[0]])
		b.WriteString(Erased)
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// addressSQL is a PostgreSQL regular expression (~*) that finds the address
// as Address does.
func addressSQL(email string) string {
	return "(?<![[:alnum:]!#$%&'*+/=?^_`{|}~.-])" + literalSQL(email) + `(?![[:alnum:]-])(?!\.[[:alnum:]-])`
}

// literalSQL is a PostgreSQL regular expression (~*) that finds the address
// anywhere, as part of a longer one too: it picks the rows to look at closer.
func literalSQL(email string) string {
	var b strings.Builder
	for _, r := range NormalizeEmail(email) {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// NormalizeEmail is how addresses are compared: trimmed, in lower case.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// errRollback ends a transaction that only looked.
var errRollback = errors.New("rollback")

// ErasePersonalData removes or masks, in one transaction, the data keyed to
// an email address in every table (ErasurePlan), matching it in any case.
// Running it again changes nothing. Invoices keep their amounts, lines,
// status and billing references: nothing that decides whether one is billed
// is changed.
func (s *Store) ErasePersonalData(ctx context.Context, req ErasureRequest) (Erasure, error) {
	needle := NormalizeEmail(req.Email)
	if needle == "" || req.Scheme.ItemID == nil {
		return Erasure{}, errors.New("erase: an address and the item scheme are required")
	}
	var out Erasure
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// One erasure at a time, so that two never interleave their reads and writes.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('signalbox/erasure'))"); err != nil {
			return err
		}
		e := &eraser{tx: tx, scheme: req.Scheme, needle: needle, addr: NewAddress(needle),
			own: map[string]bool{}, ownKeys: map[string]map[string]bool{}, mentioning: map[string]bool{},
			integrations: map[string]bool{}, elsewhere: map[string]bool{}, counts: map[[2]string]int64{}}
		for _, id := range req.Items {
			e.addOwn(id)
		}
		for _, step := range []func(context.Context) error{e.links, e.invoices, e.invoiceLines, e.customers, e.auditEvents, e.waitingItems,
			e.notifications, e.personClaims, e.reconcileDifferences, e.reconcileHandoffs, e.reconcileAccepted, e.ignoredRecords} {
			if err := step(ctx); err != nil {
				return err
			}
		}
		out = e.result()
		if req.Commit && req.Audit != nil {
			events, err := req.Audit(out)
			if err != nil {
				return err
			}
			if err := New(tx).InsertAudit(ctx, events...); err != nil {
				return err
			}
		}
		residue, err := residueOf(ctx, tx, needle)
		if err != nil {
			return err
		}
		out.Residue = residue
		if !req.Commit {
			return errRollback
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRollback) {
		return Erasure{}, fmt.Errorf("erase personal data: %w", err)
	}
	return out, nil
}

// eraser is one erasure's transaction and what it found so far.
type eraser struct {
	tx     pgx.Tx
	scheme ErasureScheme
	// needle is the address, normalized: SQL finds candidate rows by it
	// (strpos), addr decides.
	needle string
	addr   Address
	// own holds the person's own items; ownKeys their source keys by integration.
	own     map[string]bool
	ownKeys map[string]map[string]bool
	// values are the person's other values (name, phone, …), found in their
	// own links, masked in their own items' rows.
	values       []*regexp.Regexp
	mentioning   map[string]bool
	integrations map[string]bool
	elsewhere    map[string]bool
	counts       map[[2]string]int64
}

func (e *eraser) count(table, action, integration string, n int64) {
	if n == 0 {
		return
	}
	e.counts[[2]string{table, action}] += n
	if integration != "" {
		e.integrations[integration] = true
	}
}

// addOwn records a workflow ID as one of the person's own items.
func (e *eraser) addOwn(id string) {
	e.own[id] = true
	delete(e.mentioning, id)
	integration, key, ok := strings.Cut(id, ":")
	if !ok {
		return
	}
	if e.ownKeys[integration] == nil {
		e.ownKeys[integration] = map[string]bool{}
	}
	e.ownKeys[integration][key] = true
}

func (e *eraser) mention(id string) {
	if id != "" && !e.own[id] {
		e.mentioning[id] = true
	}
}

func (e *eraser) ownKeysOf(integration string) []string {
	return slices.Sorted(maps.Keys(e.ownKeys[integration]))
}

// peopleIntegrations lists the integrations whose records are people.
func (e *eraser) peopleIntegrations() []string {
	return slices.Sorted(maps.Keys(e.scheme.People))
}

func (e *eraser) result() Erasure {
	out := Erasure{
		Items:        slices.Sorted(maps.Keys(e.own)),
		Mentioning:   slices.Sorted(maps.Keys(e.mentioning)),
		Integrations: slices.Sorted(maps.Keys(e.integrations)),
		Elsewhere:    slices.Sorted(maps.Keys(e.elsewhere)),
	}
	for _, k := range slices.SortedFunc(maps.Keys(e.counts), func(a, b [2]string) int {
		return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1])
	}) {
		out.Changes = append(out.Changes, TableChange{Table: k[0], Action: k[1], Rows: e.counts[k]})
	}
	return out
}

// links deletes the person's own links (a lead's) and takes the address out
// of every other link's baseline. It runs first: the own links name the
// person's items and their other values.
func (e *eraser) links(ctx context.Context) error {
	integrations, keys := e.ownRecords()
	rows, err := e.tx.Query(ctx, `SELECT integration, source_key, target_system, target_id, workflow_id, baseline, manual_ref
		FROM external_links
		WHERE strpos(lower(COALESCE(baseline::text, '')), $1) > 0 OR strpos(lower(manual_ref), $1) > 0
			OR (integration, source_key) IN (SELECT * FROM unnest($2::text[], $3::text[]))`, e.needle, integrations, keys)
	if err != nil {
		return fmt.Errorf("read links: %w", err)
	}
	links, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Link, error) {
		var l Link
		err := row.Scan(&l.Integration, &l.SourceKey, &l.TargetSystem, &l.TargetID, &l.WorkflowID, &l.Baseline, &l.ManualRef)
		return l, err
	})
	if err != nil {
		return fmt.Errorf("read links: %w", err)
	}
	var values []string
	for _, l := range links {
		id := e.scheme.ItemID(l.Integration, l.SourceKey)
		holds := e.addr.Holds(l.ManualRef)
		for _, v := range l.Baseline {
			holds = holds || e.addr.Holds(v.Target) || e.addr.Holds(v.Source)
		}
		if !holds && !e.own[id] {
			continue // another address that contains this one
		}
		if l.TargetID != "" {
			e.elsewhere[l.TargetSystem+" "+l.TargetID] = true
		}
		if fields, person := e.scheme.People[l.Integration]; person {
			e.addOwn(id)
			for _, f := range fields {
				values = append(values, l.Baseline[f].Target, l.Baseline[f].Source)
			}
			if _, err := e.tx.Exec(ctx, `DELETE FROM external_links WHERE integration = $1 AND source_key = $2 AND target_system = $3`,
				l.Integration, l.SourceKey, l.TargetSystem); err != nil {
				return fmt.Errorf("delete link %s/%s: %w", l.Integration, l.SourceKey, err)
			}
			e.count("external_links", "deleted", l.Integration, 1)
			continue
		}
		e.mention(id)
		baseline := Baseline{}
		for f, v := range l.Baseline {
			// A field whose value holds the address is the address: it is
			// cleared on both sides, as the record it mirrors is.
			if e.addr.Holds(v.Target) {
				v.Target = ""
			}
			if e.addr.Holds(v.Source) {
				v.Source = ""
			}
			baseline[f] = v
		}
		if l.Baseline == nil {
			baseline = nil
		}
		if _, err := e.tx.Exec(ctx, `UPDATE external_links SET baseline = $4, manual_ref = $5
			WHERE integration = $1 AND source_key = $2 AND target_system = $3`,
			l.Integration, l.SourceKey, l.TargetSystem, baseline, e.addr.Mask(l.ManualRef)); err != nil {
			return fmt.Errorf("mask link %s/%s: %w", l.Integration, l.SourceKey, err)
		}
		e.count("external_links", "masked", l.Integration, 1)
	}
	e.values = valuePatterns(values, e.needle)
	return nil
}

// invoices masks the customer email of the invoices billed to the address;
// nothing else of them changes.
func (e *eraser) invoices(ctx context.Context) error {
	rows, err := e.tx.Query(ctx, `SELECT id, customer_name, customer_email, COALESCE(stripe_customer_id, ''), COALESCE(stripe_invoice_id, ''),
			lower(btrim(customer_email)) = $1
		FROM invoices WHERE strpos(lower(customer_email), $1) > 0 OR strpos(lower(customer_name), $1) > 0
		FOR UPDATE`, e.needle)
	if err != nil {
		return fmt.Errorf("read invoices: %w", err)
	}
	type invoice struct {
		id, name, email, customer, stripeInvoice string
		billedTo                                 bool
	}
	invs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (invoice, error) {
		var i invoice
		err := row.Scan(&i.id, &i.name, &i.email, &i.customer, &i.stripeInvoice, &i.billedTo)
		return i, err
	})
	if err != nil {
		return fmt.Errorf("read invoices: %w", err)
	}
	for _, inv := range invs {
		email, name := inv.email, e.addr.Mask(inv.name)
		if inv.billedTo || e.addr.Holds(email) {
			email = Erased
		}
		if email == inv.email && name == inv.name {
			continue
		}
		if inv.billedTo {
			e.addOwn(e.scheme.ItemID(e.scheme.Invoices, inv.id))
		} else {
			e.mention(e.scheme.ItemID(e.scheme.Invoices, inv.id))
		}
		if inv.customer != "" {
			e.elsewhere["stripe customer "+inv.customer] = true
		}
		if inv.stripeInvoice != "" {
			e.elsewhere["stripe invoice "+inv.stripeInvoice] = true
		}
		// Only the copies of the address change: amounts, lines, status,
		// billed_by, billed_ref and the Stripe IDs stay as they are.
		if _, err := e.tx.Exec(ctx, `UPDATE invoices SET customer_email = $2, customer_name = $3 WHERE id = $1`, inv.id, email, name); err != nil {
			return fmt.Errorf("mask invoice %s: %w", inv.id, err)
		}
		e.count("invoices", "masked", e.scheme.Invoices, 1)
	}
	return nil
}

func (e *eraser) invoiceLines(ctx context.Context) error {
	rows, err := e.tx.Query(ctx, `SELECT invoice_id, line_no, description FROM invoice_lines WHERE strpos(lower(description), $1) > 0`, e.needle)
	if err != nil {
		return fmt.Errorf("read invoice lines: %w", err)
	}
	type line struct {
		Invoice     string
		No          int
		Description string
	}
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[line])
	if err != nil {
		return fmt.Errorf("read invoice lines: %w", err)
	}
	for _, l := range lines {
		description := e.addr.Mask(l.Description)
		if description == l.Description {
			continue
		}
		e.mention(e.scheme.ItemID(e.scheme.Invoices, l.Invoice))
		if _, err := e.tx.Exec(ctx, `UPDATE invoice_lines SET description = $3 WHERE invoice_id = $1 AND line_no = $2`,
			l.Invoice, l.No, description); err != nil {
			return fmt.Errorf("mask line %d of invoice %s: %w", l.No, l.Invoice, err)
		}
		e.count("invoice_lines", "masked", e.scheme.Invoices, 1)
	}
	return nil
}

// customers clears the billing email of the customers billed at the address.
func (e *eraser) customers(ctx context.Context) error {
	rows, err := e.tx.Query(ctx, `UPDATE customers SET billing_email = '' WHERE lower(btrim(billing_email)) = $1 RETURNING id`, e.needle)
	if err != nil {
		return fmt.Errorf("mask customers: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("mask customers: %w", err)
	}
	for _, id := range ids {
		e.addOwn(e.scheme.ItemID(e.scheme.Customers, id))
	}
	e.count("customers", "masked", e.scheme.Customers, int64(len(ids)))
	return nil
}

// auditEvents masks the address in every row of the audit trail, and the
// person's other values in their own items' rows. Rows stay: who did what,
// when, and from which status to which, is the audit trail.
func (e *eraser) auditEvents(ctx context.Context) error {
	rows, err := e.tx.Query(ctx, `SELECT id, integration, workflow_id, reason, details FROM audit_events
		WHERE workflow_id = ANY($2) OR strpos(lower(reason), $1) > 0 OR strpos(lower(details::text), $1) > 0
		FOR UPDATE`, e.needle, slices.Sorted(maps.Keys(e.own)))
	if err != nil {
		return fmt.Errorf("read the audit trail: %w", err)
	}
	type event struct {
		id                              int64
		integration, workflowID, reason string
		details                         []byte
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (event, error) {
		var ev event
		err := row.Scan(&ev.id, &ev.integration, &ev.workflowID, &ev.reason, &ev.details)
		return ev, err
	})
	if err != nil {
		return fmt.Errorf("read the audit trail: %w", err)
	}
	for _, ev := range events {
		m := e.masker(e.own[ev.workflowID])
		reason := m.text(ev.reason)
		details, changed, err := m.json(ev.details)
		if err != nil {
			return fmt.Errorf("audit event %d of %s: %w", ev.id, ev.workflowID, err)
		}
		if !changed && reason == ev.reason {
			continue
		}
		e.mention(ev.workflowID)
		if _, err := e.tx.Exec(ctx, `UPDATE audit_events SET reason = $2, details = $3 WHERE id = $1`, ev.id, reason, details); err != nil {
			return fmt.Errorf("mask audit event %d of %s: %w", ev.id, ev.workflowID, err)
		}
		e.count("audit_events", "masked", ev.integration, 1)
	}
	return nil
}

// waitingItems masks the summaries of the inbox's waiting items as the
// audit rows they were copied from are masked.
func (e *eraser) waitingItems(ctx context.Context) error {
	rows, err := e.tx.Query(ctx, `SELECT workflow_id, integration, summary FROM waiting_items
		WHERE workflow_id = ANY($2) OR strpos(lower(summary), $1) > 0 FOR UPDATE`, e.needle, slices.Sorted(maps.Keys(e.own)))
	if err != nil {
		return fmt.Errorf("read the waiting items: %w", err)
	}
	type waiting struct{ workflowID, integration, summary string }
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (waiting, error) {
		var w waiting
		err := row.Scan(&w.workflowID, &w.integration, &w.summary)
		return w, err
	})
	if err != nil {
		return fmt.Errorf("read the waiting items: %w", err)
	}
	for _, w := range items {
		summary := e.masker(e.own[w.workflowID]).text(w.summary)
		if summary == w.summary {
			continue
		}
		e.mention(w.workflowID)
		if _, err := e.tx.Exec(ctx, `UPDATE waiting_items SET summary = $2 WHERE workflow_id = $1`, w.workflowID, summary); err != nil {
			return fmt.Errorf("mask the summary of waiting item %s: %w", w.workflowID, err)
		}
		e.count("waiting_items", "masked", w.integration, 1)
	}
	return nil
}

func (e *eraser) notifications(ctx context.Context) error {
	rows, err := e.tx.Query(ctx, `DELETE FROM notifications WHERE workflow_id = ANY($1) RETURNING workflow_id`, slices.Sorted(maps.Keys(e.own)))
	if err != nil {
		return fmt.Errorf("delete notifications: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("delete notifications: %w", err)
	}
	for _, id := range ids {
		integration, _, _ := strings.Cut(id, ":")
		e.count("notifications", "deleted", integration, 1)
	}
	return nil
}

// personClaims deletes the claims the person's leads took on them (a digest
// of their name and company; the holder is "<integration>/<key>").
func (e *eraser) personClaims(ctx context.Context) error {
	for _, integration := range e.peopleIntegrations() {
		var holders []string
		for _, key := range e.ownKeysOf(integration) {
			holders = append(holders, integration+"/"+key)
		}
		if len(holders) == 0 {
			continue
		}
		tag, err := e.tx.Exec(ctx, `DELETE FROM person_claims WHERE holder = ANY($1)`, holders)
		if err != nil {
			return fmt.Errorf("delete person claims: %w", err)
		}
		e.count("person_claims", "deleted", integration, tag.RowsAffected())
	}
	return nil
}

// ownRecords lists the person's own records of integrations whose records
// are people, as parallel lists of integration and source key.
func (e *eraser) ownRecords() (integrations, keys []string) {
	for _, integration := range e.peopleIntegrations() {
		for _, key := range e.ownKeysOf(integration) {
			integrations, keys = append(integrations, integration), append(keys, key)
		}
	}
	return integrations, keys
}

func (e *eraser) reconcileDifferences(ctx context.Context) error {
	integrations, keys := e.ownRecords()
	rows, err := e.tx.Query(ctx, `SELECT d.run_id, d.seq, r.integration, d.source_key, d.source_value, d.target_value, d.baseline_value,
			(r.integration, d.source_key) IN (SELECT * FROM unnest($2::text[], $3::text[]))
		FROM reconcile_differences d JOIN reconcile_runs r ON r.id = d.run_id
		WHERE strpos(lower(COALESCE(d.source_value, '') || ' ' || COALESCE(d.target_value, '') || ' ' || COALESCE(d.baseline_value, '')), $1) > 0
			OR (r.integration, d.source_key) IN (SELECT * FROM unnest($2::text[], $3::text[]))`, e.needle, integrations, keys)
	if err != nil {
		return fmt.Errorf("read reconcile differences: %w", err)
	}
	type diff struct {
		Run, Seq                 int64
		Integration, Key         string
		Source, Target, Baseline *string
		Own                      bool
	}
	diffs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[diff])
	if err != nil {
		return fmt.Errorf("read reconcile differences: %w", err)
	}
	for _, d := range diffs {
		mask := func(v *string) *string {
			if v == nil {
				return nil
			}
			out := e.addr.Mask(*v)
			if d.Own && *v != "" {
				out = Erased
			}
			return &out
		}
		source, target, baseline := mask(d.Source), mask(d.Target), mask(d.Baseline)
		if eqPtr(source, d.Source) && eqPtr(target, d.Target) && eqPtr(baseline, d.Baseline) {
			continue
		}
		e.mention(e.scheme.ItemID(d.Integration, d.Key))
		if _, err := e.tx.Exec(ctx, `UPDATE reconcile_differences SET source_value = $3, target_value = $4, baseline_value = $5
			WHERE run_id = $1 AND seq = $2`, d.Run, d.Seq, source, target, baseline); err != nil {
			return fmt.Errorf("mask a difference of reconcile run %d: %w", d.Run, err)
		}
		e.count("reconcile_differences", "masked", d.Integration, 1)
	}
	return nil
}

func eqPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func (e *eraser) reconcileHandoffs(ctx context.Context) error {
	integrations, keys := e.ownRecords()
	rows, err := e.tx.Query(ctx, `SELECT run_id, integration, source_key, request FROM reconcile_handoffs
		WHERE strpos(lower(request::text), $1) > 0 OR (integration, source_key) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
		e.needle, integrations, keys)
	if err != nil {
		return fmt.Errorf("read reconcile hand-offs: %w", err)
	}
	type handoff struct {
		Run              int64
		Integration, Key string
		Request          []byte
	}
	handoffs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[handoff])
	if err != nil {
		return fmt.Errorf("read reconcile hand-offs: %w", err)
	}
	for _, h := range handoffs {
		id := e.scheme.ItemID(h.Integration, h.Key)
		request, changed, err := e.masker(e.own[id]).json(h.Request)
		if err != nil {
			return fmt.Errorf("hand-off of %s in reconcile run %d: %w", id, h.Run, err)
		}
		if !changed {
			continue
		}
		e.mention(id)
		if _, err := e.tx.Exec(ctx, `UPDATE reconcile_handoffs SET request = $4 WHERE run_id = $1 AND integration = $2 AND source_key = $3`,
			h.Run, h.Integration, h.Key, request); err != nil {
			return fmt.Errorf("mask the hand-off of %s in reconcile run %d: %w", id, h.Run, err)
		}
		e.count("reconcile_handoffs", "masked", h.Integration, 1)
	}
	return nil
}

func (e *eraser) reconcileAccepted(ctx context.Context) error {
	integrations, keys := e.ownRecords()
	rows, err := e.tx.Query(ctx, `DELETE FROM reconcile_accepted
		WHERE (integration, source_key) IN (SELECT * FROM unnest($1::text[], $2::text[])) RETURNING integration`, integrations, keys)
	if err != nil {
		return fmt.Errorf("delete accepted differences: %w", err)
	}
	deleted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("delete accepted differences: %w", err)
	}
	for _, integration := range deleted {
		e.count("reconcile_accepted", "deleted", integration, 1)
	}
	return e.maskReasons(ctx, "reconcile_accepted", "integration, source_key, class", 3)
}

func (e *eraser) ignoredRecords(ctx context.Context) error {
	return e.maskReasons(ctx, "ignored_records", "integration, system, record_id", 3)
}

// maskReasons masks the address in the reason column of table, whose key
// columns (the first of them its integration) are keys.
func (e *eraser) maskReasons(ctx context.Context, table, keys string, nkeys int) error {
	rows, err := e.tx.Query(ctx, `SELECT `+keys+`, reason FROM `+table+` WHERE strpos(lower(reason), $1) > 0`, e.needle)
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]string, error) {
		vals := make([]string, nkeys+1)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		return vals, row.Scan(ptrs...)
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	cols := strings.Split(keys, ", ")
	where := make([]string, len(cols))
	for i, c := range cols {
		where[i] = fmt.Sprintf("%s = $%d", c, i+1)
	}
	for _, r := range found {
		reason := e.addr.Mask(r[nkeys])
		if reason == r[nkeys] {
			continue
		}
		args := make([]any, 0, len(r))
		for _, v := range r[:nkeys] {
			args = append(args, v)
		}
		args = append(args, reason)
		if _, err := e.tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET reason = $%d WHERE %s`, table, nkeys+1, strings.Join(where, " AND ")), args...); err != nil {
			return fmt.Errorf("mask %s: %w", table, err)
		}
		e.count(table, "masked", r[0], 1)
	}
	return nil
}

// residueOf counts, in every text and JSON column of the schema, the rows
// that still hold the address. A text column is searched as text (the
// address as it is written, in any case). A JSON column is searched in its
// decoded strings and object keys, at any depth, so that an address written
// with escapes ("tom\u0026jerry@example.com", "ada\u0040example.com": json
// columns keep them as written) is found too.
func residueOf(ctx context.Context, tx pgx.Tx, needle string) (map[string]int64, error) {
	rows, err := tx.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type IN ('json', 'jsonb') FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
		WHERE c.table_schema = current_schema() AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list the schema's columns: %w", err)
	}
	type column struct {
		Table, Name string
		JSON        bool
	}
	columns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[column])
	if err != nil {
		return nil, fmt.Errorf("list the schema's columns: %w", err)
	}
	addr := NewAddress(needle)
	out := map[string]int64{}
	for _, c := range columns {
		table, col := pgx.Identifier{c.Table}.Sanitize(), pgx.Identifier{c.Name}.Sanitize()
		var n int64
		if !c.JSON {
			q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s::text ~* $1`, table, col)
			if err := tx.QueryRow(ctx, q, addressSQL(needle)).Scan(&n); err != nil {
				return nil, fmt.Errorf("look for the address in %s.%s: %w", c.Table, c.Name, err)
			}
		} else if n, err = jsonResidue(ctx, tx, table, col, needle, addr); err != nil {
			return nil, fmt.Errorf("look for the address in %s.%s: %w", c.Table, c.Name, err)
		}
		if n > 0 {
			out[c.Table+"."+c.Name] = n
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// jsonResidue counts the rows of a JSON column whose decoded strings or keys
// hold the address. PostgreSQL picks the candidates: a jsonb value prints
// its strings decoded, so the address is in the text of every row holding
// it; a json value is kept as written, so one with an escape ("\u") is a
// candidate too. Go decides, on the decoded document.
func jsonResidue(ctx context.Context, tx pgx.Tx, table, col, needle string, addr Address) (int64, error) {
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %[2]s::text FROM %[1]s WHERE %[2]s::text ~* $1 OR strpos(%[2]s::text, '\u') > 0`, table, col),
		literalSQL(needle))
	if err != nil {
		return 0, err
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	var n int64
	for _, doc := range docs {
		holds, err := JSONHolds([]byte(doc), addr.Holds)
		if err != nil {
			return 0, err
		}
		if holds {
			n++
		}
	}
	return n, nil
}

// JSONHolds reports whether one of a JSON document's strings or object keys,
// at any depth, holds what match finds (Address.Holds: the address),
// compared once decoded: escapes ("\u0026", "\u0040") are read as the
// characters they stand for. A string that is itself a JSON document (JSON
// quoted in JSON) is searched the same way, up to 3 levels deep.
func JSONHolds(doc []byte, match func(string) bool) (bool, error) {
	return jsonHolds(doc, match, 3)
}

func jsonHolds(doc []byte, match func(string) bool, depth int) (bool, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return false, fmt.Errorf("read JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, errors.New("read JSON: more than one value")
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case string:
			if match(x) {
				return true
			}
			if t := strings.TrimSpace(x); depth > 0 && (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") || strings.HasPrefix(t, `"`)) {
				holds, _ := jsonHolds([]byte(t), match, depth-1)
				return holds
			}
		case []any:
			return slices.ContainsFunc(x, walk)
		case map[string]any:
			for k, val := range x {
				if walk(k) || walk(val) {
					return true
				}
			}
		}
		return false
	}
	return walk(v), nil
}

// masker replaces the address, and in the person's own rows their other
// values, in text and in JSON.
type masker struct {
	addr   Address
	values []*regexp.Regexp
}

func (e *eraser) masker(own bool) masker {
	m := masker{addr: e.addr}
	if own {
		m.values = e.values
	}
	return m
}

func (m masker) text(s string) string {
	s = m.addr.Mask(s)
	for _, p := range m.values {
		// A value is masked as a whole word: "Ada" in "Ada's lead", not in "Canada".
		s = p.ReplaceAllString(s, "${1}"+Erased+"${3}")
	}
	return s
}

// json masks every string (and key) of a JSON document; numbers and the
// document's shape stay as they are.
func (m masker) json(doc []byte) ([]byte, bool, error) {
	if len(doc) == 0 {
		return doc, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("read JSON: %w", err)
	}
	changed := false
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case string:
			if y := m.text(x); y != x {
				changed = true
				return y
			}
			return x
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
			return x
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, val := range x {
				nk := m.text(k)
				if nk != k {
					changed = true
				}
				out[nk] = walk(val)
			}
			return out
		}
		return v
	}
	v = walk(v)
	if !changed {
		return doc, false, nil
	}
	out, err := json.Marshal(v)
	return out, true, err
}

// valuePatterns match each of the person's values (at least two characters)
// as a whole word, in any case; the address is matched on its own.
func valuePatterns(values []string, needle string) []*regexp.Regexp {
	seen := map[string]bool{}
	var out []*regexp.Regexp
	for _, v := range values {
		v = strings.ToLower(strings.TrimSpace(v))
		if len([]rune(v)) < 2 || seen[v] || v == needle || strings.EqualFold(v, Erased) {
			continue
		}
		seen[v] = true
		out = append(out, regexp.MustCompile(`(?i)(^|[^\pL\pN])(`+regexp.QuoteMeta(v)+`)($|[^\pL\pN])`))
	}
	return out
}
