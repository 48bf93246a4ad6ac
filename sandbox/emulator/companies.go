package emulator

import (
	"encoding/json"
	"io"
	"net/http"
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

// personEditsCompany is POST /_sandbox/companies/{id}/edit: a person changes a
// company's properties, which bumps its hs_lastmodifieddate.
func (s *Server) personEditsCompany(w http.ResponseWriter, r *http.Request) {
	props, ok := readProperties(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.liveCompany(w, r.PathValue("id"))
	if !ok {
		return
	}
	if bad := s.crm.companies.checkUpdate(o, props); bad != nil {
		writeJSON(w, bad.status, bad.body)
		return
	}
	s.crm.companies.apply(o, props, s.now(), true)
	writeJSON(w, http.StatusOK, s.crm.companies.fullView(o))
}

// personArchivesCompany is DELETE /_sandbox/companies/{id}: a person deletes a
// company, which HubSpot moves to the recycling bin.
func (s *Server) personArchivesCompany(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.liveCompany(w, r.PathValue("id"))
	if !ok {
		return
	}
	s.crm.companies.archive(o, s.now())
	writeJSON(w, http.StatusOK, s.crm.companies.fullView(o))
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

// liveCompany finds a company that is not archived, or answers 404.
func (s *Server) liveCompany(w http.ResponseWriter, id string) (*object, bool) {
	if o := s.crm.companies.get(id, false); o != nil {
		return o, true
	}
	msg := "no company " + id + "; GET /_sandbox/companies lists them all"
	if s.crm.companies.get(id, true) != nil {
		msg = "company " + id + " is archived; restore it first with POST /_sandbox/companies/" + id + "/restore"
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": msg})
	return nil, false
}
