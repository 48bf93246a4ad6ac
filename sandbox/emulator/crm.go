package emulator

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// contactProperties are the contact properties the emulator knows; HubSpot
// rejects unknown ones the same way.
var contactProperties = map[string]bool{
	"email": true, "firstname": true, "lastname": true, "company": true, "phone": true,
	"jobtitle": true, "hs_additional_emails": true, "lifecyclestage": true, "hs_lead_status": true,
	// lead_source is a custom property, as a HubSpot portal has it once created.
	"lead_source": true,
}

// contacts is HubSpot's contact object. Unlike a company, a contact that an
// update does not change keeps its lastmodifieddate, as signalbox's
// exactly-once checks rely on.
var contacts = &objectType{
	name: "contacts", label: "CONTACT",
	writable: contactProperties,
	kinds:    map[string]propKind{propObjectID: kindNumber, propCreateDate: kindDate, "lastmodifieddate": kindDate},
	// defaults are returned when a request names none.
	defaults:   []string{"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"},
	modified:   "lastmodifieddate",
	searchable: []string{"firstname", "lastname", "email", "phone", "hs_additional_emails", "company"},
	unique:     "email",
	conflict:   func(id string) string { return "Contact already exists. Existing ID: " + id },
	check:      checkEmail,
}

// crmState is the CRM's objects.
type crmState struct {
	contacts, companies *objectStore
}

func newCRMState(firstContactID, firstCompanyID int) *crmState {
	return &crmState{contacts: newObjectStore(contacts, firstContactID), companies: newObjectStore(companies, firstCompanyID)}
}

func contactsOf(c *crmState) *objectStore  { return c.contacts }
func companiesOf(c *crmState) *objectStore { return c.companies }

func (s *Server) crmAuth(h handler) handler {
	return func(r *http.Request, body []byte) result {
		if r.Header.Get("Authorization") != "Bearer "+s.token {
			return result{status: http.StatusUnauthorized, body: unauthorizedBody("crm")}
		}
		return h(r, body)
	}
}

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// checkEmail refuses an email that does not look deliverable, as HubSpot
// does. Addresses at .invalid domains are refused too, which lets tests
// provoke a target-side rejection of input that signalbox's own validation
// accepts.
func checkEmail(props map[string]string) *result {
	if email, ok := props["email"]; ok {
		if !emailPattern.MatchString(email) || strings.HasSuffix(strings.ToLower(email), ".invalid") {
			msg := fmt.Sprintf(`Property values were not valid: [{"isValid":false,"message":"Email address %s is invalid","error":"INVALID_EMAIL","name":"email"}]`, email)
			return &result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", msg)}
		}
	}
	return nil
}

func (s *Server) getContacts(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := []objectView{}
	for _, c := range s.crm.contacts.sorted() {
		out = append(out, s.crm.contacts.fullView(c))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"contacts": out})
}
