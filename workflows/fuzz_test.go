package workflows

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// FuzzDecisionPayload feeds arbitrary signal payloads through the decoding and
// checks a decision signal meets: never a panic (which would fail the
// workflow task), and nothing incomplete accepted.
func FuzzDecisionPayload(f *testing.F) {
	for _, seed := range []string{
		`{"action":"approve","actor":"alice","reason":"ok"}`,
		`{"action":"amend","actor":"a","reason":"r","set":{"email":"x@y.co"}}`,
		`{"action":"resolve","actor":"a","reason":"r","externalRef":"CRM 1"}`,
		`"approve"`, `42`, `null`, `[]`, `{"action":5}`, `{"action":"approve","x":1}`, `{}{}`,
		`{"set":{"a":{"b":[[[[]]]]}}}`, "{\"reason\":\"\xff\"}", `{"actor":"` + strings.Repeat("a", 5000) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := api.DecodeDecision(raw)
		if err != nil {
			return
		}
		if d.Complete() != nil {
			return
		}
		if strings.TrimSpace(d.Actor) == "" || strings.TrimSpace(d.Reason) == "" || !utf8.ValidString(d.Reason) {
			t.Fatalf("an incomplete decision passed: %+v", d)
		}
	})
}

// FuzzLeadAmendment: amending a lead never panics, and an accepted amendment
// always leaves a valid lead.
func FuzzLeadAmendment(f *testing.F) {
	f.Add("email", "ada@example.com")
	f.Add("phone", "+1 (555) 0100")
	f.Add("consent", "true")
	f.Add("firstName", "\x00")
	f.Add("lastName", strings.Repeat("x", 300))
	f.Fuzz(func(t *testing.T, field, value string) {
		l, err := ada().With(map[string]string{field: value})
		if err == nil && len(l.Validate()) > 0 {
			t.Fatalf("amendment %s=%q accepted into an invalid lead", field, value)
		}
	})
}

// FuzzInvoiceAmendment: likewise for invoices.
func FuzzInvoiceAmendment(f *testing.F) {
	f.Add("dueDate", "2027-01-31")
	f.Add("currency", "EUR")
	f.Add("customerEmail", "a@b")
	f.Add("lines", "[]")
	f.Fuzz(func(t *testing.T, field, value string) {
		inv, err := withAmendments(acmeInvoice(), map[string]string{field: value})
		if err == nil && len(validateInvoice(inv)) > 0 {
			t.Fatalf("amendment %s=%q accepted into an invalid invoice", field, value)
		}
	})
}

// FuzzDecodeLead feeds arbitrary bodies to the lead intake's decoding: it
// must never panic, every refusal must be a 4xx with a message, and every
// accepted lead must be valid.
func FuzzDecodeLead(f *testing.F) {
	good := `{"id":"lead-1","email":"ada@example.com","firstName":"Ada","lastName":"Lovelace","consent":true}`
	for _, seed := range []string{
		good, ``, `{`, `[]`, `null`, `"lead"`, `{"email":null}`, `{"consent":"yes"}`, `{"id":"a","x":1}`,
		good + good, "{\"firstName\":\"\xff\"}", `{"firstName":"` + strings.Repeat("a", 1000) + `"}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), `{"id":"a","email":"a@b.co","firstName":"A","lastName":"B","consent":true}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		id, input, err := decodeLead(body)
		if err != nil {
			var bad *spine.Refused
			if !errors.As(err, &bad) || bad.Status < 400 || bad.Status >= 500 || bad.Message == "" {
				t.Fatalf("refusal without a 4xx and a message: %v", err)
			}
			return
		}
		lead := input("fuzz").(LeadInput).Lead
		if errs := lead.Validate(); len(errs) > 0 || lead.ID != id {
			t.Fatalf("accepted an invalid lead: %v", errs)
		}
	})
}
