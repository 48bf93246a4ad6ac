package main

import (
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

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// maxBody bounds a request body; a web-form lead is a few hundred bytes.
const maxBody = 64 << 10

// intake is the HTTP front door that turns submissions into items.
type intake struct {
	items        items
	records      spine.Records
	integrations []spine.Integration
	auth         *authenticator
	logger       *slog.Logger
}

func (in *intake) routes() http.Handler {
	mux := http.NewServeMux()
	for _, integration := range in.integrations {
		if integration.Intake.Route == "" {
			continue // started by signal only (invoice-payments: the Stripe webhook)
		}
		mux.HandleFunc(integration.Intake.Route, in.authenticated(in.submit(integration)))
	}
	mux.HandleFunc("GET /v1/items/{workflowID}", in.authenticated(in.getItem))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// problem is the body of every 4xx and 5xx answer.
type problem struct {
	Error  string          `json:"error"`
	Fields api.FieldErrors `json:"fields,omitempty"`
}

// sourceKey is the Idempotency-Key header when present, else the record's own ID.
func sourceKey(header, own string) (string, error) {
	key := strings.TrimSpace(header)
	field := "Idempotency-Key"
	if key == "" {
		key, field = own, "id"
	}
	if key == "" {
		return "", spine.Invalid("the item needs a key", api.FieldErrors{{Field: "id", Problem: "is required when no Idempotency-Key header is sent"}})
	}
	if err := api.CheckSourceKey(key); err != nil {
		return "", spine.Invalid("the item key is invalid", api.FieldErrors{{Field: field, Problem: err.Error()}})
	}
	return key, nil
}

func checkJSON(r *request) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &spine.Refused{Status: http.StatusUnsupportedMediaType, Message: "send Content-Type: application/json"}
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
			in.fail(w, r, &spine.Refused{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the body exceeds %d bytes", maxBody)})
			return
		}
		if err != nil {
			in.fail(w, r, spine.Invalid("could not read the body", nil))
			return
		}
		source, ok := in.auth.source(r, body)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="signalbox intake"`)
			in.fail(w, r, &spine.Refused{Status: http.StatusUnauthorized,
				Message: "send Authorization: Bearer <token>, or " + signatureHeader + ": sha256=<hex HMAC-SHA256 of the body>"})
			return
		}
		next(w, &request{Request: r, body: body, source: source})
	}
}

// submit starts an item of the integration from a request: a record in the
// body (keyed by the Idempotency-Key header, else the record's ID), or the key
// of a record in the source of truth in the path.
func (in *intake) submit(integration spine.Integration) func(http.ResponseWriter, *request) {
	intake := integration.Intake
	return func(w http.ResponseWriter, r *request) {
		key, input, err := in.itemOf(r, intake)
		if err != nil {
			in.fail(w, r.Request, err)
			return
		}
		in.start(w, r, integration.Spec, key, input("intake:"+r.source))
	}
}

func (in *intake) itemOf(r *request, intake spine.Intake) (string, func(string) any, error) {
	if intake.Decode == nil {
		key := r.PathValue("id")
		if err := checkKey(r.Context(), in.records, intake, key); err != nil {
			return "", nil, err
		}
		return key, func(startedBy string) any { return intake.Input(key, startedBy) }, nil
	}
	if err := checkJSON(r); err != nil {
		return "", nil, err
	}
	id, input, err := intake.Decode(r.body)
	if err != nil {
		return "", nil, err
	}
	key, err := sourceKey(r.Header.Get("Idempotency-Key"), id)
	return key, input, err
}

// checkKey checks a record's key, then that the record may be synced now.
func checkKey(ctx context.Context, records spine.Records, intake spine.Intake, key string) error {
	if err := api.CheckSourceKey(key); err != nil {
		return spine.Invalid("the item key is invalid", api.FieldErrors{{Field: "id", Problem: err.Error()}})
	}
	if intake.Check == nil {
		return nil
	}
	return intake.Check(ctx, records, key)
}

// start starts an item and answers 202 with its workflow and run IDs.
func (in *intake) start(w http.ResponseWriter, r *request, spec api.Spec, key string, input any) {
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
	if _, _, ok := api.SplitItemID(id); !ok {
		writeJSON(w, http.StatusBadRequest, problem{Error: "an item ID looks like lead-to-crm:<key>"})
		return
	}
	state, err := in.items.Status(r.Context(), id)
	switch {
	case errors.Is(err, api.ErrNoItem):
		writeJSON(w, http.StatusNotFound, problem{Error: "no item " + id})
	case err != nil:
		in.logger.Error("read item failed", "workflowId", id, "error", err)
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "could not read the item: Temporal is unavailable"})
	default:
		writeJSON(w, http.StatusOK, state)
	}
}

func (in *intake) fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad *spine.Refused
	if !errors.As(err, &bad) {
		bad = &spine.Refused{Status: http.StatusInternalServerError, Message: "internal error"}
	}
	in.logger.Info("request refused", "path", r.URL.Path, "status", bad.Status, "error", bad.Message)
	writeJSON(w, bad.Status, problem{Error: bad.Message, Fields: bad.Fields})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
