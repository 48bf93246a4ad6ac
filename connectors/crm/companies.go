package crm

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// Company property names signalbox reads or writes. Those marked custom
// must be created in HubSpot (single-line text) before use.
const (
	PropCompanyName    = "name"
	PropDomain         = "domain"
	PropAddress        = "address"
	PropCity           = "city"
	PropZip            = "zip"
	PropCountry        = "country"
	PropIndustry       = "industry"
	PropLifecycleStage = "lifecyclestage"
	PropOwnerID        = "hubspot_owner_id"
	// PropCustomerID (custom) is signalbox's customer ID: it finds the
	// company of a customer, and marks a company as one signalbox syncs.
	PropCustomerID = "signalbox_customer_id"
	// PropBillingEmail, PropPaymentTerms and PropCreditLimit are custom.
	PropBillingEmail = "billing_email"
	PropPaymentTerms = "payment_terms"
	PropCreditLimit  = "credit_limit"
	// PropLastModified is maintained by the CRM: when the company last changed.
	PropLastModified = "hs_lastmodifieddate"
)

// Company is a CRM company.
type Company struct {
	ID         string     `json:"id"`
	Properties Properties `json:"properties"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	Archived   bool       `json:"archived"`
}

const companiesPath = "/crm/v3/objects/companies"

// MaxBatch is the most records one batch request may carry.
const MaxBatch = 100

// MaxSearchResults is how far one search query pages: HubSpot answers no
// page past its 10,000th result.
const MaxSearchResults = 10_000

// Sort orders search results by a property.
type Sort struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"` // ASCENDING or DESCENDING
}

// Query is one page of a search.
type Query struct {
	FilterGroups []FilterGroup `json:"filterGroups"`
	Sorts        []Sort        `json:"sorts,omitempty"`
	Properties   []string      `json:"properties"`
	Limit        int           `json:"limit"`
	After        string        `json:"after,omitempty"`
}

// CompanyPage is one page of search results; After is empty on the last.
type CompanyPage struct {
	Total   int
	Results []Company
	After   string
}

// SearchCompanies returns one page of the companies that match q.
func (c *Client) SearchCompanies(ctx context.Context, q Query) (CompanyPage, error) {
	var resp struct {
		Total   int       `json:"total"`
		Results []Company `json:"results"`
		Paging  struct {
			Next struct {
				After string `json:"after"`
			} `json:"next"`
		} `json:"paging"`
	}
	err := c.api.Do(ctx, rest.Request{Method: http.MethodPost, Path: companiesPath + "/search", Body: q}, &resp)
	return CompanyPage{Total: resp.Total, Results: resp.Results, After: resp.Paging.Next.After}, err
}

// CreateCompany creates a company.
func (c *Client) CreateCompany(ctx context.Context, props Properties) (Company, error) {
	var out Company
	err := c.api.Do(ctx, rest.Request{Method: http.MethodPost, Path: companiesPath, Body: map[string]any{"properties": props}}, &out)
	return out, err
}

// GetCompany reads a company with the named properties; with archived set,
// only an archived one (HubSpot's meaning of the parameter).
func (c *Client) GetCompany(ctx context.Context, id string, properties []string, archived bool) (Company, error) {
	q := url.Values{}
	for _, p := range properties {
		q.Add("properties", p)
	}
	if archived {
		q.Set("archived", "true")
	}
	var out Company
	err := c.api.Do(ctx, rest.Request{Method: http.MethodGet, Path: companiesPath + "/" + url.PathEscape(id) + "?" + q.Encode()}, &out)
	return out, err
}

// UpdateCompany changes the given properties of a company and returns it as
// the CRM holds it afterwards.
func (c *Client) UpdateCompany(ctx context.Context, id string, props Properties) (Company, error) {
	var out Company
	err := c.api.Do(ctx, rest.Request{Method: http.MethodPatch, Path: companiesPath + "/" + url.PathEscape(id), Body: map[string]any{"properties": props}}, &out)
	return out, err
}

// ArchiveCompany archives a company (HubSpot's DELETE).
func (c *Client) ArchiveCompany(ctx context.Context, id string) error {
	return c.api.Do(ctx, rest.Request{Method: http.MethodDelete, Path: companiesPath + "/" + url.PathEscape(id)}, nil)
}

// BatchReadCompanies reads up to MaxBatch companies by ID, or by the values
// of idProperty (a property with unique values) when it is set; those the
// CRM does not know are left out.
func (c *Client) BatchReadCompanies(ctx context.Context, ids, properties []string, idProperty string) ([]Company, error) {
	return batchRead[Company](ctx, c, companiesPath, ids, properties, idProperty)
}

// BatchReadContacts reads up to MaxBatch contacts by ID; those the CRM does
// not know, or holds archived, are left out.
func (c *Client) BatchReadContacts(ctx context.Context, ids, properties []string) ([]Contact, error) {
	return batchRead[Contact](ctx, c, contactsPath, ids, properties, "")
}

func batchRead[T any](ctx context.Context, c *Client, path string, ids, properties []string, idProperty string) ([]T, error) {
	inputs := make([]map[string]string, len(ids))
	for i, id := range ids {
		inputs[i] = map[string]string{"id": id}
	}
	body := map[string]any{"inputs": inputs, "properties": properties}
	if idProperty != "" {
		body["idProperty"] = idProperty
	}
	var resp struct {
		Results []T `json:"results"`
	}
	err := c.api.Do(ctx, rest.Request{Method: http.MethodPost, Path: path + "/batch/read", Body: body}, &resp)
	return resp.Results, err
}

// BatchCreateCompanies creates up to MaxBatch companies in one request and
// returns them (in no promised order: match them by a property).
func (c *Client) BatchCreateCompanies(ctx context.Context, props []Properties) ([]Company, error) {
	inputs := make([]map[string]any, len(props))
	for i, p := range props {
		inputs[i] = map[string]any{"properties": p}
	}
	var resp struct {
		Results []Company `json:"results"`
	}
	err := c.api.Do(ctx, rest.Request{Method: http.MethodPost, Path: companiesPath + "/batch/create", Body: map[string]any{"inputs": inputs}}, &resp)
	return resp.Results, err
}

// ListArchivedCompanies returns one page of the archived companies, by ID,
// with the named properties; After is empty on the last page.
func (c *Client) ListArchivedCompanies(ctx context.Context, after string, limit int, properties []string) (CompanyPage, error) {
	return c.ListCompanies(ctx, true, after, limit, properties)
}

// ListCompanies returns one page of the companies (the archived ones, or
// those that are not), by ID, with the named properties; After is empty on
// the last page.
func (c *Client) ListCompanies(ctx context.Context, archived bool, after string, limit int, properties []string) (CompanyPage, error) {
	q := url.Values{"archived": {strconv.FormatBool(archived)}, "limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	for _, p := range properties {
		q.Add("properties", p)
	}
	var resp struct {
		Results []Company `json:"results"`
		Paging  struct {
			Next struct {
				After string `json:"after"`
			} `json:"next"`
		} `json:"paging"`
	}
	err := c.api.Do(ctx, rest.Request{Method: http.MethodGet, Path: companiesPath + "?" + q.Encode()}, &resp)
	return CompanyPage{Results: resp.Results, After: resp.Paging.Next.After}, err
}
