package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/crm"
	"github.com/signalbox-dev/signalbox/connectors/rest"
	"github.com/signalbox-dev/signalbox/store"
)

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
	// Baseline is what both sides held at the last sync or settlement, when
	// linked since baselines exist.
	Baseline store.Baseline `json:",omitempty"`
	// Similar holds contacts with the same name and company but another email.
	Similar []crm.Contact
}

// FindContact looks the contact up by its external link, else by email, and
// lists likely duplicates in the same request.
func (a *CRM) FindContact(ctx context.Context, in FindContactInput) (FindContactResult, error) {
	return heartbeating(ctx, func(ctx context.Context) (FindContactResult, error) { return a.findContact(ctx, in) })
}

func (a *CRM) findContact(ctx context.Context, in FindContactInput) (FindContactResult, error) {
	link, err := a.Store.GetLink(ctx, in.Integration, in.SourceKey, api.SystemCRM)
	switch {
	case err == nil && link.TargetID != "":
		c, err := a.Client.Get(ctx, link.TargetID, in.Properties)
		if err == nil {
			return FindContactResult{Contact: &c, Via: "link", SyncedHash: link.SyncedHash, Baseline: link.Baseline}, nil
		}
		var e *rest.Error
		if !errors.As(err, &e) || e.StatusCode != http.StatusNotFound {
			return FindContactResult{}, Classify(err)
		}
		activity.GetLogger(ctx).Info("linked contact no longer exists; searching again", "contactId", link.TargetID)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return FindContactResult{}, Classify(err)
	}

	person := personKey(crm.Properties{crm.PropFirstName: in.FirstName, crm.PropLastName: in.LastName, crm.PropCompany: in.Company})
	var claimed store.PersonClaim
	if person != "" {
		// Two leads for one person posted a moment apart must not both find
		// nothing and both create: the first claims the person until its
		// contact exists, and this one waits, then finds it.
		claimed, err = a.Store.ClaimPerson(ctx, person, in.Integration+"/"+in.SourceKey, personClaimLife)
		if err != nil {
			return FindContactResult{}, Classify(err)
		}
		if claimed.Busy {
			return FindContactResult{}, temporal.NewApplicationErrorWithOptions("another lead for the same person is being looked up or created; this one looks again once it has",
				string(api.ErrorBusy), temporal.ApplicationErrorOptions{NextRetryDelay: time.Second, Category: temporal.ApplicationErrorCategoryBenign})
		}
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
	if person != "" && claimed.ContactID == "" && (out.Contact != nil || len(out.Similar) > 0) {
		// Nothing will be created for the person: release the others now.
		known := out.Similar
		if out.Contact != nil {
			known = []crm.Contact{*out.Contact}
		}
		if err := a.Store.RecordPersonContact(ctx, person, in.Integration+"/"+in.SourceKey, known[0].ID); err != nil {
			return FindContactResult{}, Classify(err)
		}
	}
	if claimed.ContactID != "" && out.Contact == nil && !slices.ContainsFunc(out.Similar, func(c crm.Contact) bool { return c.ID == claimed.ContactID }) {
		// The CRM's search lags its writes; the claim knows the contact.
		c, err := a.Client.Get(ctx, claimed.ContactID, in.Properties)
		if err == nil && !strings.EqualFold(c.Properties[crm.PropEmail], in.Email) {
			out.Similar = append(out.Similar, c)
		}
	}
	return out, nil
}

// personClaimLife is how long a lead's claim on a person holds others back.
const personClaimLife = 2 * time.Minute

// personKey identifies a person by name and company, as a digest; empty when
// any of them is missing (then no duplicate can be told anyway).
func personKey(p crm.Properties) string {
	parts := []string{p[crm.PropFirstName], p[crm.PropLastName], p[crm.PropCompany]}
	for i, v := range parts {
		if parts[i] = strings.ToLower(strings.TrimSpace(v)); parts[i] == "" {
			return ""
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// CreateContactInput creates a contact for a source record.
type CreateContactInput struct {
	Integration string
	SourceKey   string
	WorkflowID  string
	Properties  crm.Properties
	// Hash identifies Properties; it becomes the link's synced hash.
	Hash string
	// Baseline becomes the link's baseline.
	Baseline store.Baseline `json:",omitempty"`
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
		if person := personKey(in.Properties); person != "" {
			if err := a.Store.RecordPersonContact(ctx, person, in.Integration+"/"+in.SourceKey, c.ID); err != nil {
				return CreateContactResult{}, Classify(err)
			}
		}
		return CreateContactResult{ContactID: c.ID}, Classify(link(ctx, a.Store, in.Integration, in.SourceKey, in.WorkflowID, c.ID, in.Hash, in.Baseline))
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
	Baseline    store.Baseline `json:",omitempty"`
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
		return struct{}{}, Classify(link(ctx, a.Store, in.Integration, in.SourceKey, in.WorkflowID, in.ContactID, in.Hash, in.Baseline))
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
			return link(ctx, locked, in.Integration, in.SourceKey, in.WorkflowID, in.ContactID, in.Hash, in.Baseline)
		})
		return struct{}{}, Classify(err)
	})
	return err
}

func link(ctx context.Context, s *store.Store, integration, sourceKey, workflowID, contactID, hash string, baseline store.Baseline) error {
	return s.SaveLink(ctx, store.Link{Integration: integration, SourceKey: sourceKey, TargetSystem: api.SystemCRM,
		TargetID: contactID, SyncedHash: hash, WorkflowID: workflowID, SyncedAt: time.Now().UTC(), Baseline: baseline})
}
