package main

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
)

// The item page's side-by-side views and its amend form's inline errors,
// against the handler and the fake backend of serve_test.go.

// blocked is an item of integration waiting on kind with details, decided
// by deciders.
func blocked(id string, kind api.ExceptionKind, deciders string, details map[string]string, decisions ...api.Action) api.ItemState {
	integration, key, _ := api.SplitItemID(id)
	spec, _ := api.SpecByName(integration)
	return api.ItemState{Integration: integration, WorkflowID: id, SourceKey: key, Owner: spec.Owner, Status: api.StatusBlocked, StartedAt: since,
		Exception: &api.ExceptionState{Kind: kind, Summary: "needs a look", Details: details, Decisions: decisions, Deciders: deciders,
			Since: since, SLA: 8 * time.Hour}}
}

var (
	rowPattern  = regexp.MustCompile(`(?s)<tr(?: class="differs")?><th scope="row">(.*?)</th>(.*?)</tr>`)
	cellPattern = regexp.MustCompile(`(?s)<td class="text">(.*?)</td>`)
	headPattern = regexp.MustCompile(`<th scope="col">(.*?)</th>`)
)

// tableOf is the comparison table captioned caption in body: its column
// headers and, by row name, its cells (their HTML, character references
// resolved: html/template writes "+" as "&#43;"); nil when there is none.
func tableOf(t *testing.T, body, caption string) (heads []string, rows map[string][]string, differs map[string]bool) {
	t.Helper()
	start := strings.Index(body, "<caption>"+html.EscapeString(caption)+"</caption>")
	if start < 0 {
		return nil, nil, nil
	}
	table := body[start:]
	table = table[:strings.Index(table, "</table>")]
	for _, m := range headPattern.FindAllStringSubmatch(table, -1) {
		heads = append(heads, html.UnescapeString(m[1]))
	}
	rows, differs = map[string][]string{}, map[string]bool{}
	for _, m := range rowPattern.FindAllStringSubmatch(table, -1) {
		require.NotContains(t, rows, m[1], "row %s appears once", m[1])
		var cells []string
		for _, c := range cellPattern.FindAllStringSubmatch(m[2], -1) {
			cells = append(cells, html.UnescapeString(c[1]))
		}
		rows[m[1]] = cells
		differs[m[1]] = strings.HasPrefix(m[0], `<tr class="differs">`)
	}
	return heads, rows, differs
}

// detailsList is the plain details list of body, as name → value.
func detailsList(body string) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`<dt>(.*?)</dt><dd>(.*?)</dd>`).FindAllStringSubmatch(body, -1) {
		out[html.UnescapeString(m[1])] = html.UnescapeString(m[2])
	}
	return out
}

// customerConflict formats one field of customer sync's Conflict as
// workflows/customer.go (customerRun.ask) writes it.
func customerConflict(source, target string, base *string, note string) string {
	v := fmt.Sprintf("PostgreSQL %q, CRM %q", source, target)
	if base != nil {
		v += fmt.Sprintf(", last synced %q", *base)
	}
	if note != "" {
		v += "; " + note
	}
	return v
}

func ptr(s string) *string { return &s }

const changed = ` <span class="tag">changed</span>`

