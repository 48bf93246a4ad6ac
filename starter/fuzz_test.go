package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzDecodeLead feeds arbitrary bodies to the intake's decoding: it must
// never panic, every refusal must be a 4xx with a message, and every accepted
// lead must be valid.
func FuzzDecodeLead(f *testing.F) {
	for _, seed := range []string{
		goodLead, ``, `{`, `[]`, `null`, `"lead"`, `{"email":null}`, `{"consent":"yes"}`, `{"id":"a","x":1}`,
		goodLead + goodLead, "{\"firstName\":\"\xff\"}", `{"firstName":"` + strings.Repeat("a", 1000) + `"}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), `{"id":"a","email":"a@b.co","firstName":"A","lastName":"B","consent":true}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		lead, err := decodeLead(body)
		if err != nil {
			var bad *badInput
			if !errors.As(err, &bad) || bad.status < 400 || bad.status >= 500 || bad.problem.Error == "" {
				t.Fatalf("refusal without a 4xx and a message: %v", err)
			}
			return
		}
		if errs := lead.Validate(); len(errs) > 0 {
			t.Fatalf("accepted an invalid lead: %v", errs)
		}
		if _, err := sourceKey("", lead.ID); err != nil {
			var bad *badInput
			if !errors.As(err, &bad) || bad.status != http.StatusBadRequest {
				t.Fatalf("a bad key must be a 400: %v", err)
			}
		}
	})
}
