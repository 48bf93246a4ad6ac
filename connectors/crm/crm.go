// Package crm is a typed client for the subset of the HubSpot CRM v3 contacts
// API that signalbox uses. It points at the sandbox by default and at HubSpot
// (https://api.hubapi.com) with a private-app token.
package crm

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// Contact property names.
const (
	PropEmail     = "email"
	PropFirstName = "firstname"
	PropLastName  = "lastname"
	PropCompany   = "company"
	PropPhone     = "phone"
	PropJobTitle  = "jobtitle"
	// PropLeadSource is a custom property (single-line text) naming the form.
	PropLeadSource = "lead_source"
	// PropAdditionalEmails holds further addresses of a merged contact (";"-separated).
	PropAdditionalEmails = "hs_additional_emails"
)

// Properties are a contact's property values by name.
type Properties map[string]string

// Contact is a CRM contact.
type Contact struct {
	ID         string     `json:"id"`
	Properties Properties `json:"properties"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	Archived   bool       `json:"archived"`
}

// Client calls the contacts API.
type Client struct {
	api *rest.Client
}

// New returns a client for the API at baseURL (e.g. https://api.hubapi.com)
// authenticated with a bearer token, over hc (see rest.HTTPClient).
func New(baseURL, token string, hc *http.Client) *Client {
	return &Client{api: rest.NewClient("crm", baseURL, hc, http.Header{"Authorization": {"Bearer " + token}})}
}

const contactsPath = "/crm/v3/objects/contacts"

// Filter is one condition of a search; the filters of a group must all match.
type Filter struct {
	PropertyName string `json:"propertyName"`
	Operator     string `json:"operator"`
	Value        string `json:"value"`
}

// FilterGroup is one alternative of a search; any group may match.
type FilterGroup struct {
	Filters []Filter `json:"filters"`
}

// Search returns the contacts that match any of the groups, with the named properties.
func (c *Client) Search(ctx context.Context, groups []FilterGroup, properties []string) ([]Contact, error) {
	req := struct {
		FilterGroups []FilterGroup `json:"filterGroups"`
		Properties   []string      `json:"properties"`
		Limit        int           `json:"limit"`
	}{groups, properties, 20}
	var resp struct {
		Total   int       `json:"total"`
		Results []Contact `json:"results"`
	}
	err := c.api.Do(ctx, rest.Request{Method: http.MethodPost, Path: contactsPath + "/search", Body: req}, &resp)
	return resp.Results, err
}

// Equals is a filter group matching every given property exactly.
func Equals(props Properties) FilterGroup {
	var g FilterGroup
	for _, name := range slices.Sorted(maps.Keys(props)) {
		g.Filters = append(g.Filters, Filter{PropertyName: name, Operator: "EQ", Value: props[name]})
	}
	return g
}

// Create creates a contact. When one with the same email exists the CRM answers
// 409; ExistingID extracts that contact's ID from the error.
func (c *Client) Create(ctx context.Context, props Properties) (Contact, error) {
	var out Contact
	err := c.api.Do(ctx, rest.Request{Method: http.MethodPost, Path: contactsPath, Body: map[string]any{"properties": props}}, &out)
	return out, err
}

// Get reads a contact with the named properties.
func (c *Client) Get(ctx context.Context, id string, properties []string) (Contact, error) {
	q := url.Values{}
	if len(properties) > 0 {
		q.Set("properties", strings.Join(properties, ","))
	}
	var out Contact
	err := c.api.Do(ctx, rest.Request{Method: http.MethodGet, Path: contactsPath + "/" + url.PathEscape(id) + "?" + q.Encode()}, &out)
	return out, err
}

// Update changes the given properties of a contact.
func (c *Client) Update(ctx context.Context, id string, props Properties) (Contact, error) {
	var out Contact
	err := c.api.Do(ctx, rest.Request{Method: http.MethodPatch, Path: contactsPath + "/" + url.PathEscape(id), Body: map[string]any{"properties": props}}, &out)
	return out, err
}

var existingID = regexp.MustCompile(`Existing ID: ?(\d+)`)

// ExistingID returns the ID of the contact that made a create fail with 409.
func ExistingID(err error) (string, bool) {
	var e *rest.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusConflict {
		return "", false
	}
	m := existingID.FindStringSubmatch(e.Message)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// AddEmail adds email to a contact's ";"-separated additional emails, unless
// it is there already (in any case).
func AddEmail(list, email string) string {
	var out []string
	for _, e := range strings.Split(list, ";") {
		if e = strings.TrimSpace(e); e != "" {
			if strings.EqualFold(e, email) {
				return list
			}
			out = append(out, e)
		}
	}
	return strings.Join(append(out, email), ";")
}