func TestItemPageSetsAFieldConflictSideBySide(t *testing.T) {
	t.Parallel()
	const cannotHold = `PostgreSQL cannot hold the CRM's value (invalid customer: country must be an ISO 3166-1 alpha-2 code in capitals (like "DE") or empty, not "Germany"): choose postgres, or amend`
	cases := []struct {
		name, id, operator string
		details            map[string]string
		heads              []string
		rows               map[string][]string
		differs            []string
		rest               map[string]string
	}{{
		name: "customer sync: both values and the baseline, per field", id: "customer-sync:CUST-1", operator: carolToken,
		details: map[string]string{
			"company":      "co-42",
			"legalName":    customerConflict("Acme GmbH", "Acme AG", ptr("Acme GmbH"), ""),
			"phone":        customerConflict("+49 30 1", "+49 30 2", ptr("+49 30 0"), ""),
			"city":         customerConflict("", "Berlin", nil, ""),
			"country":      customerConflict("DE", "Germany", ptr("DE"), cannotHold),
			"addressLine1": customerConflict(`Main St. 1, "rear"`, "<script>alert(1)</script>", ptr(`Main St. 1, "rear"`), ""),
		},
		heads: []string{"Field", "PostgreSQL (source)", "CRM (target)", "Last synced (baseline)", "Difference", "Note"},
		rows: map[string][]string{
			"legalName":    {"Acme GmbH", "Acme AG" + changed, "Acme GmbH", "the CRM changed since the last sync", ""},
			"phone":        {"+49 30 1" + changed, "+49 30 2" + changed, "+49 30 0", "both changed since the last sync", ""},
			"city":         {`<span class="muted">(blank)</span>`, "Berlin", "not recorded", "the values differ", ""},
			"country":      {"DE", "Germany" + changed, "DE", "the CRM changed since the last sync", "PostgreSQL cannot hold the CRM's value (invalid customer: country must be an ISO 3166-1 alpha-2 code in capitals (like \"DE\") or empty, not \"Germany\"): choose postgres, or amend"},
			"addressLine1": {"Main St. 1, \"rear\"", "<script>alert(1)</script>" + changed, "Main St. 1, \"rear\"", "the CRM changed since the last sync", ""},
		},
		differs: []string{"legalName", "phone", "city", "country", "addressLine1"},
		rest:    map[string]string{"company": "co-42"},
	}, {
		name: "lead to CRM: the form is the source, whatever the order the details name them", id: "lead-to-crm:lead-c", operator: aliceToken,
		details: map[string]string{
			"contact":  "901",
			"jobtitle": `CRM "CTO", form "Engineer", last synced "Engineer"`,
			"company":  `CRM "Engines Ltd", form "Engines"`,
			"phone":    `CRM "1", form "1", last synced "1"`,
		},
		heads: []string{"Field", "Form (source)", "CRM (target)", "Last synced (baseline)", "Difference"},
		rows: map[string][]string{
			"jobtitle": {"Engineer", "CTO" + changed, "Engineer", "the CRM changed since the last sync"},
			"company":  {"Engines", "Engines Ltd", "not recorded", "the values differ"},
			"phone":    {"1", "1", "1", "the same"},
		},
		differs: []string{"jobtitle", "company"},
		rest:    map[string]string{"contact": "901"},
	}, {
		name: "a shape not recognised stays in the plain list, the rest in the table", id: "customer-sync:CUST-2", operator: carolToken,
		details: map[string]string{
			"domain":       customerConflict("a.example", "b.example", ptr("a.example"), ""),
			"unterminated": `PostgreSQL "a, CRM "b"`,
			"one side":     `PostgreSQL "a"`,
			"twice":        `PostgreSQL "a", PostgreSQL "b", CRM "c"`,
			"trailing":     `PostgreSQL "a", CRM "b" and more`,
			"other labels": `Stripe "a", CRM "b"`,
			"empty":        ``,
		},
		heads:   []string{"Field", "PostgreSQL (source)", "CRM (target)", "Last synced (baseline)", "Difference"},
		rows:    map[string][]string{"domain": {"a.example", "b.example" + changed, "a.example", "the CRM changed since the last sync"}},
		differs: []string{"domain"},
		rest: map[string]string{"unterminated": "PostgreSQL \"a, CRM \"b\"", "one side": "PostgreSQL \"a\"",
			"twice": "PostgreSQL \"a\", PostgreSQL \"b\", CRM \"c\"", "trailing": "PostgreSQL \"a\", CRM \"b\" and more",
			"other labels": "Stripe \"a\", CRM \"b\"", "empty": ""},
	}, {
		name: "invoice's Conflict (an amendment against a newer invoice) has no sides: the plain list", id: "invoice-to-billing:inv-c", operator: carolToken,
		details: map[string]string{"amendment": "currency=usd, dueDate=2026-12-31"},
		rest:    map[string]string{"amendment": "currency=usd, dueDate=2026-12-31"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestConsole(t, nil)
			c.backend.items[tc.id] = blocked(tc.id, api.Conflict, "", tc.details, api.ActionApprove, api.ActionAmend, api.ActionCancel)
			rec := c.do(t, request{path: "/items/" + tc.id, cookie: c.signIn(t, tc.operator)})
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			body := rec.Body.String()
			heads, rows, differs := tableOf(t, body, "Fields in conflict")
			require.Equal(t, tc.heads, heads, "the column headers")
			if tc.rows == nil {
				require.Nil(t, rows, "no table")
			} else {
				require.Equal(t, tc.rows, normalize(rows, len(tc.heads)-1), "each field's cells, in their columns")
			}
			for name := range rows {
				require.Equal(t, contains(tc.differs, name), differs[name], "row %s marked as differing", name)
			}
			require.Equal(t, tc.rest, detailsList(body), "the details no table took, and only those")
			require.NotContains(t, body, "<script>")
		})
	}
}

