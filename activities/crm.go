package activities

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
	"github.com/signalbox-dev/signalbox/store"
)

// TargetCRM names the CRM in external links and external IDs.
const TargetCRM = "crm"

// CRM holds the activities that read and write CRM contacts.
type CRM struct {
	Client *crm.Client
	Store  *store.Store
}

// FindContactInput describes the contact to look for.
type FindContactInput struct {
	Integration string
	SourceKey   string
	Email       string
	// FirstName, LastName and Company find a likely duplicate under another email.
	FirstName, LastName, Company string
	// Properties are the properties to read back.
	Properties []string
}

// FindContactResult is what the CRM holds for the source record.
type FindContactResult struct {
	// Contact is the contact already linked to the source record or with its
	// email; nil when there is none.
	Contact *crm.Contact
	// Via says how Contact was found: "link" or "email".
	Via string
	// SyncedHash is the hash of what signalbox last wrote, when linked.
	SyncedHash string
	// Similar holds contacts with the same name and company but another email.
	Similar []crm.Contact
}

// FindContact looks the contact up by its external link, else by email, and
// lists likely duplicates in the same request.
func (a *CRM) FindContact(ctx context.Context, in FindContactInput) (FindContactResult, error) {
	link, err := a.Store.GetLink(ctx, in.Integration, in.SourceKey, TargetCRM)
	switch {
	case err == nil:
		c, err := a.Client.Get(ctx, link.TargetID, in.Properties)
		if err == nil {
			return FindContactResult{Contact: &c, Via: "link", SyncedHash: link.SyncedHash}, nil
		}
		var e *rest.Error
		if !errors.As(err, &e) || e.StatusCode != http.StatusNotFound {
			return FindContactResult{}, Classify(err)
		}
		activity.GetLogger(ctx).Info("linked contact no longer exists; searching again", "contactId", link.TargetID)
	case !errors.Is(err, store.ErrNotFound):
		return FindContactResult{}, Classify(err)
	}

	groups := []crm.FilterGroup{crm.Equals(crm.Properties{crm.PropEmail: in.Email})}
	if in.FirstName != "" && in.LastName != "" && in.Company != "" {
		groups = append(groups, crm.Equals(crm.Properties{crm.PropFirstName: in.FirstName, crm.PropLastName: in.LastName, crm.PropCompany: in.Company}))
	}
	found, err := a.Client.Search(ctx, groups, in.Properties)
	if err != nil {
		return FindContactResult{}, Classify(err)
	}
	var out FindContactResult
	for i := range found {
		if strings.EqualFold(found[i].Properties[crm.PropEmail], in.Email) {
			if out.Contact == nil {
				out.Contact, out.Via = &found[i], "email"
			}
			continue
		}
		out.Similar = append(out.Similar, found[i])
	}
	return out, nil
}

// WriteContactInput creates or updates a contact and links it to the source record.
type WriteContactInput struct {
	Integration string
	SourceKey   string
	WorkflowID  string
	// ContactID is the contact to update; empty to create one.
	ContactID  string
	Properties crm.Properties
	// Hash identifies Properties; it becomes the link's synced hash.
	Hash string
}

// WriteContactResult names the contact written.
type WriteContactResult struct {
	ContactID string
	// Created is false when the contact existed (an update, or a create answered
	// with 409 because an earlier attempt or someone else created it).
	Created bool
}

// WriteContact creates the contact (a 409 "already exists" counts as success
// with the existing ID) or updates it, then records the external link. Every
// step is safe to repeat.
func (a *CRM) WriteContact(ctx context.Context, in WriteContactInput) (WriteContactResult, error) {
	out := WriteContactResult{ContactID: in.ContactID}
	if in.ContactID == "" {
		c, err := a.Client.Create(ctx, in.Properties)
		if id, exists := crm.ExistingID(err); exists {
			out.ContactID = id
		} else if err != nil {
			return out, Classify(err)
		} else {
			out.ContactID, out.Created = c.ID, true
		}
	}
	if !out.Created {
		if _, err := a.Client.Update(ctx, out.ContactID, in.Properties); err != nil {
			return out, Classify(err)
		}
	}
	err := a.Store.SaveLink(ctx, store.Link{Integration: in.Integration, SourceKey: in.SourceKey, TargetSystem: TargetCRM,
		TargetID: out.ContactID, SyncedHash: in.Hash, WorkflowID: in.WorkflowID, SyncedAt: time.Now().UTC()})
	return out, Classify(err)
}
