package api

import (
	"maps"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the checks of the values an operator may set with amend,
// field by field. They are pure — they need no record, no state — so the
// workflows (which check every amendment with CheckAmendment before they
// apply it to their record) and the console (which checks its amend form
// with CheckAmendment before it sends anything) judge a value alike.

// CheckAmendment returns every problem of set as an amendment of an item of
// the integration that can be told from the values alone, sorted by field: a
// field operators may not amend, a required field left blank, a value its
// field cannot hold. An amendment it accepts may still be refused by the
// item, for what depends on the record: the other fields of a record that
// breaks its contract, the fields a Conflict is about.
func (s Spec) CheckAmendment(set map[string]string) FieldErrors {
	var errs FieldErrors
	amendable := s.Amendable()
	for _, field := range slices.Sorted(maps.Keys(set)) {
		v := set[field]
		if !slices.Contains(amendable, field) {
			errs.Add(field, "cannot be amended (amendable: %s%s)", strings.Join(amendable, ", "), s.AmendHint)
			continue
		}
		if f, _ := s.fieldNamed(field); f.Required && strings.TrimSpace(v) == "" {
			errs.Add(field, "is required")
		} else if s.CheckValue != nil {
			s.CheckValue(&errs, field, v)
		}
	}
	return errs
}

// fieldNamed is the spec's field called name.
func (s Spec) fieldNamed(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// CheckText adds a problem of a text field: blank when required, not UTF-8,
// longer than maxLen characters, or holding control characters.
func CheckText(errs *FieldErrors, field, v string, maxLen int, required bool) {
	switch {
	case strings.TrimSpace(v) == "":
		if required {
			errs.Add(field, "is required")
		}
	case !utf8.ValidString(v):
		errs.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(v) > maxLen:
		errs.Add(field, "must be at most %d characters", maxLen)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		errs.Add(field, "must not contain control characters")
	}
}

// CheckEmail adds a problem unless v is a plain address like name@example.com.
func CheckEmail(errs *FieldErrors, field, v string) {
	before := len(*errs)
	CheckText(errs, field, v, 254, true)
	if len(*errs) > before {
		return
	}
	addr, err := mail.ParseAddress(v)
	domain := v[strings.LastIndex(v, "@")+1:]
	if err != nil || addr.Address != strings.TrimSpace(v) || !strings.Contains(domain, ".") {
		errs.Add(field, "must be an address like name@example.com")
	}
}