// normalize pads rows to n cells, so rows without a note compare with "".
func normalize(rows map[string][]string, n int) map[string][]string {
	for k, cells := range rows {
		for len(cells) < n {
			cells = append(cells, "")
		}
		rows[k] = cells
	}
	return rows
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestItemPageSetsDuplicatesAndInvoicesSideBySide(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, id, operator string
		kind               api.ExceptionKind
		details            map[string]string
		caption            string
		heads              []string
		rows               map[string][]string
		differs            []string
		rest               map[string]string
	}{{
		name: "a suspected duplicate: the lead and the CRM contact", id: "lead-to-crm:dup-1", operator: aliceToken, kind: api.DuplicateSuspected,
		details: map[string]string{"contact": "901", "its email": "a***@old.example", "lead email": "a***@new.example"},
		caption: "The lead and the CRM contact it may duplicate",
		heads:   []string{"Detail", "This lead", "CRM contact 901", "Difference"},
		rows: map[string][]string{
			"CRM contact ID": {"none yet", "901", "—"},
			"Email (masked)": {"a***@new.example", "a***@old.example", "they differ"},
		},
		differs: []string{"Email (masked)"},
		rest:    map[string]string{},
	}, {
		name: "a suspected duplicate without both emails: the plain list", id: "lead-to-crm:dup-2", operator: aliceToken, kind: api.DuplicateSuspected,
		details: map[string]string{"contact": "901", "its email": "a***@old.example"},
		caption: "The lead and the CRM contact it may duplicate",
		rest:    map[string]string{"contact": "901", "its email": "a***@old.example"},
	}, {
		name: "a second CRM company with a customer's ID: both companies", id: "customer-sync:crm-company-77", operator: carolToken, kind: api.DuplicateInTarget,
		details: map[string]string{"customer": "CUST-1", "linked company": "55", "company": "77"},
		caption: "The customer's company and the duplicate",
		heads:   []string{"Detail", "Linked company", "Duplicate company", "Difference"},
		rows: map[string][]string{
			"CRM company ID":         {"55", "77", "they differ"},
			"Customer ID it carries": {"CUST-1", "CUST-1", "the same"},
		},
		differs: []string{"CRM company ID"},
		rest:    map[string]string{},
	}, {
		name: "an invoice above the threshold: its lines and total", id: "invoice-to-billing:inv-a", operator: carolToken, kind: api.ApprovalRequired,
		details: map[string]string{"customer": "CUST-1", "total": "EUR 12,000.00", "lines": "3"},
		caption: "Lines and total",
		heads:   []string{"Invoice", "This invoice"},
		rows:    map[string][]string{"Lines": {"3"}, "Total": {"EUR 12,000.00"}},
		rest:    map[string]string{"customer": "CUST-1"},
	}, {
		name: "an invoice changed after its approval: each changed line and the total, approved and now", id: "invoice-to-billing:inv-b", operator: carolToken, kind: api.ApprovalRequired,
		details: map[string]string{"customer": "CUST-1", "total": "EUR 3,050.00", "lines": "2", "approved total": "EUR 2,000.00",
			"changed lines": "line 2 was 1 × EUR 1,000.00, now 3 × EUR 1,000.00; line 3 added (1 × EUR 50.00); line 1 removed; currency was usd, now eur"},
		caption: "Lines and total, as approved and now",
		heads:   []string{"Line", "Approved", "Now", "Difference"},
		rows: map[string][]string{
			"Line 2":   {"1 × EUR 1,000.00", "3 × EUR 1,000.00", "changed"},
			"Line 3":   {"not on it", "1 × EUR 50.00", "added"},
			"Line 1":   {"on it", "removed", "removed"},
			"Currency": {"usd", "eur", "changed"},
			"Total":    {"EUR 2,000.00", "EUR 3,050.00", "they differ"},
		},
		differs: []string{"Line 2", "Line 3", "Line 1", "Currency", "Total"},
		rest:    map[string]string{"customer": "CUST-1", "lines": "2"},
	}, {
		name: "changed lines in a shape not recognised stay in the plain list; the totals still compare", id: "invoice-to-billing:inv-c", operator: carolToken, kind: api.ApprovalRequired,
		details: map[string]string{"total": "EUR 3.00", "approved total": "EUR 2.00", "changed lines": "line 2 was 1 × EUR 1.00, now 3 × EUR 1.00; something else"},
		caption: "Lines and total, as approved and now",
		heads:   []string{"Line", "Approved", "Now", "Difference"},
		rows:    map[string][]string{"Total": {"EUR 2.00", "EUR 3.00", "they differ"}},
		differs: []string{"Total"},
		rest:    map[string]string{"changed lines": "line 2 was 1 × EUR 1.00, now 3 × EUR 1.00; something else"},
	}, {
		name: "a total that differs in Stripe", id: "invoice-to-billing:inv-d", operator: carolToken, kind: api.AmountMismatch,
		details: map[string]string{"stripe invoice": "in_1", "total in PostgreSQL": "120000", "total in Stripe": "119000"},
		caption: "Total in PostgreSQL and in Stripe",
		heads:   []string{"Invoice", "PostgreSQL", "Stripe", "Difference"},
		rows:    map[string][]string{"Total (minor units)": {"120000", "119000", "they differ"}},
		differs: []string{"Total (minor units)"},
		rest:    map[string]string{"stripe invoice": "in_1"},
	}, {
		name: "an invoice whose lines break its contract: their problems, a line a row", id: "invoice-to-billing:inv-e", operator: carolToken, kind: api.ValidationFailed,
		details: map[string]string{"lines[2].quantity": "must be between 1 and 1000000", "lines[10].unitAmount": "must be a positive amount in minor units, at most 99999999",
			"lines[2].description": "is required", "currency": "must be one of …", "lines[x].quantity": "odd"},
		caption: "Problems of the invoice's lines",
		heads:   []string{"Line", "Description", "Quantity", "Unit amount"},
		rows: map[string][]string{
			"Line 2":  {"is required", "must be between 1 and 1000000", "—"},
			"Line 10": {"—", "—", "must be a positive amount in minor units, at most 99999999"},
		},
		differs: []string{"Line 2", "Line 10"},
		rest:    map[string]string{"currency": "must be one of …", "lines[x].quantity": "odd"},
	}, {
		name: "a lead's ValidationFailed: the plain list, as before", id: "lead-to-crm:bad", operator: aliceToken, kind: api.ValidationFailed,
		details: map[string]string{"email": "must be an address like name@example.com"},
		caption: "Problems of the invoice's lines",
		rest:    map[string]string{"email": "must be an address like name@example.com"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestConsole(t, nil)
			c.backend.items[tc.id] = blocked(tc.id, tc.kind, "", tc.details, api.ActionApprove, api.ActionReject)
			rec := c.do(t, request{path: "/items/" + tc.id, cookie: c.signIn(t, tc.operator)})
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			body := rec.Body.String()
			heads, rows, differs := tableOf(t, body, tc.caption)
			require.Equal(t, tc.heads, heads)
			if tc.rows == nil {
				require.Nil(t, rows)
				require.NotContains(t, body, "<caption>", "no table at all")
			} else {
				require.Equal(t, tc.rows, rows)
			}
			for name := range rows {
				require.Equal(t, contains(tc.differs, name), differs[name], "row %s marked as differing", name)
			}
			require.Equal(t, tc.rest, detailsList(body))
		})
	}
}

