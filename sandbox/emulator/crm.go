package emulator

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// crmProperties are the contact properties the emulator knows; HubSpot rejects
// unknown ones the same way.
var crmProperties = map[string]bool{
	"email": true, "firstname": true, "lastname": true, "company": true, "phone": true,
	"jobtitle": true, "hs_additional_emails": true, "lifecyclestage": true, "hs_lead_status": true,
	// lead_source is a custom property, as a HubSpot portal has it once created.
	"lead_source": true,
}

// defaultProperties are returned when a request names none.
var defaultProperties = []string{"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}

type contact struct {
	ID        string            `json:"id"`
	Props     map[string]string `json:"properties"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
	Archived  bool              `json:"archived"`
}

type crmState struct {
	nextID   int
	contacts map[string]*contact
	byEmail  map[string]string
}

func newCRMState(firstID int) *crmState {
	return &crmState{nextID: firstID, contacts: map[string]*contact{}, byEmail: map[string]string{}}
}

// view returns the contact with only the named properties, as HubSpot does.
func (c *contact) view(names []string) contact {
	if len(names) == 0 {
		names = defaultProperties
	}
	out := contact{ID: c.ID, Props: map[string]string{}, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Archived: c.Archived}
	for _, n := range names {
		switch n {
		case "hs_object_id":
			out.Props[n] = c.ID
		case "createdate":
			out.Props[n] = c.CreatedAt.Format(time.RFC3339Nano)
		case "lastmodifieddate":
			out.Props[n] = c.UpdatedAt.Format(time.RFC3339Nano)
		default:
			if v, ok := c.Props[n]; ok {
				out.Props[n] = v
			}
		}
	}
	return out
}

func (s *Server) crmAuth(h handler) handler {
	return func(r *http.Request, body []byte) result {
		if r.Header.Get("Authorization") != "Bearer "+s.token {
			return result{status: http.StatusUnauthorized, body: unauthorizedBody("crm")}
		}
		return h(r, body)
	}
}

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// checkProperties validates a create or update the way HubSpot does: known
// properties only, and a deliverable-looking email. Addresses at .invalid
// domains are refused, which lets tests provoke a target-side rejection of
// input that signalbox's own validation accepts.
func checkProperties(props map[string]string) *result {
	for _, name := range slices.Sorted(maps.Keys(props)) {
		if !crmProperties[name] {
			return &result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", fmt.Sprintf("Property \"%s\" does not exist", name))}
		}
	}
	if email, ok := props["email"]; ok {
		if !emailPattern.MatchString(email) || strings.HasSuffix(strings.ToLower(email), ".invalid") {
			msg := fmt.Sprintf(`Property values were not valid: [{"isValid":false,"message":"Email address %s is invalid","error":"INVALID_EMAIL","name":"email"}]`, email)
			return &result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", msg)}
		}
	}
	return nil
}

// writeRequest reads the properties of a create or update and validates them.
func writeRequest(body []byte) (map[string]string, *result) {
	var in struct {
		Properties map[string]string `json:"properties"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Properties == nil {
		return nil, &result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", "Invalid input JSON: expected {\"properties\": {...}}")}
	}
	return in.Properties, checkProperties(in.Properties)
}

func (s *Server) crmCreate(_ *http.Request, body []byte) result {
	props, bad := writeRequest(body)
	if bad != nil {
		return *bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	email := strings.ToLower(props["email"])
	if id, ok := s.crm.byEmail[email]; ok && email != "" {
		return result{status: http.StatusConflict, body: hubspotError("CONFLICT", "Contact already exists. Existing ID: "+id)}
	}
	now := s.now().UTC()
	c := &contact{ID: strconv.Itoa(s.crm.nextID), Props: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	s.crm.nextID++
	for k, v := range props {
		c.Props[k] = v
	}
	s.crm.contacts[c.ID] = c
	if email != "" {
		s.crm.byEmail[email] = c.ID
	}
	return result{status: http.StatusCreated, body: c.view(slices.Sorted(maps.Keys(props))), effect: true}
}

func (s *Server) crmGet(r *http.Request, _ []byte) result {
	var names []string
	if p := r.URL.Query().Get("properties"); p != "" {
		names = strings.Split(p, ",")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.crm.contacts[r.PathValue("id")]
	if !ok {
		return result{status: http.StatusNotFound, body: hubspotError("OBJECT_NOT_FOUND", "resource not found")}
	}
	return result{status: http.StatusOK, body: c.view(names)}
}

func (s *Server) crmUpdate(r *http.Request, body []byte) result {
	props, bad := writeRequest(body)
	if bad != nil {
		return *bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.crm.contacts[r.PathValue("id")]
	if !ok {
		return result{status: http.StatusNotFound, body: hubspotError("OBJECT_NOT_FOUND", "resource not found")}
	}
	if email, ok := props["email"]; ok {
		lower := strings.ToLower(email)
		if other, taken := s.crm.byEmail[lower]; taken && other != c.ID {
			return result{status: http.StatusConflict, body: hubspotError("CONFLICT", "Contact already exists. Existing ID: "+other)}
		}
		delete(s.crm.byEmail, strings.ToLower(c.Props["email"]))
		s.crm.byEmail[lower] = c.ID
	}
	changed := false
	for k, v := range props {
		if c.Props[k] != v {
			c.Props[k] = v
			changed = true
		}
	}
	if changed {
		c.UpdatedAt = s.now().UTC()
	}
	return result{status: http.StatusOK, body: c.view(slices.Sorted(maps.Keys(props))), effect: changed}
}

type searchRequest struct {
	FilterGroups []struct {
		Filters []struct {
			PropertyName string `json:"propertyName"`
			Operator     string `json:"operator"`
			Value        string `json:"value"`
		} `json:"filters"`
	} `json:"filterGroups"`
	Properties []string `json:"properties"`
	Limit      int      `json:"limit"`
}

// crmSearch supports EQ filters, compared without regard to case as HubSpot
// does; filters of a group are ANDed and groups ORed.
func (s *Server) crmSearch(_ *http.Request, body []byte) result {
	var req searchRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", "Invalid input JSON")}
	}
	for _, g := range req.FilterGroups {
		for _, f := range g.Filters {
			if f.Operator != "EQ" {
				return result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", "the sandbox supports only the EQ operator, got "+f.Operator)}
			}
		}
	}
	limit := req.Limit
	if limit <= 0 || limit > 100 {
		limit = 10
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var matches []contact
	for _, c := range s.crm.sorted() {
		for _, g := range req.FilterGroups {
			all := len(g.Filters) > 0
			for _, f := range g.Filters {
				if !strings.EqualFold(c.Props[f.PropertyName], f.Value) {
					all = false
					break
				}
			}
			if all {
				matches = append(matches, c.view(req.Properties))
				break
			}
		}
	}
	total := len(matches)
	if len(matches) > limit {
		matches = matches[:limit]
	}
	if matches == nil {
		matches = []contact{}
	}
	return result{status: http.StatusOK, body: map[string]any{"total": total, "results": matches}}
}

func (c *crmState) sorted() []*contact {
	out := make([]*contact, 0, len(c.contacts))
	for _, ct := range c.contacts {
		out = append(out, ct)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i].ID)
		b, _ := strconv.Atoi(out[j].ID)
		return a < b
	})
	return out
}

func (s *Server) getContacts(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	var out []contact
	for _, c := range s.crm.sorted() {
		out = append(out, c.view(slices.Sorted(maps.Keys(c.Props))))
	}
	s.mu.Unlock()
	if out == nil {
		out = []contact{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"contacts": out})
}
