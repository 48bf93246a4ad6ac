package activities

import (
	"context"
	"errors"
	"maps"
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
	return heartbeating(ctx, func(ctx context.Context) (FindContactResult, error) { return a.findContact(ctx, in) })
}

func (a *CRM) findContact(ctx context.Context, in FindContactInput) (FindContactResult, error) {
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

// CreateContactInput creates a contact for a source record.
type CreateContactInput struct {
	Integration string
	SourceKey   string
	WorkflowID  string
	Properties  crm.Properties
	// Hash identifies Properties; it becomes the link's synced hash.
	Hash string
}

// CreateContactResult names the contact.
type CreateContactResult struct {
	ContactID string
	// Existed is true when the CRM answered 409: a contact with the email exists
	// (created by an earlier attempt or by someone else). It is not linked yet:
	// the caller updates it, which links it.
	Existed bool
}

// CreateContact creates the contact and links it to the source record. A 409
// "already exists" is success with the existing ID. One request per attempt,
// so the task queue's rate limit is the CRM's request rate.
func (a *CRM) CreateContact(ctx context.Context, in CreateContactInput) (CreateContactResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (CreateContactResult, error) {
		c, err := a.Client.Create(ctx, in.Properties)
		if id, exists := crm.ExistingID(err); exists {
			return CreateContactResult{ContactID: id, Existed: true}, nil
		}
		if err != nil {
			return CreateContactResult{}, Classify(err)
		}
		return CreateContactResult{ContactID: c.ID}, Classify(link(ctx, a.Store, in.Integration, in.SourceKey, in.WorkflowID, c.ID, in.Hash))
	})
}

// UpdateContactInput writes properties to an existing contact.
type UpdateContactInput struct {
	Integration string
	SourceKey   string
	WorkflowID  string
	ContactID   string
	Properties  crm.Properties
	Hash        string
	// AddEmail, for MergeContact, is the email to add to the contact's additional emails.
	AddEmail string
}

// UpdateContact writes the properties (a repeat writes the same values) and
// links the contact to the source record with the new hash.
func (a *CRM) UpdateContact(ctx context.Context, in UpdateContactInput) error {
	_, err := heartbeating(ctx, func(ctx context.Context) (struct{}, error) {
		if _, err := a.Client.Update(ctx, in.ContactID, in.Properties); err != nil {
			return struct{}{}, Classify(err)
		}
		return struct{}{}, Classify(link(ctx, a.Store, in.Integration, in.SourceKey, in.WorkflowID, in.ContactID, in.Hash))
	})
	return err
}

// MergeContact merges a source record into an existing contact: under a lock
// on the contact (all workers share it), it reads the contact's additional
// emails, adds AddEmail, and writes them with the properties, keeping the
// contact's primary email. Without the lock, two items merging into one
// contact at once could each overwrite the other's email. It makes two
// requests (read, write); merges are rare.
func (a *CRM) MergeContact(ctx context.Context, in UpdateContactInput) error {
	_, err := heartbeating(ctx, func(ctx context.Context) (struct{}, error) {
		err := a.Store.WithLock(ctx, "crm-contact:"+in.ContactID, func(ctx context.Context, locked *store.Store) error {
			c, err := a.Client.Get(ctx, in.ContactID, []string{crm.PropEmail, crm.PropAdditionalEmails})
			if err != nil {
				return err
			}
			props := maps.Clone(in.Properties)
			props[crm.PropEmail] = c.Properties[crm.PropEmail]
			props[crm.PropAdditionalEmails] = crm.AddEmail(c.Properties[crm.PropAdditionalEmails], in.AddEmail)
			if _, err := a.Client.Update(ctx, in.ContactID, props); err != nil {
				return err
			}
			return link(ctx, locked, in.Integration, in.SourceKey, in.WorkflowID, in.ContactID, in.Hash)
		})
		return struct{}{}, Classify(err)
	})
	return err
}

func link(ctx context.Context, s *store.Store, integration, sourceKey, workflowID, contactID, hash string) error {
	return s.SaveLink(ctx, store.Link{Integration: integration, SourceKey: sourceKey, TargetSystem: TargetCRM,
		TargetID: contactID, SyncedHash: hash, WorkflowID: workflowID, SyncedAt: time.Now().UTC()})
}
