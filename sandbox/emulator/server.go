// Package emulator holds the sandbox's emulators of external APIs — a HubSpot-compatible
// CRM and Slack-compatible webhooks — with seeded fault injection and a request
// log that tests read to prove exactly-once effects.
package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// route is one emulated endpoint: its HTTP pattern, its name (fault plans
// and the request log use it), and its handler on a server; stripe routes are
// served on the Stripe port.
type route struct {
	pattern, endpoint string
	handle            func(s *Server) handler
}

// crmRoutes and stripeRoutes are every emulated endpoint.
var (
	crmRoutes = []route{
		{"POST /crm/v3/objects/contacts/search", "crm.search", crmRoute(contactsOf, (*Server).objSearch)},
		{"POST /crm/v3/objects/contacts/batch/read", "crm.batch.read", crmRoute(contactsOf, (*Server).objBatchRead)},
		{"POST /crm/v3/objects/contacts", "crm.create", crmRoute(contactsOf, (*Server).objCreate)},
		{"GET /crm/v3/objects/contacts", "crm.list", crmRoute(contactsOf, (*Server).objList)},
		{"GET /crm/v3/objects/contacts/{id}", "crm.get", crmRoute(contactsOf, (*Server).objGet)},
		{"PATCH /crm/v3/objects/contacts/{id}", "crm.update", crmRoute(contactsOf, (*Server).objUpdate)},
		{"POST /crm/v3/objects/companies/search", "crm.companies.search", crmRoute(companiesOf, (*Server).objSearch)},
		{"POST /crm/v3/objects/companies/batch/read", "crm.companies.batch.read", crmRoute(companiesOf, (*Server).objBatchRead)},
		{"POST /crm/v3/objects/companies/batch/create", "crm.companies.batch.create", crmRoute(companiesOf, (*Server).objBatchCreate)},
		{"POST /crm/v3/objects/companies/batch/update", "crm.companies.batch.update", crmRoute(companiesOf, (*Server).objBatchUpdate)},
		{"POST /crm/v3/objects/companies", "crm.companies.create", crmRoute(companiesOf, (*Server).objCreate)},
		{"GET /crm/v3/objects/companies", "crm.companies.list", crmRoute(companiesOf, (*Server).objList)},
		{"GET /crm/v3/objects/companies/{id}", "crm.companies.get", crmRoute(companiesOf, (*Server).objGet)},
		{"PATCH /crm/v3/objects/companies/{id}", "crm.companies.update", crmRoute(companiesOf, (*Server).objUpdate)},
		{"DELETE /crm/v3/objects/companies/{id}", "crm.companies.archive", crmRoute(companiesOf, (*Server).objArchive)},
		{"POST /services/{team...}", "chat.post", func(s *Server) handler { return s.chatPost }},
	}
	stripeRoutes = []route{
		{"GET /v1/customers/search", "stripe.customers.search", forward},
		{"POST /v1/customers", "stripe.customers.create", forward},
		{"POST /v1/invoices", "stripe.invoices.create", idempotent((*Server).createStripeInvoice)},
		{"POST /v1/invoiceitems", "stripe.invoiceitems.create", idempotent((*Server).createStripeInvoiceItem)},
		{"GET /v1/invoiceitems", "stripe.invoiceitems.list", stripeInvoiceHandler((*Server).listStripeInvoiceItems)},
		{"GET /v1/invoices/search", "stripe.invoices.search", stripeInvoiceHandler((*Server).searchStripeInvoices)},
		{"POST /v1/invoices/{id}/finalize", "stripe.invoices.finalize", invoiceAction(invoiceOpen)},
		{"POST /v1/invoices/{id}/pay", "stripe.invoices.pay", invoiceAction(invoicePaid)},
		{"POST /v1/invoices/{id}/void", "stripe.invoices.void", invoiceAction(invoiceVoid)},
		{"POST /v1/invoices/{id}/mark_uncollectible", "stripe.invoices.mark_uncollectible", invoiceAction(invoiceUncollectible)},
		{"GET /v1/invoices/{id}", "stripe.invoices.get", stripeInvoiceHandler((*Server).getStripeInvoice)},
		{"DELETE /v1/invoices/{id}", "stripe.invoices.delete", stripeInvoiceHandler((*Server).deleteStripeInvoice)},
		{"/", "stripe.other", forward},
	}
)

