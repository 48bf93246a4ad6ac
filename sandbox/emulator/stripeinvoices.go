package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// stripe-mock is stateless: it answers every request with a fixture, so an
// invoice read back never shows what was done to it, and it ignores
// Idempotency-Key. The sandbox therefore remembers every invoice created
// through its Stripe port, with the items added to it, and answers for them:
// reads, searches and item lists show what it remembers (laid over
// stripe-mock's fixture, so every other field keeps Stripe's shape), and
// finalize, pay, void, mark_uncollectible and delete change it, refusing what
// Stripe refuses. Requests are still forwarded first, so stripe-mock keeps
// validating them against Stripe's spec. An invoice the sandbox never saw
// passes through to stripe-mock as before.
//
// A person's changes in Stripe's dashboard are the sandbox's own endpoints on
// the main port (see personChangesStripeInvoice).

// Invoice statuses, as Stripe names them.
const (
	invoiceDraft         = "draft"
	invoiceOpen          = "open"
	invoicePaid          = "paid"
	invoiceVoid          = "void"
	invoiceUncollectible = "uncollectible"
)

const (
	// maxStripeInvoices bounds the invoices the sandbox remembers, deleted
	// ones included: a few hundred bytes each, plus their lines. Past it the
	// oldest is forgotten, and requests that name it pass through to
	// stripe-mock as for an invoice the sandbox never saw.
	maxStripeInvoices = 10_000
	// maxStripeReplays bounds the answers kept for idempotent replays (each
	// holds its body, a few KB); Stripe keeps them for stripeReplayFor.
	maxStripeReplays = 10_000
	stripeReplayFor  = 24 * time.Hour
)

// stripeInvoice is an invoice as the sandbox remembers it; times are Unix
// seconds, as Stripe gives them, 0 for none.
type stripeInvoice struct {
	ID, Customer, Currency, CollectionMethod string
	Metadata                                 map[string]string
	Status                                   string
	Created, DueDate                         int64
	Total, AmountPaid                        int64
	FinalizedAt, PaidAt, VoidedAt            int64
	MarkedUncollectibleAt, DeletedAt         int64
	Items                                    []stripeItem
	// seq orders invoices by creation, for searches (newest first).
	seq int
}

// stripeItem is an invoice item added to a remembered invoice.
type stripeItem struct {
	ID, Description, UnitAmountDecimal string
	Quantity, Amount, Created          int64
	Metadata                           map[string]string
}

// stripeInvoices is the sandbox's memory of Stripe invoices and of the
// answers it gave under idempotency keys. Its zero value is empty and ready.
type stripeInvoices struct {
	mu       sync.Mutex
	invoices map[string]*stripeInvoice
	order    []string // invoice IDs, oldest first
	seq      int
	minted   int
	replays  map[string]*stripeReplay
	// replayOrder lists the replays' keys oldest first; an entry whose seq no
	// longer matches its key's replay is stale.
	replayOrder []replayRef
}

type stripeReplay struct {
	request string
	at      time.Time
	seq     int
	done    bool
	answer  result
}

type replayRef struct {
	key string
	seq int
}

// transitions are the status changes Stripe allows, by target status.
var transitions = map[string]struct {
	verb, done string
	from       []string
}{
	invoiceOpen:          {"finalize", "finalized", []string{invoiceDraft}},
	invoicePaid:          {"pay", "paid", []string{invoiceDraft, invoiceOpen, invoiceUncollectible}},
	invoiceVoid:          {"void", "voided", []string{invoiceOpen, invoiceUncollectible}},
	invoiceUncollectible: {"mark as uncollectible", "marked uncollectible", []string{invoiceOpen}},
}

// can says why Stripe would refuse to move the invoice to status to.
func (inv *stripeInvoice) can(to string) error {
	rule := transitions[to]
	if slices.Contains(rule.from, inv.Status) {
		return nil
	}
	return fmt.Errorf("You cannot %s invoice %s: it is %s, and only %s invoices can be %s.",
		rule.verb, inv.ID, inv.Status, strings.Join(rule.from, " or "), rule.done)
}

