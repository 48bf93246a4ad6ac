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
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
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
	// scopes says which routes each source may use, limits how often.
	scopes scopes
	limits *limiter
	ledger ledger
	// now is the intake's clock (signature times, rate limits).
	now    func() time.Time
	logger *slog.Logger
}

// ledger is what the intake keeps in PostgreSQL, so that every replica and
// every restart answers alike: the signed requests received, and the items
// accepted from each source — the first source accepted for an item key owns
// it.
type ledger interface {
	ClaimIntakeSignature(ctx context.Context, sig store.IntakeSignature) (bool, error)
	ReleaseIntakeSignature(ctx context.Context, digest string) error
	IntakeItemOwner(ctx context.Context, workflowID string) (string, error)
	ClaimIntakeItem(ctx context.Context, source, workflowID string) (owner string, added bool, err error)
	ReleaseIntakeItem(ctx context.Context, source, workflowID string) error
	IntakeItemOf(ctx context.Context, source, workflowID string) (bool, error)
}

// itemsRoute is where a source reads the items it started.
const itemsRoute = "GET /v1/items/{workflowID}"

func (in *intake) routes() http.Handler {
	mux := http.NewServeMux()
	for _, integration := range in.integrations {
		if integration.Intake.Route == "" {
			continue // started by signal only (invoice-payments: the Stripe webhook)
		}
		mux.HandleFunc(integration.Intake.Route, in.authenticated(integration.Spec.Name, integration.Intake.Route, in.submit(integration)))
	}
	mux.HandleFunc(itemsRoute, in.authenticated(routeItems, itemsRoute, in.getItem))
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

// authenticated reads the body (within maxBody) and lets through only
// requests from a known source that may use route (an integration's name,
// or routeItems; pattern is how the sender knows it), when signed not
// received before, and within the source's rate limit. Whatever it refuses
// starts nothing. A replay is refused before the rate limit is taken, so
// that replaying a captured request cannot use up its source's limit.
func (in *intake) authenticated(route, pattern string, next func(http.ResponseWriter, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			in.fail(w, r, &spine.Refused{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the body exceeds %d bytes; nothing was started", maxBody)})
			return
		}
		if err != nil {
			in.fail(w, r, spine.Invalid("could not read the body; nothing was started", nil))
			return
		}
		now := in.now()
		cred, err := in.auth.identify(r, body, now)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="signalbox intake"`)
			in.fail(w, r, err)
			return
		}
		if !in.scopes.allows(cred.source, route) {
			in.logger.Warn("request refused: route not granted to the source", "source", cred.source, "route", route)
			writeJSON(w, http.StatusForbidden, problem{Error: forbidden(cred.source, route, pattern)})
			return
		}
		req := &request{Request: r, body: body, source: cred.source}
		if cred.digest != "" && !in.claim(w, req, cred) {
			return
		}
		if ok, wait := in.limits.allow(cred.source, now); !ok {
			in.release(req, cred) // not taken: the same signed request may come again
			limit := in.limits.limitOf(cred.source)
			in.logger.Warn("request refused: over the source's rate limit", "source", cred.source, "limit", limit.String())
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
			writeJSON(w, http.StatusTooManyRequests, problem{Error: fmt.Sprintf("source %q sent more than its limit of %s; nothing was started: "+
				"send it again after Retry-After seconds (a signed request may be sent unchanged while its signature is fresh)", cred.source, limit)})
			return
		}
		if cred.digest == "" {
			next(w, req)
			return
		}
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next(rec, req)
		if rec.status >= http.StatusInternalServerError {
			in.release(req, cred)
		}
	}
}

// claim records a signed request as received, in PostgreSQL, so that no
// intake takes it twice, and reports whether it may go on; when not, it has
// answered: 401 for a request received before, 503 when PostgreSQL cannot
// tell. Nothing else is counted for a refused request.
func (in *intake) claim(w http.ResponseWriter, r *request, cred credential) bool {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	fresh, err := in.ledger.ClaimIntakeSignature(ctx, store.IntakeSignature{Digest: cred.digest, Source: cred.source, SignedAt: cred.signedAt})
	if err != nil {
		in.logger.Error("could not record a signed request", "source", cred.source, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "could not check the signature against replays: PostgreSQL is unavailable; " +
			"nothing was started: send it again (signed anew if the signature is older than a few minutes)"})
		return false
	}
	if !fresh {
		in.logger.Warn("request refused: a signature received before", "source", cred.source, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Bearer realm="signalbox intake"`)
		writeJSON(w, http.StatusUnauthorized, problem{Error: "this signed request was received before: a replay is refused and starts nothing. " +
			"To send a request again, sign it anew with the current time; the same Idempotency-Key keeps it one item"})
		return false
	}
	return true
}

// release forgets a signed request the intake did not act on (a 429, a
// 5xx): sent again, it is no replay.
func (in *intake) release(r *request, cred credential) {
	if cred.digest == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := in.ledger.ReleaseIntakeSignature(ctx, cred.digest); err != nil {
		in.logger.Error("could not forget a signed request not taken", "source", cred.source, "error", err)
	}
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer beneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
		in.start(w, r, integration, key, input(startedByIntake(r.source)))
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
	if len(r.Header.Values("Idempotency-Key")) > 1 {
		return "", nil, spine.Invalid("send at most one Idempotency-Key header; nothing was started", nil)
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

// errKeyOfAnother is a start refused because another source owns the key.
var errKeyOfAnother = errors.New("the item key belongs to another source")

// keyClaim is a source's hold on an item key, taken before the start.
type keyClaim struct {
	source, workflowID string
	// added: the hold is new, and forgotten again if nothing is started.
	added bool
}

// claimKey takes item id for source, unless another source owns it
// (errKeyOfAnother). A key belongs to the first source the intake accepted
// it from (intake_items). An item no source is recorded for may have been
// started by a source before the intake recorded them: its first run names
// it, and it is recorded for that source now. Items that operators (cli), a
// poll or a reconcile started belong to no source: the first source accepted
// for such a key owns it from then on.
func (in *intake) claimKey(ctx context.Context, source, id string) (keyClaim, error) {
	owner, err := in.ledger.IntakeItemOwner(ctx, id)
	switch {
	case err != nil:
		return keyClaim{}, err
	case owner == source:
		return keyClaim{source: source, workflowID: id}, nil
	case owner != "":
		return keyClaim{}, errKeyOfAnother
	}
	startedBy, err := in.items.StartedBy(ctx, id)
	switch {
	case errors.Is(err, api.ErrNoItem):
	case err != nil:
		return keyClaim{}, err
	case strings.HasPrefix(startedBy, startedByIntake("")) && startedBy != startedByIntake(source):
		first := strings.TrimPrefix(startedBy, startedByIntake(""))
		if _, _, err := in.ledger.ClaimIntakeItem(ctx, first, id); err != nil {
			in.logger.Error("could not record the source that started an item", "workflowId", id, "source", first, "error", err)
		}
		return keyClaim{}, errKeyOfAnother
	}
	owner, added, err := in.ledger.ClaimIntakeItem(ctx, source, id)
	switch {
	case err != nil:
		return keyClaim{}, err
	case owner != source:
		return keyClaim{}, errKeyOfAnother
	}
	return keyClaim{source: source, workflowID: id, added: added}, nil
}

// unclaim forgets a new hold on a key when the intake started nothing.
func (in *intake) unclaim(r *request, c keyClaim) {
	if !c.added {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := in.ledger.ReleaseIntakeItem(ctx, c.source, c.workflowID); err != nil {
		in.logger.Error("could not forget a key not started", "workflowId", c.workflowID, "source", c.source, "error", err)
	}
}

// keyOfAnother is the 409 of a source sending a key another source owns:
// it does not name the owner.
func keyOfAnother(integration spine.Integration, key string) string {
	msg := fmt.Sprintf("the item key %q belongs to another source; nothing was started: an item key belongs to the source that first started it", key)
	if integration.Intake.Decode == nil {
		return msg + ", and here the key is the record's ID: sync it with that source's credentials, or ask signalbox's operators to"
	}
	return msg + ": send this record under a key of your own (the Idempotency-Key header, else the record's id)"
}

// start starts an item, once its key is the source's, and answers 202 with
// its workflow and run IDs.
func (in *intake) start(w http.ResponseWriter, r *request, integration spine.Integration, key string, input any) {
	spec := integration.Spec
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	id := api.ItemID(spec.Name, key)
	claim, err := in.claimKey(ctx, r.source, id)
	if errors.Is(err, errKeyOfAnother) {
		in.logger.Warn("submission refused: the item key belongs to another source", "workflowId", id, "source", r.source)
		writeJSON(w, http.StatusConflict, problem{Error: keyOfAnother(integration, key)})
		return
	}
	if err != nil {
		in.logger.Error("could not tell whose the item key is", "workflowId", id, "source", r.source, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "could not tell whether the item key is this source's: PostgreSQL or Temporal is unavailable; " +
			"nothing was started: retry with the same key"})
		return
	}
	s, err := in.items.Start(ctx, spec, key, input)
	var other *errRunningOther
	if errors.As(err, &other) {
		in.unclaim(r, claim)
		in.logger.Info("submission refused: the item runs with another", "workflowId", other.WorkflowID, "source", r.source)
		w.Header().Set("Location", "/v1/items/"+other.WorkflowID)
		writeJSON(w, http.StatusConflict, problem{Error: other.Error()})
		return
	}
	if err != nil {
		in.unclaim(r, claim)
		in.logger.Error("start item failed", "integration", spec.Name, "key", key, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "could not start the item: Temporal is unavailable; retry with the same key"})
		return
	}
	// The source was recorded for the item before it started (claimKey), so
	// it reads what it is answered 202 for, whoever started the run (a
	// sender's retry is handed the running item).
	in.logger.Info("item accepted", "workflowId", s.WorkflowID, "runId", s.RunID, "source", r.source)
	w.Header().Set("Location", "/v1/items/"+s.WorkflowID)
	writeJSON(w, http.StatusAccepted, map[string]string{"workflowId": s.WorkflowID, "runId": s.RunID, "status": "/v1/items/" + s.WorkflowID})
}

// itemView is what a source may read of an item: where it stands and the
// target's IDs, never the record's data (names, emails, phones, amounts),
// the exception's details nor the operators' decisions and reasons.
type itemView struct {
	WorkflowID  string            `json:"workflowId"`
	Integration string            `json:"integration"`
	SourceKey   string            `json:"sourceKey"`
	Status      api.Status        `json:"status"`
	Step        string            `json:"step,omitempty"`
	Exception   *exceptionView    `json:"exception,omitempty"`
	ExternalIDs map[string]string `json:"externalIds,omitempty"`
	StartedAt   time.Time         `json:"startedAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
}

// exceptionView says what an item waits for, not what it holds.
type exceptionView struct {
	Kind  api.ExceptionKind `json:"kind"`
	Since time.Time         `json:"since"`
}

func viewOf(s api.ItemState) itemView {
	v := itemView{WorkflowID: s.WorkflowID, Integration: s.Integration, SourceKey: s.SourceKey, Status: s.Status, Step: s.Step,
		ExternalIDs: s.ExternalIDs, StartedAt: s.StartedAt, UpdatedAt: s.UpdatedAt}
	if s.Exception != nil {
		v.Exception = &exceptionView{Kind: s.Exception.Kind, Since: s.Exception.Since}
	}
	return v
}

// getItem answers an item the intake accepted from the source (answered it
// 202 for). Any other, existing or not, is the same 404, told from
// PostgreSQL alone: Temporal is asked only about the source's own items, so
// neither the answer nor its time tells a source which items others have.
func (in *intake) getItem(w http.ResponseWriter, r *request) {
	id := r.PathValue("workflowID")
	if _, _, ok := api.SplitItemID(id); !ok {
		writeJSON(w, http.StatusBadRequest, problem{Error: "an item ID looks like lead-to-crm:<key>"})
		return
	}
	notFound := problem{Error: fmt.Sprintf("no item %s among those this source started: check the workflowId the intake answered when you sent it", id)}
	owned, err := in.ledger.IntakeItemOf(r.Context(), r.source, id)
	if err != nil {
		in.logger.Error("could not tell whether the source started the item", "workflowId", id, "source", r.source, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "could not read the item: PostgreSQL is unavailable; try again"})
		return
	}
	if !owned {
		writeJSON(w, http.StatusNotFound, notFound)
		return
	}
	state, err := in.items.Status(r.Context(), id)
	switch {
	case errors.Is(err, api.ErrNoItem):
		writeJSON(w, http.StatusNotFound, notFound)
	case err != nil:
		in.logger.Error("read item failed", "workflowId", id, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "could not read the item: Temporal is unavailable; try again"})
	default:
		writeJSON(w, http.StatusOK, viewOf(state))
	}
}

// startedByIntake is the startedBy of items a source started.
func startedByIntake(source string) string { return "intake:" + source }

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
