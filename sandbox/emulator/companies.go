package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// companyProperties are the company properties the emulator knows: HubSpot's
// default ones that integrations set, and the custom ones a portal creates
// for signalbox (lead_source; customer sync's signalbox_customer_id,
// billing_email, payment_terms and credit_limit).
var companyProperties = map[string]bool{
	"name": true, "domain": true, "website": true, "phone": true, "address": true, "address2": true,
	"city": true, "state": true, "zip": true, "country": true, "industry": true, "description": true,
	"numberofemployees": true, "annualrevenue": true, "lifecyclestage": true, "type": true,
	"hubspot_owner_id": true, "hs_lead_status": true, "linkedin_company_page": true, "twitterhandle": true,
	"facebook_company_page": true, "founded_year": true, "timezone": true, "is_public": true,
	"hs_additional_domains": true, "lead_source": true,
	"signalbox_customer_id": true, "billing_email": true, "payment_terms": true, "credit_limit": true,
}

// companies is HubSpot's company object. Every update bumps
// hs_lastmodifieddate, even one that changes no value.
var companies = &objectType{
	name: "companies", label: "COMPANY",
	writable: companyProperties,
	kinds: map[string]propKind{propObjectID: kindNumber, propCreateDate: kindDate, "hs_lastmodifieddate": kindDate,
		"numberofemployees": kindNumber, "annualrevenue": kindNumber},
	defaults:       []string{"name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"},
	modified:       "hs_lastmodifieddate",
	searchable:     []string{"website", "phone", "name", "domain"},
	touchUnchanged: true,
}

// The endpoints below are the sandbox's own: what a person does in HubSpot's
// UI. They are neither logged as API requests nor rate limited.

func (s *Server) getCompanies(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := []objectView{}
	for _, c := range s.crm.companies.sorted() {
		out = append(out, s.crm.companies.fullView(c))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"companies": out})
}

// readProperties reads {"properties": {...}} from a sandbox request.
func readProperties(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request body too large"})
		return nil, false
	}
	var in writeInput
	if err := json.Unmarshal(raw, &in); err != nil || in.Properties == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"properties": {"name": "..."}}`})
		return nil, false
	}
	return in.props(), true
}

// personCreatesCompany is POST /_sandbox/companies: a person creates a company.
func (s *Server) personCreatesCompany(w http.ResponseWriter, r *http.Request) {
	props, ok := readProperties(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, bad := s.crm.companies.create(props, s.now())
	if bad != nil {
		writeJSON(w, bad.status, bad.body)
		return
	}
	writeJSON(w, http.StatusCreated, s.crm.companies.fullView(o))
}

// personEdits is POST /_sandbox/companies/{id}/edit (or contacts): a person
// changes a record's properties, which bumps its last-modified date.
func (s *Server) personEdits(of func(*crmState) *objectStore) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		props, ok := readProperties(w, r)
		if !ok {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		store := of(s.crm)
		o, ok := s.live(w, store, r.PathValue("id"))
		if !ok {
			return
		}
		if bad := store.checkUpdate(o, props); bad != nil {
			writeJSON(w, bad.status, bad.body)
			return
		}
		store.apply(o, props, s.now(), true)
		writeJSON(w, http.StatusOK, store.fullView(o))
	}
}

// personArchives is DELETE /_sandbox/companies/{id} (or contacts): a person
// deletes a record, which HubSpot moves to the recycling bin.
func (s *Server) personArchives(of func(*crmState) *objectStore) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		store := of(s.crm)
		o, ok := s.live(w, store, r.PathValue("id"))
		if !ok {
			return
		}
		store.archive(o, s.now())
		writeJSON(w, http.StatusOK, store.fullView(o))
	}
}

// personRestoresCompany is POST /_sandbox/companies/{id}/restore: a person
// restores a company from the recycling bin, which bumps hs_lastmodifieddate.
func (s *Server) personRestoresCompany(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.crm.companies.get(r.PathValue("id"), true)
	if o == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no archived company " + r.PathValue("id") + "; GET /_sandbox/companies lists them all"})
		return
	}
	if bad := s.crm.companies.restore(o, s.now()); bad != nil {
		writeJSON(w, bad.status, bad.body)
		return
	}
	writeJSON(w, http.StatusOK, s.crm.companies.fullView(o))
}

// live finds a record that is not archived, or answers 404.
func (s *Server) live(w http.ResponseWriter, store *objectStore, id string) (*object, bool) {
	if o := store.get(id, false); o != nil {
		return o, true
	}
	name := store.typ.name
	msg := "no " + strings.TrimSuffix(name, "s") + " " + id + "; GET /_sandbox/" + name + " lists them all"
	if store.get(id, true) != nil {
		msg = id + " is archived"
		if store == s.crm.companies {
			msg += "; restore it first with POST /_sandbox/companies/" + id + "/restore"
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": msg})
	return nil, false
}