// move changes the invoice's status at the Unix time at, as Stripe does: a
// draft is finalized first, and an invoice with nothing to pay is paid when
// it is finalized.
func (inv *stripeInvoice) move(to string, at int64) error {
	if err := inv.can(to); err != nil {
		return err
	}
	if inv.Status == invoiceDraft {
		inv.FinalizedAt = at
		if inv.Total == 0 {
			to = invoicePaid
		}
	}
	switch to {
	case invoicePaid:
		inv.PaidAt = at
		inv.AmountPaid = inv.Total
	case invoiceVoid:
		inv.VoidedAt = at
	case invoiceUncollectible:
		inv.MarkedUncollectibleAt = at
	}
	inv.Status = to
	return nil
}

// unixOrNil is a Stripe timestamp: null when unset.
func unixOrNil(t int64) any {
	if t == 0 {
		return nil
	}
	return t
}

// render lays the remembered invoice over stripe-mock's answer m.
func (inv *stripeInvoice) render(m map[string]any) map[string]any {
	m = maps.Clone(m)
	if m == nil {
		m = map[string]any{"object": "invoice", "livemode": false}
	}
	due := inv.Total
	m["id"], m["customer"], m["currency"], m["status"], m["created"] = inv.ID, inv.Customer, inv.Currency, inv.Status, inv.Created
	m["metadata"] = nonNil(inv.Metadata)
	for _, k := range []string{"total", "subtotal", "total_excluding_tax", "subtotal_excluding_tax", "amount_due"} {
		m[k] = due
	}
	m["amount_paid"], m["amount_remaining"] = inv.AmountPaid, due-inv.AmountPaid
	m["status_transitions"] = map[string]any{"finalized_at": unixOrNil(inv.FinalizedAt), "paid_at": unixOrNil(inv.PaidAt),
		"voided_at": unixOrNil(inv.VoidedAt), "marked_uncollectible_at": unixOrNil(inv.MarkedUncollectibleAt)}
	if inv.DueDate != 0 {
		m["due_date"] = inv.DueDate
	}
	if inv.CollectionMethod != "" {
		m["collection_method"] = inv.CollectionMethod
	}
	lines := make([]any, len(inv.Items))
	for i, it := range inv.Items {
		lines[i] = map[string]any{"id": "il_" + strings.TrimPrefix(it.ID, "ii_"), "object": "line_item", "livemode": false,
			"invoice": inv.ID, "amount": it.Amount, "subtotal": it.Amount, "currency": inv.Currency, "description": it.Description,
			"quantity": it.Quantity, "quantity_decimal": strconv.FormatInt(it.Quantity, 10), "metadata": nonNil(it.Metadata),
			"pricing": map[string]any{"type": "price_details", "unit_amount_decimal": nilIfEmpty(it.UnitAmountDecimal)},
			"parent":  map[string]any{"type": "invoice_item_details", "invoice_item_details": map[string]any{"invoice_item": it.ID}}}
	}
	m["lines"] = map[string]any{"object": "list", "data": lines, "has_more": false, "total_count": len(lines), "url": "/v1/invoices/" + inv.ID + "/lines"}
	return m
}