func TestItemPageOrderOfInvoiceRowsAndTotalInTheFoot(t *testing.T) {
	t.Parallel()
	c := newTestConsole(t, nil)
	id := "invoice-to-billing:inv-f"
	c.backend.items[id] = blocked(id, api.ApprovalRequired, "", map[string]string{"total": "EUR 3.00", "approved total": "EUR 2.00",
		"changed lines": "line 2 was 1 × EUR 1.00, now 3 × EUR 1.00; line 3 added (1 × EUR 1.00)"}, api.ActionApprove)
	body := c.do(t, request{path: "/items/" + id, cookie: c.signIn(t, carolToken)}).Body.String()
	require.Regexp(t, `(?s)<tbody>\s*<tr class="differs"><th scope="row">Line 2</th>.*<th scope="row">Line 3</th>.*</tbody>\s*<tfoot>\s*<tr class="differs"><th scope="row">Total</th>`, body,
		"the lines in the order the details give them, the total in the table's foot")
}

func TestItemComparisonsNeverPanicOnOddDetails(t *testing.T) {
	t.Parallel()
	odd := []string{"", `"`, `PostgreSQL "`, `PostgreSQL "\x"`, `PostgreSQL "a", `, `PostgreSQL "a", CRM "b"; `, `PostgreSQL "a",CRM "b"`,
		`CRM "a", form "b", last synced "c", last synced "d"`, "line", "line 1 was , now ", "line 9999999999999999999999 removed", "; ; ;", "\xff\xfe",
		`lines[99999999999999999999].quantity`, "currency was , now "}
	for _, integration := range []string{api.IntegrationCustomerSync, api.IntegrationLeadToCRM, api.IntegrationInvoiceToBilling, "unknown"} {
		for _, kind := range []api.ExceptionKind{api.Conflict, api.DuplicateSuspected, api.DuplicateInTarget, api.ApprovalRequired, api.AmountMismatch, api.ValidationFailed} {
			for _, v := range odd {
				details := map[string]string{v: v, "total": v, "approved total": v, "changed lines": v, "lead email": v, "its email": v,
					"linked company": v, "company": v, "total in PostgreSQL": v, "total in Stripe": v, "lines[1].quantity": v}
				require.NotPanics(t, func() { compare(integration, &api.ExceptionState{Kind: kind, Details: details}) }, "%s %s %q", integration, kind, v)
			}
			require.NotPanics(t, func() { compare(integration, &api.ExceptionState{Kind: kind}) }, "no details at all")
		}
	}
}

