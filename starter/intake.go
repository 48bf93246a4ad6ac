package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows"
)

// maxBody bounds a request body; a web-form lead is a few hundred bytes.
const maxBody = 64 << 10

// intake is the HTTP front door that turns submissions into items.
type intake struct {
	items    items
	invoices invoiceStatuses
	auth     *authenticator
	logger   *slog.Logger
}

// invoiceStatuses looks invoices up in PostgreSQL, their source of truth.
type invoiceStatuses interface {
	InvoiceStatus(ctx context.Context, id string) (string, error)
}

func (in *intake) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/leads", in.authenticated(in.postLead))
	mux.HandleFunc("POST /v1/invoices/{id}/sync", in.authenticated(in.syncInvoice))
	mux.HandleFunc("GET /v1/items/{workflowID}", in.authenticated(in.getItem))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// problem is the body of every 4xx and 5xx answer.
type problem struct {
	Error  string                `json:"error"`
	Fields workflows.FieldErrors `json:"fields,omitempty"`
}

// badInput is a request that must be answered 4xx.
type badInput struct {
	status int
	problem
}

func (b *badInput) Error() string { return b.problem.Error }

func invalid(msg string, fields workflows.FieldErrors) *badInput {
	return &badInput{status: http.StatusBadRequest, problem: problem{Error: msg, Fields: fields}}
}

