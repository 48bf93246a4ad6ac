package emulator

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds the HubSpot CRM v3 objects API endpoints that every object
// type shares; each handler is given the store of its type.

// storeOf picks an object type's store from the CRM's state.
type storeOf func(*crmState) *objectStore

// maxBatchInputs is HubSpot's limit on the inputs of one batch request.
const maxBatchInputs = 100

// Paging of the list endpoint (GET /crm/v3/objects/{type}).
const (
	defaultListLimit = 10
	maxListLimit     = 100
)

func notFound() result {
	return result{status: http.StatusNotFound, body: hubspotError("OBJECT_NOT_FOUND", "resource not found")}
}

func badRequest(format string, args ...any) result {
	return result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", fmt.Sprintf(format, args...))}
}

// queryProperties reads the properties query parameter, which HubSpot's
// clients repeat (properties=a&properties=b) and others comma-separate.
func queryProperties(r *http.Request) []string {
	var out []string
	for _, v := range r.URL.Query()["properties"] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// queryArchived reads the archived query parameter (default false).
func queryArchived(r *http.Request) (bool, *result) {
	v := r.URL.Query().Get("archived")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		bad := badRequest("archived must be true or false; got %q.", v)
		return false, &bad
	}
	return b, nil
}

// writeInput is one object to create or update, alone or in a batch.
type writeInput struct {
	ID           flexString            `json:"id"`
	IDProperty   string                `json:"idProperty"`
	Properties   map[string]flexString `json:"properties"`
	Associations []json.RawMessage     `json:"associations"`
}

// props returns the input's properties as strings (null clears a property).
func (in writeInput) props() map[string]string {
	out := make(map[string]string, len(in.Properties))
	for k, v := range in.Properties {
		out[k] = v.s
	}
	return out
}

// check refuses an input without properties, or with associations, which the
// sandbox does not emulate.
func (in writeInput) check() *result {
	if in.Properties == nil {
		bad := badRequest(`Invalid input JSON: expected {"properties": {...}}`)
		return &bad
	}
	if len(in.Associations) > 0 {
		bad := badRequest("The sandbox does not emulate associations; create the object without them.")
		return &bad
	}
	return nil
}

// writeRequest reads the body of a create or update: {"properties": {...}}.
func writeRequest(body []byte) (map[string]string, *result) {
	var in writeInput
	if err := json.Unmarshal(body, &in); err != nil {
		bad := badRequest(`Invalid input JSON: expected {"properties": {...}}`)
		return nil, &bad
	}
	if bad := in.check(); bad != nil {
		return nil, bad
	}
	return in.props(), nil
}