// amendForm is an amend decision's form for the item, with rows of field =
// value.
func amendForm(csrf string, s api.ItemState, rows ...[2]string) url.Values {
	form := url.Values{"csrf": {csrf}, "action": {"amend"}, "reason": {"fixing it"}, "exception": {api.ExceptionRef(s.Exception)}}
	for _, r := range rows {
		form.Add("set-field", r[0])
		form.Add("set-value", r[1])
	}
	return form
}

func TestItemAmendShowsAnInvalidValueNextToItsFieldAndSendsNothing(t *testing.T) {
	t.Parallel()
	conflict := map[string]string{"company": "co-42", "country": customerConflict("DE", "Germany", ptr("DE"), "")}
	cases := []struct {
		name, id, operator string
		kind               api.ExceptionKind
		details            map[string]string
		rows               [][2]string
		// row is the index of the row whose error is shown, with the error;
		// fieldInvalid says the field's input is marked, not the value's.
		row          int
		error        string
		fieldInvalid bool
	}{
		{name: "a lead's email that is no address", id: "lead-to-crm:bad-1", operator: aliceToken, kind: api.ValidationFailed,
			rows: [][2]string{{"phone", "+49 170 1234567"}, {"email", "not-an-email"}}, row: 1, error: "email: must be an address like name@example.com"},
		{name: "a lead's phone that is too short", id: "lead-to-crm:bad-2", operator: aliceToken, kind: api.ValidationFailed,
			rows: [][2]string{{"phone", "+49 1"}}, row: 0, error: "phone: must be digits, spaces and + ( ) . - only, 5 to 30 characters"},
		{name: "a lead's first name blanked", id: "lead-to-crm:bad-3", operator: aliceToken, kind: api.ValidationFailed,
			rows: [][2]string{{"email", "ada@example.com"}, {"", ""}, {"firstName", "  "}}, row: 2, error: "firstName: is required"},
		{name: "a field the form does not offer (a forged form)", id: "lead-to-crm:bad-4", operator: aliceToken, kind: api.ValidationFailed,
			rows: [][2]string{{"consent", "true"}}, row: 0, fieldInvalid: true,
			error: "consent: cannot be amended (amendable: email, firstName, lastName, company, phone, jobTitle, source)"},
		{name: "an invoice's due date that is no date", id: "invoice-to-billing:inv-9", operator: carolToken, kind: api.ValidationFailed,
			rows: [][2]string{{"dueDate", "31/12/2026"}}, row: 0, error: "dueDate: must be a date like 2026-12-31"},
		{name: "an invoice's currency signalbox does not bill in", id: "invoice-to-billing:inv-8", operator: carolToken, kind: api.ValidationFailed,
			rows: [][2]string{{"currency", "XYZ"}}, row: 0, error: "currency: must be one of " + strings.Join(api.InvoiceCurrencies, ", ") + " (lower case)"},
		{name: "a customer's country PostgreSQL cannot hold", id: "customer-sync:CUST-9", operator: carolToken, kind: api.Conflict, details: conflict,
			rows: [][2]string{{"country", "Germany"}}, row: 0,
			error: `country: must be an ISO 3166-1 alpha-2 code in capitals (like "DE") or empty, not "Germany"`},
		{name: "a customer's required legal name blanked", id: "customer-sync:CUST-8", operator: carolToken, kind: api.Conflict, details: conflict,
			rows: [][2]string{{"legalName", ""}}, row: 0, error: "legalName: is required"},
		{name: "a fourth row of a forged form", id: "lead-to-crm:bad-5", operator: aliceToken, kind: api.ValidationFailed,
			rows: [][2]string{{"company", "A"}, {"source", "B"}, {"jobTitle", "C"}, {"email", "@"}}, row: 3, error: "email: must be an address like name@example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestConsole(t, nil)
			s := blocked(tc.id, tc.kind, "", tc.details, api.ActionAmend, api.ActionApprove, api.ActionCancel)
			c.backend.items[tc.id] = s
			cookie := c.signIn(t, tc.operator)
			form := amendForm(c.csrfOf(t, cookie), s, tc.rows...)
			rec := c.do(t, request{method: http.MethodPost, path: "/items/" + tc.id + "/decide", cookie: cookie, form: form})
			require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
			require.Empty(t, c.backend.decisions(), "nothing was sent")
			body := rec.Body.String()

			errID := fmt.Sprintf("set-error-%d", tc.row)
			shown := regexp.MustCompile(fmt.Sprintf(`(?s)<input id="set-value-%d" [^>]*>\s*<p id="%s" class="field-error">(.*?)</p>`, tc.row, errID)).FindStringSubmatch(body)
			require.NotNil(t, shown, "the error, right after its row's value")
			require.Equal(t, tc.error, html.UnescapeString(shown[1]))
			require.Equal(t, 1, strings.Count(body, `class="field-error"`), "one error, at its row only")
			selectTag := regexp.MustCompile(fmt.Sprintf(`<select id="set-field-%d" name="set-field"[^>]*>`, tc.row)).FindString(body)
			inputTag := regexp.MustCompile(fmt.Sprintf(`<input id="set-value-%d" name="set-value"[^>]*>`, tc.row)).FindString(body)
			require.Contains(t, selectTag, `aria-describedby="`+errID+`"`)
			require.Contains(t, inputTag, `aria-describedby="`+errID+`"`)
			require.Equal(t, tc.fieldInvalid, strings.Contains(selectTag, `aria-invalid="true"`), selectTag)
			require.Equal(t, !tc.fieldInvalid, strings.Contains(inputTag, `aria-invalid="true"`), inputTag)
			require.Equal(t, 1, strings.Count(body, `aria-invalid="true"`), "only the input at fault is marked")

			for i, r := range tc.rows {
				if r[0] == "" {
					continue
				}
				require.Regexp(t, fmt.Sprintf(`(?s)<select id="set-field-%d".*?<option selected>%s</option>`, i, regexp.QuoteMeta(r[0])), body, "row %d keeps its field", i)
				kept := regexp.MustCompile(fmt.Sprintf(`<input id="set-value-%d" name="set-value" value="([^"]*)"`, i)).FindStringSubmatch(body)
				require.NotNil(t, kept, "row %d", i)
				require.Equal(t, r[1], html.UnescapeString(kept[1]), "row %d keeps its value", i)
			}
			require.Contains(t, body, `<p class="error" role="alert">Refused, nothing changed: the amendment was not sent: `)
			require.Contains(t, body, ">fixing it</textarea>", "the reason is kept")

			spec, err := api.SpecByName(s.Integration)
			require.NoError(t, err)
			set := map[string]string{}
			for _, r := range tc.rows {
				if r[0] != "" {
					set[r[0]] = r[1]
				}
			}
			require.NotEmpty(t, spec.CheckAmendment(set), "the workflow's own check refuses it too")
		})
	}
}