// decodeLead reads one JSON lead, refusing anything that is not exactly that.
func decodeLead(body []byte) (workflows.Lead, error) {
	var lead workflows.Lead
	if !utf8.Valid(body) {
		return lead, invalid("the body is not valid UTF-8", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lead); err != nil {
		return lead, invalid("the body is not a lead: "+jsonProblem(err), nil)
	}
	if dec.More() {
		return lead, invalid("the body holds more than one JSON value", nil)
	}
	if errs := lead.Validate(); len(errs) > 0 {
		return lead, invalid("the lead is invalid", errs)
	}
	return lead, nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return fmt.Sprintf("field %s must be a %s, not a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return fmt.Sprintf("expected a JSON object, not a JSON %s", typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

// sourceKey is the Idempotency-Key header when present, else the record's own ID.
func sourceKey(header, own string) (string, error) {
	key := strings.TrimSpace(header)
	field := "Idempotency-Key"
	if key == "" {
		key, field = own, "id"
	}
	if key == "" {
		return "", invalid("the item needs a key", workflows.FieldErrors{{Field: "id", Problem: "is required when no Idempotency-Key header is sent"}})
	}
	if err := workflows.CheckSourceKey(key); err != nil {
		return "", invalid("the item key is invalid", workflows.FieldErrors{{Field: field, Problem: err.Error()}})
	}
	return key, nil
}

func checkJSON(r *request) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &badInput{status: http.StatusUnsupportedMediaType, problem: problem{Error: "send Content-Type: application/json"}}
	}
	return nil
}

// request is an authenticated request: its body, read once, and its source.
type request struct {
	*http.Request
	body   []byte
	source string
}

// authenticated reads the body (within maxBody) and lets through only requests
// from a known source.
func (in *intake) authenticated(next func(http.ResponseWriter, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			in.fail(w, r, &badInput{status: http.StatusRequestEntityTooLarge, problem: problem{Error: fmt.Sprintf("the body exceeds %d bytes", maxBody)}})
			return
		}
		if err != nil {
			in.fail(w, r, invalid("could not read the body", nil))
			return
		}
		source, ok := in.auth.source(r, body)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="signalbox intake"`)
			in.fail(w, r, &badInput{status: http.StatusUnauthorized, problem: problem{
				Error: "send Authorization: Bearer <token>, or " + signatureHeader + ": sha256=<hex HMAC-SHA256 of the body>"}})
			return
		}
		next(w, &request{Request: r, body: body, source: source})
	}
}

func (in *intake) postLead(w http.ResponseWriter, r *request) {
	if err := checkJSON(r); err != nil {
		in.fail(w, r.Request, err)
		return
	}
	lead, err := decodeLead(r.body)
	if err != nil {
		in.fail(w, r.Request, err)
		return
	}
	key, err := sourceKey(r.Header.Get("Idempotency-Key"), lead.ID)
	if err != nil {
		in.fail(w, r.Request, err)
		return
	}
	in.start(w, r, workflows.LeadToCRMSpec(), key, workflows.LeadInput{ItemInput: workflows.ItemInput{StartedBy: "intake:" + r.source}, Lead: lead})
}

func (in *intake) syncInvoice(w http.ResponseWriter, r *request) {
	id := r.PathValue("id")
	if err := checkInvoiceToSync(r.Context(), in.invoices, id); err != nil {
		in.fail(w, r.Request, err)
		return
	}
	in.start(w, r, workflows.InvoiceToBillingSpec(), id, invoiceInput(id, "intake:"+r.source))
}

func invoiceInput(id, startedBy string) workflows.InvoiceInput {
	return workflows.InvoiceInput{ItemInput: workflows.ItemInput{StartedBy: startedBy}, InvoiceID: id}
}

// checkInvoiceToSync refuses unknown invoices and those not ready (a billed
// one may be synced again: that refreshes its payment status).
func checkInvoiceToSync(ctx context.Context, invoices invoiceStatuses, id string) error {
	if err := workflows.CheckSourceKey(id); err != nil {
		return invalid("the invoice ID is invalid", workflows.FieldErrors{{Field: "id", Problem: err.Error()}})
	}
	status, err := invoices.InvoiceStatus(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &badInput{status: http.StatusNotFound, problem: problem{Error: "no invoice " + id}}
	case err != nil:
		return &badInput{status: http.StatusServiceUnavailable, problem: problem{Error: "could not read the invoice: PostgreSQL is unavailable; retry"}}
	case status != store.InvoiceReady && status != store.InvoiceBilled:
		return &badInput{status: http.StatusConflict, problem: problem{Error: fmt.Sprintf("invoice %s is %s; only ready invoices are billed (and billed ones refreshed)", id, status)}}
	}
	return nil
}

// start starts an item and answers 202 with its workflow and run IDs.
func (in *intake) start(w http.ResponseWriter, r *request, spec workflows.Spec, key string, input any) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	s, err := in.items.Start(ctx, spec, key, input)
	var other *errRunningOther
	if errors.As(err, &other) {
		in.logger.Info("submission refused: the item runs with another", "workflowId", other.WorkflowID, "source", r.source)
		w.Header().Set("Location", "/v1/items/"+other.WorkflowID)
		writeJSON(w, http.StatusConflict, problem{Error: other.Error()})
		return
	}
	if err != nil {
		in.logger.Error("start item failed", "integration", spec.Name, "key", key, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "could not start the item: Temporal is unavailable; retry with the same key"})
		return
	}
	in.logger.Info("item accepted", "workflowId", s.WorkflowID, "runId", s.RunID, "source", r.source)
	w.Header().Set("Location", "/v1/items/"+s.WorkflowID)
	writeJSON(w, http.StatusAccepted, map[string]string{"workflowId": s.WorkflowID, "runId": s.RunID, "status": "/v1/items/" + s.WorkflowID})
}

func (in *intake) getItem(w http.ResponseWriter, r *request) {
	id := r.PathValue("workflowID")
	if _, _, ok := workflows.SplitItemID(id); !ok {
		writeJSON(w, http.StatusBadRequest, problem{Error: "an item ID looks like lead-to-crm:<key>"})
		return
	}
	state, err := in.items.Status(r.Context(), id)
	switch {
	case errors.Is(err, workflows.ErrNoItem):
		writeJSON(w, http.StatusNotFound, problem{Error: "no item " + id})
	case err != nil:
		in.logger.Error("read item failed", "workflowId", id, "error", err)
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "could not read the item: Temporal is unavailable"})
	default:
		writeJSON(w, http.StatusOK, state)
	}
}

func (in *intake) fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad *badInput
	if !errors.As(err, &bad) {
		bad = &badInput{status: http.StatusInternalServerError, problem: problem{Error: "internal error"}}
	}
	in.logger.Info("request refused", "path", r.URL.Path, "status", bad.status, "error", bad.problem.Error)
	writeJSON(w, bad.status, bad.problem)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