func (s *Server) objCreate(of storeOf) handler {
	return func(_ *http.Request, body []byte) result {
		props, bad := writeRequest(body)
		if bad != nil {
			return *bad
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		st := of(s.crm)
		o, bad := st.create(props, s.now())
		if bad != nil {
			return *bad
		}
		return result{status: http.StatusCreated, body: st.view(o, slices.Sorted(maps.Keys(props))), effect: true}
	}
}

func (s *Server) objGet(of storeOf) handler {
	return func(r *http.Request, _ []byte) result {
		archived, bad := queryArchived(r)
		if bad != nil {
			return *bad
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		st := of(s.crm)
		o := st.lookup(r.URL.Query().Get("idProperty"), r.PathValue("id"), archived)
		if o == nil {
			return notFound()
		}
		return result{status: http.StatusOK, body: st.view(o, queryProperties(r))}
	}
}

func (s *Server) objUpdate(of storeOf) handler {
	return func(r *http.Request, body []byte) result {
		props, bad := writeRequest(body)
		if bad != nil {
			return *bad
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		st := of(s.crm)
		o := st.lookup(r.URL.Query().Get("idProperty"), r.PathValue("id"), false)
		if o == nil {
			return notFound()
		}
		changed, bad := st.update(o, props, s.now())
		if bad != nil {
			return *bad
		}
		return result{status: http.StatusOK, body: st.view(o, slices.Sorted(maps.Keys(props))), effect: changed}
	}
}

// objArchive answers 204 whether or not the object exists, as HubSpot does.
func (s *Server) objArchive(of storeOf) handler {
	return func(r *http.Request, _ []byte) result {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := of(s.crm)
		o := st.get(r.PathValue("id"), false)
		if o == nil {
			return result{status: http.StatusNoContent}
		}
		st.archive(o, s.now())
		return result{status: http.StatusNoContent, effect: true}
	}
}

// objList pages through the objects by ID; paging.next.after is the ID of the
// first object of the next page.
func (s *Server) objList(of storeOf) handler {
	return func(r *http.Request, _ []byte) result {
		q := r.URL.Query()
		limit := defaultListLimit
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxListLimit {
				return badRequest("limit must be a whole number from 1 to %d; got %q.", maxListLimit, v)
			}
			limit = n
		}
		after := int64(-1)
		if v := q.Get("after"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return badRequest("after must be the value of paging.next.after from the previous page; got %q.", v)
			}
			after = n
		}
		archived, bad := queryArchived(r)
		if bad != nil {
			return *bad
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		st, props := of(s.crm), queryProperties(r)
		page, next := []objectView{}, ""
		// Objects are in ID order: skip those before after without looking.
		objs := st.sorted()
		start, _ := slices.BinarySearchFunc(objs, after, func(o *object, after int64) int {
			id, _ := strconv.ParseInt(o.id, 10, 64)
			return compareInts(id, after)
		})
		for _, o := range objs[start:] {
			if id, _ := strconv.ParseInt(o.id, 10, 64); o.archived != archived || id < after {
				continue
			}
			if len(page) == limit {
				next = o.id
				break
			}
			page = append(page, st.view(o, props))
		}
		out := map[string]any{"results": page}
		if next != "" {
			out["paging"] = map[string]any{"next": map[string]string{"after": next, "link": nextLink(r, next)}}
		}
		return result{status: http.StatusOK, body: out}
	}
}

// nextLink is the URL of the next page: this request's with another after.
func nextLink(r *http.Request, after string) string {
	q := r.URL.Query()
	q.Set("after", after)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.Path + "?" + q.Encode()
}

func (s *Server) objSearch(of storeOf) handler {
	return func(_ *http.Request, body []byte) result {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := of(s.crm)
		q, bad := parseSearch(st.typ, body)
		if bad != nil {
			return *bad
		}
		return st.search(q)
	}
}

// batchResult is HubSpot's answer to a batch request.
func batchResult(status int, results []objectView, errs []map[string]any, started, completed time.Time) result {
	body := map[string]any{"status": "COMPLETE", "results": results, "startedAt": formatTime(started), "completedAt": formatTime(completed)}
	if len(errs) > 0 {
		body["errors"] = errs
		body["numErrors"] = len(errs)
		status = http.StatusMultiStatus
	}
	return result{status: status, body: body}
}

// notFoundError is a batch's error for the IDs it did not find.
func (st *objectStore) notFoundError(ids []string) map[string]any {
	return map[string]any{
		"status":   "error",
		"category": "OBJECT_NOT_FOUND",
		"message":  fmt.Sprintf("Could not get some %s objects, they may be deleted or not exist. Check that ids are valid.", st.typ.label),
		"context":  map[string][]string{"ids": ids},
	}
}

// checkBatchSize refuses a batch without inputs or with too many.
func checkBatchSize(n int, given bool) *result {
	if !given {
		bad := badRequest(`Invalid input JSON: expected {"inputs": [...]}`)
		return &bad
	}
	if n > maxBatchInputs {
		bad := badRequest("The maximum number of inputs supported in a batch is %d. Please reduce the number of items and try again", maxBatchInputs)
		return &bad
	}
	return nil
}

type batchReadRequest struct {
	Inputs []struct {
		ID flexString `json:"id"`
	} `json:"inputs"`
	Properties            []string `json:"properties"`
	PropertiesWithHistory []string `json:"propertiesWithHistory"`
	IDProperty            string   `json:"idProperty"`
}

// objBatchRead answers 200 when it found every ID and 207 Multi-Status, with
// the missing IDs in errors, when it did not.
func (s *Server) objBatchRead(of storeOf) handler {
	return func(r *http.Request, body []byte) result {
		var req batchReadRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return badRequest("Invalid input JSON: %v", err)
		}
		if bad := checkBatchSize(len(req.Inputs), req.Inputs != nil); bad != nil {
			return *bad
		}
		if len(req.PropertiesWithHistory) > 0 {
			return badRequest("The sandbox does not emulate propertiesWithHistory; ask for properties instead.")
		}
		archived, bad := queryArchived(r)
		if bad != nil {
			return *bad
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		st, started := of(s.crm), s.now()
		results, missing, seen := []objectView{}, []string{}, map[string]bool{}
		for _, in := range req.Inputs {
			o := st.lookup(req.IDProperty, in.ID.s, archived)
			switch {
			case o == nil:
				missing = append(missing, in.ID.s)
			case !seen[o.id]:
				seen[o.id] = true
				results = append(results, st.view(o, req.Properties))
			}
		}
		var errs []map[string]any
		if len(missing) > 0 {
			errs = append(errs, st.notFoundError(missing))
		}
		return batchResult(http.StatusOK, results, errs, started, s.now())
	}
}

type batchWriteRequest struct {
	Inputs []writeInput `json:"inputs"`
}

// readBatchWrite reads and checks the shape of a batch create or update.
func readBatchWrite(body []byte) ([]writeInput, *result) {
	var req batchWriteRequest
	if err := json.Unmarshal(body, &req); err != nil {
		bad := badRequest("Invalid input JSON: %v", err)
		return nil, &bad
	}
	if bad := checkBatchSize(len(req.Inputs), req.Inputs != nil); bad != nil {
		return nil, bad
	}
	for _, in := range req.Inputs {
		if bad := in.check(); bad != nil {
			return nil, bad
		}
	}
	return req.Inputs, nil
}

// objBatchCreate creates every input or, when one is refused, none.
func (s *Server) objBatchCreate(of storeOf) handler {
	return func(_ *http.Request, body []byte) result {
		inputs, bad := readBatchWrite(body)
		if bad != nil {
			return *bad
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		st, started := of(s.crm), s.now()
		pending := map[string]bool{}
		for _, in := range inputs {
			props := in.props()
			if bad := st.checkCreate(props); bad != nil {
				return *bad
			}
			if v := strings.ToLower(props[st.typ.unique]); st.typ.unique != "" && v != "" {
				if pending[v] {
					return badRequest("Two inputs have the same %s %q; send each object once.", st.typ.unique, props[st.typ.unique])
				}
				pending[v] = true
			}
		}
		results := []objectView{}
		for _, in := range inputs {
			props := in.props()
			results = append(results, st.view(st.insert(props, s.now()), slices.Sorted(maps.Keys(props))))
		}
		res := batchResult(http.StatusCreated, results, nil, started, s.now())
		res.effect = len(results) > 0
		return res
	}
}

// objBatchUpdate refuses the whole batch when an input is invalid; it updates
// the objects it finds and reports the others in errors (207 Multi-Status).
func (s *Server) objBatchUpdate(of storeOf) handler {
	return func(_ *http.Request, body []byte) result {
		inputs, bad := readBatchWrite(body)
		if bad != nil {
			return *bad
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		st, started := of(s.crm), s.now()
		found := make([]*object, len(inputs))
		seen, missing := map[string]bool{}, []string{}
		for i, in := range inputs {
			if !in.ID.set || in.ID.s == "" {
				return badRequest("Every input of a batch update needs an id.")
			}
			if seen[in.key()] {
				return badRequest("Duplicate IDs found in batch input: [%s]. IDs must be unique", in.ID.s)
			}
			seen[in.key()] = true
			found[i] = st.lookup(in.IDProperty, in.ID.s, false)
			if found[i] == nil {
				missing = append(missing, in.ID.s)
				continue
			}
			if bad := st.checkUpdate(found[i], in.props()); bad != nil {
				return *bad
			}
		}
		results, effect := []objectView{}, false
		for i, in := range inputs {
			if o := found[i]; o != nil {
				props := in.props()
				effect = st.apply(o, props, s.now(), st.typ.touchUnchanged) || effect
				results = append(results, st.view(o, slices.Sorted(maps.Keys(props))))
			}
		}
		var errs []map[string]any
		if len(missing) > 0 {
			errs = append(errs, st.notFoundError(missing))
		}
		res := batchResult(http.StatusOK, results, errs, started, s.now())
		res.effect = effect
		return res
	}
}

// key names the object an update input addresses.
func (in writeInput) key() string { return in.IDProperty + "\x00" + strings.ToLower(in.ID.s) }