// render lays a remembered item of inv over stripe-mock's answer m.
func (it stripeItem) render(m map[string]any, inv *stripeInvoice) map[string]any {
	m = maps.Clone(m)
	if m == nil {
		m = map[string]any{"object": "invoiceitem", "livemode": false}
	}
	m["id"], m["invoice"], m["customer"], m["currency"], m["description"] = it.ID, inv.ID, inv.Customer, inv.Currency, it.Description
	m["quantity"], m["quantity_decimal"], m["amount"], m["date"] = it.Quantity, strconv.FormatInt(it.Quantity, 10), it.Amount, it.Created
	m["metadata"] = nonNil(it.Metadata)
	m["pricing"] = map[string]any{"type": "price_details", "unit_amount_decimal": nilIfEmpty(it.UnitAmountDecimal)}
	return m
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// remember keeps a new invoice under the ID stripe-mock gave it, or under one
// of the sandbox's own (in_sbx_N) when that ID is empty or taken, forgetting
// the oldest invoice past maxStripeInvoices. p.mu must be held.
func (p *stripeInvoices) remember(inv *stripeInvoice, id string) {
	if p.invoices == nil {
		p.invoices = map[string]*stripeInvoice{}
	}
	if _, taken := p.invoices[id]; id == "" || taken {
		p.minted++
		id = fmt.Sprintf("in_sbx_%d", p.minted)
	}
	for len(p.invoices) >= maxStripeInvoices {
		delete(p.invoices, p.order[0])
		p.order = p.order[1:]
	}
	p.seq++
	inv.ID, inv.seq = id, p.seq
	p.invoices[id] = inv
	p.order = append(p.order, id)
}

// itemID is stripe-mock's ID for a new item, or one of the sandbox's own
// (ii_sbx_N) when it is empty or the invoice has it already. p.mu must be held.
func (p *stripeInvoices) itemID(inv *stripeInvoice, id string) string {
	if id == "" || slices.ContainsFunc(inv.Items, func(it stripeItem) bool { return it.ID == id }) {
		p.minted++
		return fmt.Sprintf("ii_sbx_%d", p.minted)
	}
	return id
}

// invoiceMissing is Stripe's answer for an invoice it does not have.
func invoiceMissing(id, param string) *result {
	body := stripeError("invalid_request_error", "No such invoice: '"+id+"'", param)
	body["error"].(map[string]any)["code"] = "resource_missing"
	return &result{status: http.StatusNotFound, body: body}
}

func invalidRequest(message, param string) *result {
	return &result{status: http.StatusBadRequest, body: stripeError("invalid_request_error", message, param)}
}

func succeeded(res result) bool { return res.status >= 200 && res.status < 300 }

// answerObject decodes stripe-mock's JSON answer, keeping numbers exact.
func answerObject(res result) (map[string]any, bool) {
	raw, ok := res.body.([]byte)
	if !ok {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	return m, dec.Decode(&m) == nil && m != nil
}

// answer replaces a forwarded result's body with v.
func answer(res result, v any) result {
	raw, err := json.Marshal(v)
	if err != nil {
		return result{status: http.StatusInternalServerError, body: stripeError("api_error", "encoding the answer: "+err.Error(), "")}
	}
	return result{status: res.status, body: raw, contentType: "application/json", effect: res.effect}
}

// formMap reads a Stripe hash parameter (metadata[key]=value); an empty
// value unsets a key, as in Stripe.
func formMap(form url.Values, name string) map[string]string {
	out := map[string]string{}
	for k, v := range form {
		key, ok := strings.CutPrefix(k, name+"[")
		if key, ok = strings.CutSuffix(key, "]"); ok && v[0] != "" {
			out[key] = v[0]
		}
	}
	return out
}

// stripeInvoiceHandler makes a route's handler of a method with the Stripe
// overlay's signature.
func stripeInvoiceHandler(h func(*Server, *http.Request, []byte) result) func(*Server) handler {
	return func(s *Server) handler { return func(r *http.Request, body []byte) result { return h(s, r, body) } }
}

// createStripeInvoice is POST /v1/invoices: stripe-mock validates and answers,
// the sandbox remembers the draft.
func (s *Server) createStripeInvoice(r *http.Request, body []byte) result {
	res := s.stripeForward(r, body)
	m, ok := answerObject(res)
	if !succeeded(res) || !ok {
		return res
	}
	form, _ := url.ParseQuery(string(body))
	inv := &stripeInvoice{Customer: form.Get("customer"), Currency: strings.ToLower(form.Get("currency")),
		CollectionMethod: form.Get("collection_method"), Metadata: formMap(form, "metadata"), Status: invoiceDraft, Created: s.now().Unix()}
	inv.DueDate, _ = strconv.ParseInt(form.Get("due_date"), 10, 64)
	if inv.Currency == "" {
		inv.Currency, _ = m["currency"].(string)
	}
	id, _ := m["id"].(string)
	p := &s.stripe.invoices
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remember(inv, id)
	return answer(res, inv.render(m))
}

// onInvoice answers a request that names invoice id (in parameter param).
// For an invoice the sandbox remembers, check says what Stripe would refuse
// (nil: nothing) — before forwarding, and again after, as the invoice may
// have changed meanwhile — and apply changes it and makes the answer from
// stripe-mock's.
func (s *Server) onInvoice(r *http.Request, body []byte, id, param string, check func(*stripeInvoice) *result,
	apply func(*stripeInvoice, map[string]any) any) result {
	p := &s.stripe.invoices
	refusal := func(inv *stripeInvoice) *result {
		if inv.DeletedAt != 0 {
			return invoiceMissing(id, param)
		}
		if check != nil {
			return check(inv)
		}
		return nil
	}
	p.mu.Lock()
	inv := p.invoices[id]
	var bad *result
	if inv != nil {
		bad = refusal(inv)
	}
	p.mu.Unlock()
	if bad != nil {
		return *bad
	}
	res := s.stripeForward(r, body)
	m, ok := answerObject(res)
	if inv == nil || !succeeded(res) || !ok {
		return res
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.invoices[id] != inv {
		return res // forgotten meanwhile, past the cap
	}
	if bad := refusal(inv); bad != nil {
		return *bad
	}
	return answer(res, apply(inv, m))
}

// getStripeInvoice is GET /v1/invoices/{id}.
func (s *Server) getStripeInvoice(r *http.Request, body []byte) result {
	return s.onInvoice(r, body, r.PathValue("id"), "id", nil, func(inv *stripeInvoice, m map[string]any) any { return inv.render(m) })
}

// deleteStripeInvoice is DELETE /v1/invoices/{id}: Stripe deletes drafts only.
func (s *Server) deleteStripeInvoice(r *http.Request, body []byte) result {
	check := func(inv *stripeInvoice) *result {
		if inv.Status != invoiceDraft {
			return invalidRequest(fmt.Sprintf("You can only delete draft invoices; invoice %s is %s (void it instead).", inv.ID, inv.Status), "")
		}
		return nil
	}
	return s.onInvoice(r, body, r.PathValue("id"), "id", check, func(inv *stripeInvoice, _ map[string]any) any {
		inv.DeletedAt = s.now().Unix()
		return map[string]any{"id": inv.ID, "object": "invoice", "deleted": true}
	})
}

// invoiceAction makes the handler of POST /v1/invoices/{id}/<action>, which
// moves the invoice to status to.
func invoiceAction(to string) func(*Server) handler {
	return idempotent(func(s *Server, r *http.Request, body []byte) result {
		check := func(inv *stripeInvoice) *result {
			if err := inv.can(to); err != nil {
				return invalidRequest(err.Error(), "")
			}
			return nil
		}
		return s.onInvoice(r, body, r.PathValue("id"), "id", check, func(inv *stripeInvoice, m map[string]any) any {
			_ = inv.move(to, s.now().Unix()) // checked under the same lock
			return inv.render(m)
		})
	})
}

// createStripeInvoiceItem is POST /v1/invoiceitems: an item added to a
// remembered draft adds quantity × unit amount (or its amount) to the total.
func (s *Server) createStripeInvoiceItem(r *http.Request, body []byte) result {
	form, _ := url.ParseQuery(string(body))
	check := func(inv *stripeInvoice) *result {
		if inv.Status != invoiceDraft {
			return invalidRequest(fmt.Sprintf("Invoice %s is %s: items can only be added to draft invoices.", inv.ID, inv.Status), "invoice")
		}
		return nil
	}
	return s.onInvoice(r, body, form.Get("invoice"), "invoice", check, func(inv *stripeInvoice, m map[string]any) any {
		it := newItem(form, m, s.now().Unix())
		it.ID = s.stripe.invoices.itemID(inv, it.ID)
		inv.Items = append(inv.Items, it)
		inv.Total += it.Amount
		return it.render(m, inv)
	})
}

// newItem reads an item's create parameters; stripe-mock's answer m gives
// its ID, and its amount when it is priced some other way (a price).
func newItem(form url.Values, m map[string]any, now int64) stripeItem {
	it := stripeItem{Description: form.Get("description"), Metadata: formMap(form, "metadata"), Quantity: 1, Created: now}
	it.ID, _ = m["id"].(string)
	if q, err := strconv.ParseInt(form.Get("quantity"), 10, 64); err == nil {
		it.Quantity = q
	}
	it.UnitAmountDecimal = form.Get("unit_amount_decimal")
	if it.UnitAmountDecimal == "" {
		it.UnitAmountDecimal = form.Get("unit_amount")
	}
	if n, err := strconv.ParseInt(form.Get("amount"), 10, 64); err == nil {
		it.Amount = n
	} else if unit, err := strconv.ParseFloat(it.UnitAmountDecimal, 64); err == nil {
		it.Amount = int64(math.Round(float64(it.Quantity) * unit))
	} else if n, ok := m["amount"].(json.Number); ok {
		it.Amount, _ = n.Int64()
	}
	return it
}

// listLimit is a list's limit parameter: 10 unless given, at most 100.
func listLimit(q url.Values) int {
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 {
		return 10
	}
	return min(n, 100)
}

// firstOf is the first object of a list answer, a template for the objects
// the sandbox lists instead.
func firstOf(m map[string]any) map[string]any {
	if data, ok := m["data"].([]any); ok && len(data) > 0 {
		first, _ := data[0].(map[string]any)
		return first
	}
	return nil
}

// listStripeInvoiceItems is GET /v1/invoiceitems: with invoice=<a remembered
// invoice>, its items, newest first, paged by starting_after.
func (s *Server) listStripeInvoiceItems(r *http.Request, body []byte) result {
	res := s.stripeForward(r, body)
	m, ok := answerObject(res)
	q := r.URL.Query()
	p := &s.stripe.invoices
	p.mu.Lock()
	defer p.mu.Unlock()
	inv := p.invoices[q.Get("invoice")]
	if !succeeded(res) || !ok || inv == nil {
		return res
	}
	var items []stripeItem
	if inv.DeletedAt == 0 {
		items = slices.Clone(inv.Items)
		slices.Reverse(items)
	}
	if after := q.Get("starting_after"); after != "" {
		i := slices.IndexFunc(items, func(it stripeItem) bool { return it.ID == after })
		if i < 0 {
			items = nil // nothing follows an item the invoice does not have
		} else {
			items = items[i+1:]
		}
	}
	limit := listLimit(q)
	template := firstOf(m)
	data := []any{}
	for _, it := range items[:min(limit, len(items))] {
		data = append(data, it.render(template, inv))
	}
	m["data"], m["has_more"], m["url"] = data, len(items) > limit, "/v1/invoiceitems"
	return answer(res, m)
}

// searchStripeInvoices is GET /v1/invoices/search: a query the sandbox
// understands (see parseInvoiceQuery) searches the remembered invoices,
// newest first; any other passes stripe-mock's answer through.
func (s *Server) searchStripeInvoices(r *http.Request, body []byte) result {
	res := s.stripeForward(r, body)
	m, ok := answerObject(res)
	q := r.URL.Query()
	query, understood := parseInvoiceQuery(q.Get("query"))
	if !succeeded(res) || !ok || !understood {
		return res
	}
	const pagePrefix = "sbx_page_"
	offset, _ := strconv.Atoi(strings.TrimPrefix(q.Get("page"), pagePrefix))
	limit := listLimit(q)
	template := firstOf(m)
	p := &s.stripe.invoices
	p.mu.Lock()
	defer p.mu.Unlock()
	var found []*stripeInvoice
	for _, inv := range p.invoices {
		if inv.DeletedAt == 0 && query.matches(inv) {
			found = append(found, inv)
		}
	}
	slices.SortFunc(found, func(a, b *stripeInvoice) int { return b.seq - a.seq })
	offset = min(max(offset, 0), len(found))
	data := []any{}
	for _, inv := range found[offset:min(offset+limit, len(found))] {
		data = append(data, inv.render(template))
	}
	m["data"], m["has_more"], m["total_count"], m["url"], m["next_page"] = data, offset+limit < len(found), len(found), "/v1/invoices/search", nil
	if offset+limit < len(found) {
		m["next_page"] = pagePrefix + strconv.Itoa(offset+limit)
	}
	return answer(res, m)
}

// invoiceQuery is a Stripe search query the sandbox understands: clauses
// field:'value' on metadata['key'], status, customer, currency or total, all
// joined by AND or all by OR.
type invoiceQuery struct {
	clauses []queryClause
	or      bool
}

type queryClause struct{ field, key, value string }

func (q invoiceQuery) matches(inv *stripeInvoice) bool {
	for _, c := range q.clauses {
		var v string
		switch c.field {
		case "metadata":
			v = inv.Metadata[c.key]
		case "status":
			v = inv.Status
		case "customer":
			v = inv.Customer
		case "currency":
			v = inv.Currency
		case "total":
			v = strconv.FormatInt(inv.Total, 10)
		}
		if ok := v == c.value || c.field == "currency" && strings.EqualFold(v, c.value); ok == q.or {
			return ok
		}
	}
	return !q.or
}

// parseInvoiceQuery reads a search query; false when the sandbox does not
// understand it.
func parseInvoiceQuery(s string) (invoiceQuery, bool) {
	var q invoiceQuery
	join := ""
	rest := strings.TrimSpace(s)
	for {
		c, after, ok := parseClause(rest)
		if !ok {
			return q, false
		}
		q.clauses = append(q.clauses, c)
		after = strings.TrimLeft(after, " ")
		if after == "" {
			break
		}
		word, tail, _ := strings.Cut(after, " ")
		if word != "AND" && word != "OR" || join != "" && word != join {
			return q, false
		}
		join, rest = word, strings.TrimLeft(tail, " ")
	}
	q.or = join == "OR"
	return q, true
}

func parseClause(s string) (c queryClause, rest string, ok bool) {
	if after, isMeta := strings.CutPrefix(s, "metadata["); isMeta {
		key, tail, isQuoted := quoted(after)
		tail, closed := strings.CutPrefix(tail, "]")
		if !isQuoted || !closed {
			return c, "", false
		}
		c.field, c.key, s = "metadata", key, tail
	} else {
		field, tail, found := strings.Cut(s, ":")
		if !found || !slices.Contains([]string{"status", "customer", "currency", "total"}, field) {
			return c, "", false
		}
		c.field, s = field, ":"+tail
	}
	if s, ok = strings.CutPrefix(s, ":"); !ok {
		return c, "", false
	}
	if c.value, rest, ok = quoted(s); ok {
		return c, rest, true
	}
	c.value, rest, _ = strings.Cut(s, " ")
	return c, " " + rest, c.value != "" && !strings.ContainsAny(c.value, `'"`)
}

// quoted reads a '…' or "…" string with backslash escapes at the start of s.
func quoted(s string) (value, rest string, ok bool) {
	if s == "" || s[0] != '\'' && s[0] != '"' {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case s[i] == s[0]:
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", s, false
}

// idempotent answers a POST carrying an Idempotency-Key as Stripe does: the
// first successful answer is kept for stripeReplayFor and given again to the
// same request under that key; the key with other parameters, or while its
// first request is still being answered, is refused with an
// idempotency_error. Unsuccessful answers are not kept: the request may be
// sent again. A replay changes nothing (its log entry has no effect).
func idempotent(h func(*Server, *http.Request, []byte) result) func(*Server) handler {
	return func(s *Server) handler {
		return func(r *http.Request, body []byte) result {
			key := r.Header.Get("Idempotency-Key")
			if key == "" || r.Method != http.MethodPost {
				return h(s, r, body)
			}
			request := r.URL.Path + "?" + canonicalForm(body)
			p := &s.stripe.invoices
			seq, refused := p.reserve(key, request, s.now())
			if refused != nil {
				return *refused
			}
			res := h(s, r, body)
			p.settle(key, seq, res)
			return res
		}
	}
}

// canonicalForm is a form body with its parameters in a fixed order.
func canonicalForm(body []byte) string {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return string(body)
	}
	return form.Encode()
}

// reserve claims key for a request, or returns the answer Stripe gives
// instead: the kept one, or an idempotency_error.
func (p *stripeInvoices) reserve(key, request string, now time.Time) (int, *result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneReplays(now)
	if kept, ok := p.replays[key]; ok {
		switch {
		case kept.request != request:
			return 0, &result{status: http.StatusBadRequest, body: stripeError("idempotency_error", fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key), "")}
		case !kept.done:
			return 0, &result{status: http.StatusConflict, body: stripeError("idempotency_error", fmt.Sprintf("There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): %s. Please try again later.", key), "")}
		}
		replay := kept.answer
		replay.effect = false
		return 0, &replay
	}
	if p.replays == nil {
		p.replays = map[string]*stripeReplay{}
	}
	p.seq++
	p.replays[key] = &stripeReplay{request: request, at: now, seq: p.seq}
	p.replayOrder = append(p.replayOrder, replayRef{key, p.seq})
	return p.seq, nil
}

// settle keeps a successful answer under the key reserved as seq, or frees the key.
func (p *stripeInvoices) settle(key string, seq int, res result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept, ok := p.replays[key]
	if !ok || kept.seq != seq {
		return
	}
	if !succeeded(res) {
		delete(p.replays, key)
		return
	}
	kept.done, kept.answer = true, res
}

// pruneReplays forgets answers older than stripeReplayFor, and the oldest
// past maxStripeReplays. p.mu must be held.
func (p *stripeInvoices) pruneReplays(now time.Time) {
	for len(p.replayOrder) > 0 {
		ref := p.replayOrder[0]
		kept, ok := p.replays[ref.key]
		live := ok && kept.seq == ref.seq
		if live && len(p.replays) < maxStripeReplays && now.Sub(kept.at) < stripeReplayFor {
			return
		}
		if live {
			delete(p.replays, ref.key)
		}
		p.replayOrder = p.replayOrder[1:]
	}
}

// The endpoints below are the sandbox's own, on the main port: what a person
// does in Stripe's dashboard, and what a test reads of it. Like the CRM's,
// they are neither logged as API requests nor subject to faults.

// stripeInvoiceView is a remembered invoice as /_sandbox/stripe/invoices shows it.
type stripeInvoiceView struct {
	ID                    string            `json:"id"`
	Customer              string            `json:"customer"`
	Currency              string            `json:"currency"`
	Metadata              map[string]string `json:"metadata"`
	Status                string            `json:"status"`
	Total                 int64             `json:"total"`
	AmountDue             int64             `json:"amountDue"`
	AmountPaid            int64             `json:"amountPaid"`
	Created               time.Time         `json:"created"`
	DueDate               time.Time         `json:"dueDate,omitzero"`
	FinalizedAt           time.Time         `json:"finalizedAt,omitzero"`
	PaidAt                time.Time         `json:"paidAt,omitzero"`
	VoidedAt              time.Time         `json:"voidedAt,omitzero"`
	MarkedUncollectibleAt time.Time         `json:"markedUncollectibleAt,omitzero"`
	Deleted               bool              `json:"deleted"`
	DeletedAt             time.Time         `json:"deletedAt,omitzero"`
	Lines                 []stripeLineView  `json:"lines"`
}

type stripeLineView struct {
	ID                string            `json:"id"`
	Description       string            `json:"description"`
	Quantity          int64             `json:"quantity"`
	UnitAmountDecimal string            `json:"unitAmountDecimal,omitempty"`
	Amount            int64             `json:"amount"`
	Metadata          map[string]string `json:"metadata"`
}

func unixTime(t int64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(t, 0).UTC()
}

func (inv *stripeInvoice) view() stripeInvoiceView {
	v := stripeInvoiceView{ID: inv.ID, Customer: inv.Customer, Currency: inv.Currency, Metadata: nonNil(inv.Metadata), Status: inv.Status,
		Total: inv.Total, AmountDue: inv.Total, AmountPaid: inv.AmountPaid, Created: unixTime(inv.Created), DueDate: unixTime(inv.DueDate),
		FinalizedAt: unixTime(inv.FinalizedAt), PaidAt: unixTime(inv.PaidAt), VoidedAt: unixTime(inv.VoidedAt),
		MarkedUncollectibleAt: unixTime(inv.MarkedUncollectibleAt), Deleted: inv.DeletedAt != 0, DeletedAt: unixTime(inv.DeletedAt),
		Lines: []stripeLineView{}}
	for _, it := range inv.Items {
		v.Lines = append(v.Lines, stripeLineView{ID: it.ID, Description: it.Description, Quantity: it.Quantity,
			UnitAmountDecimal: it.UnitAmountDecimal, Amount: it.Amount, Metadata: nonNil(it.Metadata)})
	}
	return v
}

// getStripeInvoices is GET /_sandbox/stripe/invoices: every remembered
// invoice, oldest first, deleted ones included.
func (s *Server) getStripeInvoices(w http.ResponseWriter, _ *http.Request) {
	p := &s.stripe.invoices
	p.mu.Lock()
	out := []stripeInvoiceView{}
	for _, id := range p.order {
		out = append(out, p.invoices[id].view())
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"invoices": out})
}

// onPersonInvoice runs do, under the lock, on the remembered invoice the
// path names (one not deleted, when live), or answers 404.
func (s *Server) onPersonInvoice(w http.ResponseWriter, r *http.Request, live bool, do func(*stripeInvoice)) {
	id := r.PathValue("id")
	p := &s.stripe.invoices
	p.mu.Lock()
	defer p.mu.Unlock()
	switch inv := p.invoices[id]; {
	case inv == nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the sandbox has no Stripe invoice " + id +
			"; it remembers the invoices created through its Stripe port (GET /_sandbox/stripe/invoices lists them)"})
	case live && inv.DeletedAt != 0:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("Stripe invoice %s was deleted at %s",
			id, unixTime(inv.DeletedAt).Format(time.RFC3339))})
	default:
		do(inv)
	}
}