func forward(s *Server) handler { return s.stripeForward }

// crmRoute makes a CRM route's handler: an objects API endpoint on one object
// type's store, behind the bearer-token check.
func crmRoute(of storeOf, endpoint func(*Server, storeOf) handler) func(*Server) handler {
	return func(s *Server) handler { return s.crmAuth(endpoint(s, of)) }
}

// endpoints lists the names of every emulated endpoint.
func endpoints() []string {
	var out []string
	for _, r := range append(slices.Clone(crmRoutes), stripeRoutes...) {
		out = append(out, r.endpoint)
	}
	return out
}

// maxRequestBody bounds what an emulator reads of a request.
const maxRequestBody = 1 << 20

// maxLogEntries bounds the request log; older entries are dropped.
const maxLogEntries = 1_000_000

// Entry is one request as the sandbox saw it.
type Entry struct {
	Seq int       `json:"seq"`
	At  time.Time `json:"at"`
	// SentAt is when the client says it sent the request (rest.SentAtHeader),
	// after its rate limit and pauses; zero when it did not say.
	SentAt         time.Time `json:"sentAt,omitzero"`
	Endpoint       string    `json:"endpoint"`
	Method         string    `json:"method"`
	Path           string    `json:"path"`
	Identity       string    `json:"identity"`
	Attempt        int       `json:"attempt"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	Status         int       `json:"status"`
	Fault          string    `json:"fault,omitempty"`
	AfterEffect    bool      `json:"afterEffect,omitempty"`
	// Effect is true when the request changed the emulator's state.
	Effect bool `json:"effect,omitempty"`
	// EarlyRetry is true when the request was sent after we had answered the
	// same request with a Retry-After and before that had passed.
	EarlyRetry bool `json:"earlyRetry,omitempty"`
	// DuringBackoff is true when the request was sent while a Retry-After we gave
	// any request of the same target was in force.
	DuringBackoff bool `json:"duringBackoff,omitempty"`
	// RateLimited is true when the vendor's request limit refused the request
	// (with a 429), as opposed to an injected fault.
	RateLimited bool  `json:"rateLimited,omitempty"`
	DurationMS  int64 `json:"durationMs"`
}

// backoff is the time Retry-Afters cover: from when the first one was given
// (while none was in force) to the end of the latest. A request sent before
// that began could not know of it: it came with, not after, the one refused.
type backoff struct{ from, until time.Time }

func (b backoff) covers(sent time.Time) bool { return !sent.Before(b.from) && sent.Before(b.until) }

// result is what an emulator's handler produces for one request.
type result struct {
	status int
	body   any // JSON-encoded unless it is a string or raw bytes
	effect bool
	// contentType goes with a []byte body.
	contentType string
}

type handler func(r *http.Request, body []byte) result

// Server hosts the emulators, the fault injection and the request log.
type Server struct {
	seed           int64
	token          string
	stripe         *stripeProxy
	firstID        int
	firstCompanyID int
	hangLimit      time.Duration
	now            func() time.Time
	log            *slog.Logger
	mu             sync.Mutex
	plan           Plan
	attempts       map[string]int
	notBefore      map[string]backoff
	backoffs       map[string]backoff
	entries        []Entry
	inFlight       map[string]int
	seq            int
	earlyCount     int
	// duringBackoff counts, per target, requests sent while it was backing off.
	duringBackoff map[string]int
	crm           *crmState
	chat          *chatState
	// crmLimit is the CRM API's request limit (HubSpot's secondly limit).
	crmLimit rateLimiter
}

// NewServer returns a sandbox with the given CRM token, fault seed and plan.
func NewServer(token string, seed int64, plan Plan, logger *slog.Logger) *Server {
	s := &Server{seed: seed, token: token, hangLimit: 2 * time.Minute, now: time.Now, log: logger, plan: plan, stripe: &stripeProxy{},
		firstID: 101, firstCompanyID: 1_000_001}
	s.resetLocked()
	return s
}

func (s *Server) resetLocked() {
	s.attempts = map[string]int{}
	s.notBefore = map[string]backoff{}
	s.backoffs = map[string]backoff{}
	s.entries = nil
	s.inFlight = map[string]int{}
	s.seq = 0
	s.earlyCount = 0
	s.duringBackoff = map[string]int{}
	s.crm = newCRMState(s.firstID, s.firstCompanyID)
	s.chat = newChatState()
	s.crmLimit.window = nil
	s.stripe.invoices.reset()
}

// SetFirstContactID makes the CRM number its contacts from n (after a reset
// too). A sandbox that restarts should not hand out the IDs of contacts it
// forgot, which links kept elsewhere still name.
func (s *Server) SetFirstContactID(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firstID = n
	s.crm.contacts.nextID = n
}

// SetFirstCompanyID makes the CRM number its companies from n (after a reset
// too), for the same reason as SetFirstContactID. Numbering companies apart
// from contacts makes a contact's ID used as a company's answer 404.
func (s *Server) SetFirstCompanyID(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firstCompanyID = n
	s.crm.companies.nextID = n
}

// Handler routes every request.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range crmRoutes {
		mux.Handle(r.pattern, s.emulate(r.endpoint, r.handle(s)))
	}
	mux.HandleFunc("GET /_sandbox/requests", s.getRequests)
	mux.HandleFunc("GET /_sandbox/stats", s.getStats)
	mux.HandleFunc("GET /_sandbox/contacts", s.getContacts)
	mux.HandleFunc("GET /_sandbox/companies", s.getCompanies)
	mux.HandleFunc("POST /_sandbox/companies", s.personCreatesCompany)
	mux.HandleFunc("POST /_sandbox/companies/{id}/edit", s.personEdits(companiesOf))
	mux.HandleFunc("POST /_sandbox/contacts/{id}/edit", s.personEdits(contactsOf))
	mux.HandleFunc("POST /_sandbox/companies/{id}/restore", s.personRestoresCompany)
	mux.HandleFunc("DELETE /_sandbox/companies/{id}", s.personArchives(companiesOf))
	mux.HandleFunc("DELETE /_sandbox/contacts/{id}", s.personArchives(contactsOf))
	// A person's doings in Stripe's dashboard are the sandbox's own, served
	// here with the others: the Stripe port serves Stripe's API only.
	mux.HandleFunc("GET /_sandbox/stripe/invoices", s.getStripeInvoices)
	mux.HandleFunc("GET /_sandbox/stripe/invoices/{id}", s.personReadsStripeInvoice)
	mux.HandleFunc("POST /_sandbox/stripe/invoices/{id}", s.personChangesStripeInvoice)
	mux.HandleFunc("DELETE /_sandbox/stripe/invoices/{id}", s.personDeletesStripeInvoice)
	mux.HandleFunc("GET /_sandbox/limit", s.getLimit)
	mux.HandleFunc("POST /_sandbox/limit", s.setLimit)
	mux.HandleFunc("GET /_sandbox/messages", s.getMessages)
	mux.HandleFunc("GET /_sandbox/faults", s.getFaults)
	mux.HandleFunc("POST /_sandbox/faults", s.setFaults)
	mux.HandleFunc("POST /_sandbox/reset", s.reset)
	mux.HandleFunc("GET /_sandbox/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// StripeHandler routes the Stripe pass-through. It is served on a port of its
// own because Stripe's clients accept only a base URL without a path.
func (s *Server) StripeHandler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range stripeRoutes {
		mux.Handle(r.pattern, s.emulate(r.endpoint, r.handle(s)))
	}
	return mux
}

// emulate wraps an emulator handler with the request log, the vendor's request
// limit, fault injection and Retry-After accounting.
func (s *Server) emulate(endpoint string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		if err != nil {
			s.writeResult(w, endpoint, result{status: http.StatusRequestEntityTooLarge, body: errorBody(endpoint, "request body too large")})
			return
		}
		key := r.Header.Get("Idempotency-Key")
		identity := requestIdentity(endpoint, r, body)
		// Whether a client waited is judged by when it sent, not when the
		// request got here on a loaded machine.
		sentAt, _ := time.Parse(time.RFC3339Nano, r.Header.Get(rest.SentAtHeader))
		sent := start
		if !sentAt.IsZero() {
			sent = sentAt
		}

		s.mu.Lock()
		s.inFlight[endpoint]++
		s.attempts[endpoint+" "+identity]++
		attempt := s.attempts[endpoint+" "+identity]
		fault := s.plan.For(endpoint)
		inj := decide(s.seed, endpoint, identity, attempt, fault)
		early := false
		if b, ok := s.notBefore[endpoint+" "+identity]; ok && b.covers(sent) {
			early = true
			s.earlyCount++
		}
		during := false
		if b, ok := s.backoffs[targetOf(endpoint)]; ok && b.covers(sent) {
			during = true
			s.duringBackoff[targetOf(endpoint)]++
		}
		limited := s.overLimitLocked(endpoint, identity)
		if limited {
			inj = Injection{}
		}
		s.mu.Unlock()

		entry := Entry{At: start, SentAt: sentAt, Endpoint: endpoint, Method: r.Method, Path: r.URL.Path, Identity: identity,
			Attempt: attempt, IdempotencyKey: key, Fault: inj.Kind, AfterEffect: inj.AfterEffect, EarlyRetry: early, DuringBackoff: during,
			RateLimited: limited}
		defer func() {
			entry.DurationMS = s.now().Sub(start).Milliseconds()
			s.record(entry)
		}()
		defer func() {
			s.mu.Lock()
			s.inFlight[endpoint]--
			s.mu.Unlock()
		}()

		if limited {
			w.Header().Set("Retry-After", "1")
			entry.Status = http.StatusTooManyRequests
			s.writeResult(w, endpoint, result{status: http.StatusTooManyRequests, body: hubspotRateLimit()})
			return
		}
		if fault.Latency > 0 {
			select {
			case <-time.After(time.Duration(fault.Latency)):
			case <-r.Context().Done():
				return
			}
		}
		if inj.Kind != "" && !inj.AfterEffect {
			entry.Status = s.inject(w, r, endpoint, identity, inj, fault)
			return
		}
		res := h(r, body)
		entry.Effect = res.effect
		if inj.Kind != "" {
			entry.Status = s.inject(w, r, endpoint, identity, inj, fault)
			return
		}
		entry.Status = res.status
		s.writeResult(w, endpoint, res)
	})
}

// overLimitLocked reports whether the vendor's request limit refuses a request
// arriving now; a refused request is promised a retry a second later. Only the
// CRM has a limit.
func (s *Server) overLimitLocked(endpoint, identity string) bool {
	if targetOf(endpoint) != "crm" {
		return false
	}
	now := s.now()
	if s.crmLimit.allow(now) {
		return false
	}
	s.promiseLocked(endpoint, identity, now, now.Add(time.Second))
	return true
}

// promiseLocked records a Retry-After given at now until notBefore: a retry
// of the request before then is early, and the target's requests meanwhile
// come while it should be backing off.
func (s *Server) promiseLocked(endpoint, identity string, now, notBefore time.Time) {
	s.notBefore[endpoint+" "+identity] = backoff{from: now, until: notBefore}
	target := targetOf(endpoint)
	if b := s.backoffs[target]; now.Before(b.until) {
		s.backoffs[target] = backoff{from: b.from, until: later(b.until, notBefore)}
	} else {
		s.backoffs[target] = backoff{from: now, until: notBefore}
	}
}

// inject misbehaves as inj says and returns the status sent (0 for none).
func (s *Server) inject(w http.ResponseWriter, r *http.Request, endpoint, identity string, inj Injection, f Fault) int {
	switch inj.Kind {
	case "429":
		wait := time.Duration(f.RetryAfter)
		if wait <= 0 {
			wait = time.Second
		}
		var header string
		var notBefore time.Time
		now := s.now()
		if f.RetryAfterDate {
			// HTTP dates have whole seconds: promise the second after the wait ends.
			notBefore = now.Add(wait).Truncate(time.Second).Add(time.Second)
			header = notBefore.UTC().Format(http.TimeFormat)
		} else {
			secs := int(math.Ceil(wait.Seconds()))
			notBefore = now.Add(time.Duration(secs) * time.Second)
			header = strconv.Itoa(secs)
		}
		s.mu.Lock()
		s.promiseLocked(endpoint, identity, now, notBefore)
		s.mu.Unlock()
		w.Header().Set("Retry-After", header)
		body := errorBody(endpoint, "You have reached your secondly limit.")
		if targetOf(endpoint) == "crm" {
			body = hubspotRateLimit()
		}
		s.writeResult(w, endpoint, result{status: http.StatusTooManyRequests, body: body})
		return http.StatusTooManyRequests
	case "5xx", "down":
		s.writeResult(w, endpoint, result{status: inj.Status, body: errorBody(endpoint, "internal error (injected by the sandbox)")})
		return inj.Status
	case "401":
		s.writeResult(w, endpoint, result{status: http.StatusUnauthorized, body: unauthorizedBody(endpoint)})
		return http.StatusUnauthorized
	case "hang":
		select {
		case <-r.Context().Done():
		case <-time.After(s.hangLimit):
		}
		return 0
	case "reset":
		resetConnection(w)
		return 0
	}
	return 0
}

// resetConnection drops the TCP connection with an RST and no response.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// targetOf names the system an endpoint belongs to: "crm", "chat", "stripe".
func targetOf(endpoint string) string {
	target, _, _ := strings.Cut(endpoint, ".")
	return target
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// requestIdentity names "the same request" across retries: the idempotency key
// when the client sends one, the email for a contact create, else the digest of
// method, path and body.
func requestIdentity(endpoint string, r *http.Request, body []byte) string {
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		return "key:" + key
	}
	if endpoint == "crm.create" {
		var in struct {
			Properties map[string]string `json:"properties"`
		}
		if json.Unmarshal(body, &in) == nil && in.Properties["email"] != "" {
			return "email:" + strings.ToLower(in.Properties["email"])
		}
	}
	sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.RequestURI()+"\n"), body...))
	return "sha:" + hex.EncodeToString(sum[:8])
}

func (s *Server) record(e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	e.Seq = s.seq
	if len(s.entries) >= maxLogEntries {
		s.entries = s.entries[1:]
	}
	s.entries = append(s.entries, e)
}

func (s *Server) writeResult(w http.ResponseWriter, endpoint string, res result) {
	if res.status == http.StatusNoContent {
		w.WriteHeader(res.status)
		return
	}
	if raw, ok := res.body.([]byte); ok {
		w.Header().Set("Content-Type", res.contentType)
		w.WriteHeader(res.status)
		_, _ = w.Write(raw)
		return
	}
	if text, ok := res.body.(string); ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(res.status)
		_, _ = io.WriteString(w, text)
		return
	}
	writeJSON(w, res.status, res.body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is an error in the target's own shape: HubSpot's JSON, Slack's
// text, Stripe's {"error": {...}}.
func errorBody(endpoint, message string) any {
	switch {
	case strings.HasPrefix(endpoint, "chat."):
		return message
	case strings.HasPrefix(endpoint, "stripe."):
		return stripeError("api_error", message, "")
	}
	return hubspotError("ERROR", message)
}

func unauthorizedBody(endpoint string) any {
	switch {
	case strings.HasPrefix(endpoint, "chat."):
		return "invalid_token"
	case strings.HasPrefix(endpoint, "stripe."):
		return stripeError("invalid_request_error", "Invalid API Key provided: sk_test_***", "")
	}
	return hubspotError("INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
}

func hubspotError(category, message string) map[string]any {
	return map[string]any{"status": "error", "message": message, "category": category, "correlationId": "sandbox"}
}

// Stats summarises the log for tests and people.
type Stats struct {
	Requests map[string]int `json:"requests"`
	Effects  map[string]int `json:"effects"`
	Faults   map[string]int `json:"faults"`
	// EarlyRetries counts requests sent again before the Retry-After we gave them.
	EarlyRetries int `json:"earlyRetries"`
	// RequestsDuringBackoff counts, per target, requests sent while a
	// Retry-After we gave any request of that target was in force. A client
	// that backs off target-wide keeps it to the few already on their way.
	RequestsDuringBackoff map[string]int `json:"requestsDuringBackoff"`
	// InFlight counts requests being answered now (a hung one stays here).
	InFlight map[string]int `json:"inFlight"`
	// RateLimited counts, per target, requests its request limit refused.
	RateLimited map[string]int `json:"rateLimited"`
	Contacts    int            `json:"contacts"`
	// Companies counts live companies, ArchivedCompanies those in the recycling bin.
	Companies         int `json:"companies"`
	ArchivedCompanies int `json:"archivedCompanies"`
	Messages          int `json:"messages"`
	// DuplicateMessages counts chat messages delivered again under a key already delivered.
	DuplicateMessages int `json:"duplicateMessages"`
}

// Stats summarises the request log and the emulators' state.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Requests: map[string]int{}, Effects: map[string]int{}, Faults: map[string]int{}, EarlyRetries: s.earlyCount,
		RequestsDuringBackoff: maps.Clone(s.duringBackoff), InFlight: map[string]int{}, RateLimited: map[string]int{}}
	for e, n := range s.inFlight {
		if n > 0 {
			st.InFlight[e] = n
		}
	}
	for _, e := range s.entries {
		st.Requests[e.Endpoint]++
		if e.Effect {
			st.Effects[e.Endpoint]++
		}
		if e.Fault != "" {
			st.Faults[e.Endpoint+" "+e.Fault]++
		}
		if e.RateLimited {
			st.RateLimited[targetOf(e.Endpoint)]++
		}
	}
	st.Contacts = len(s.crm.contacts.objects)
	st.Companies, st.ArchivedCompanies = s.crm.companies.count()
	st.Messages = len(s.chat.messages)
	st.DuplicateMessages = s.chat.duplicates()
	return st
}

func (s *Server) getStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) getRequests(w http.ResponseWriter, r *http.Request) {
	endpoint := r.URL.Query().Get("endpoint")
	s.mu.Lock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		if endpoint == "" || e.Endpoint == endpoint || strings.HasPrefix(e.Endpoint, strings.TrimSuffix(endpoint, "*")) && strings.HasSuffix(endpoint, "*") {
			out = append(out, e)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
}

func (s *Server) getFaults(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	plan := s.plan
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, plan)
}

func (s *Server) setFaults(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "fault plan too large"})
		return
	}
	plan, err := ParsePlan(raw)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.mu.Lock()
	s.plan = plan
	s.mu.Unlock()
	s.log.Info("fault plan replaced", "plan", string(raw))
	writeJSON(w, http.StatusOK, plan)
}

func (s *Server) reset(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.resetLocked()
	s.plan = Plan{}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
}