func TestItemAmendSendsValidValuesAndEscapesWhatWasTyped(t *testing.T) {
	t.Parallel()
	c := newTestConsole(t, nil)
	id := "lead-to-crm:ok-1"
	s := blocked(id, api.ValidationFailed, "", map[string]string{"email": "must be an address like name@example.com"}, api.ActionAmend, api.ActionReject)
	c.backend.items[id] = s
	cookie := c.signIn(t, aliceToken)
	csrf := c.csrfOf(t, cookie)

	rec := c.do(t, request{method: http.MethodPost, path: "/items/" + id + "/decide", cookie: cookie,
		form: amendForm(csrf, s, [2]string{"email", "ada@example.com"}, [2]string{"company", `"><script>alert(1)</script>`})})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Equal(t, []sentDecision{{id, api.Decision{Action: api.ActionAmend, Actor: "alice", Reason: "fixing it",
		Set: map[string]string{"email": "ada@example.com", "company": `"><script>alert(1)</script>`}}}}, c.backend.decisions())

	rec = c.do(t, request{method: http.MethodPost, path: "/items/" + id + "/decide", cookie: cookie,
		form: amendForm(csrf, s, [2]string{"company", `"><script>alert(1)</script>`}, [2]string{"email", `<b>x</b>`})})
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	body := rec.Body.String()
	require.NotContains(t, body, "<script")
	require.NotContains(t, body, "<b>x")
	require.Contains(t, body, `value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`, "what was typed, escaped in its attribute")
	require.Len(t, c.backend.decisions(), 1, "the invalid amendment was not sent")

	// A refusal by the item keeps the rows typed, without inline errors.
	c.backend.refusal = "amendment refused: phone: must be digits"
	rec = c.do(t, request{method: http.MethodPost, path: "/items/" + id + "/decide", cookie: cookie,
		form: amendForm(csrf, s, [2]string{"email", "ada@example.com"})})
	require.Equal(t, http.StatusConflict, rec.Code)
	body = rec.Body.String()
	require.Contains(t, body, `<input id="set-value-0" name="set-value" value="ada@example.com">`)
	require.Contains(t, body, `<option selected>email</option>`)
	require.NotContains(t, body, `aria-invalid`)
	require.Len(t, c.backend.decisions(), 2)

	// Until something is typed, the form offers amendRows empty rows.
	body = c.do(t, request{path: "/items/" + id, cookie: cookie}).Body.String()
	require.Equal(t, amendRows, strings.Count(body, `name="set-value" value=""`))
	require.NotContains(t, body, "selected")
}