// personReadsStripeInvoice is GET /_sandbox/stripe/invoices/{id}; a deleted
// invoice is shown with deleted: true.
func (s *Server) personReadsStripeInvoice(w http.ResponseWriter, r *http.Request) {
	s.onPersonInvoice(w, r, false, func(inv *stripeInvoice) { writeJSON(w, http.StatusOK, inv.view()) })
}

// invoiceChangeUsage says what POST /_sandbox/stripe/invoices/{id} takes.
const invoiceChangeUsage = `send {"status": "open"|"paid"|"void"|"uncollectible", "at": "<RFC3339 time, optional, default now>", "total": <minor units, optional>}`

// personChangesStripeInvoice is POST /_sandbox/stripe/invoices/{id}: a person
// finalizes, marks paid, voids or marks uncollectible an invoice in Stripe's
// dashboard (Stripe's rules apply: 409 for a change it refuses; setting the
// status an invoice has changes nothing), and may change its total, as a
// test does to make Stripe disagree with PostgreSQL.
func (s *Server) personChangesStripeInvoice(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Status string `json:"status"`
		At     string `json:"at"`
		Total  *int64 `json:"total"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	at := s.now()
	var bad string
	switch err := dec.Decode(&in); {
	case err != nil:
		bad = invoiceChangeUsage + ": " + err.Error()
	case in.Status == "" && in.Total == nil:
		bad = "nothing to change: " + invoiceChangeUsage
	case in.Status != "" && transitions[in.Status].verb == "":
		bad = fmt.Sprintf("status %q is not one of open, paid, void, uncollectible", in.Status)
	case in.At != "" && in.Status == "":
		bad = `"at" is when the status changed: send it with a status`
	case in.Total != nil && *in.Total < 0:
		bad = fmt.Sprintf("total %d is negative; send minor units, e.g. 4200 for 42.00", *in.Total)
	case in.At != "":
		if at, err = time.Parse(time.RFC3339, in.At); err != nil {
			bad = fmt.Sprintf("at %q is not an RFC3339 time such as 2026-11-26T12:00:00Z", in.At)
		}
	}
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": bad})
		return
	}
	s.onPersonInvoice(w, r, true, func(inv *stripeInvoice) {
		next := *inv
		if in.Total != nil {
			next.Total = *in.Total
		}
		if in.Status != "" && in.Status != inv.Status {
			if err := next.move(in.Status, at.Unix()); err != nil {
				writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
				return
			}
		}
		if next.Status == invoicePaid {
			next.AmountPaid = next.Total
		}
		*inv = next
		writeJSON(w, http.StatusOK, inv.view())
	})
}

// personDeletesStripeInvoice is DELETE /_sandbox/stripe/invoices/{id}: the
// invoice is gone from Stripe, whatever its status (Stripe's API deletes
// drafts only; this stands for any way an invoice disappears), and reading it
// through the Stripe port answers 404.
func (s *Server) personDeletesStripeInvoice(w http.ResponseWriter, r *http.Request) {
	s.onPersonInvoice(w, r, true, func(inv *stripeInvoice) {
		inv.DeletedAt = s.now().Unix()
		writeJSON(w, http.StatusOK, inv.view())
	})
}

// reset forgets every invoice and idempotent answer (POST /_sandbox/reset).
func (p *stripeInvoices) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.invoices, p.order, p.seq, p.replays, p.replayOrder = nil, nil, 0, nil, nil
}
