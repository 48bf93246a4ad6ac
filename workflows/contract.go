package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FieldError is one problem with one input field.
type FieldError struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// FieldErrors lists every problem of an input at once.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Field + ": " + fe.Problem
	}
	return strings.Join(parts, "; ")
}

// Details presents the errors as exception details, one per field.
func (e FieldErrors) Details() map[string]string {
	out := make(map[string]string, len(e))
	for _, fe := range e {
		if prev, ok := out[fe.Field]; ok {
			out[fe.Field] = prev + "; " + fe.Problem
			continue
		}
		out[fe.Field] = fe.Problem
	}
	return out
}

// add appends a problem.
func (e *FieldErrors) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// hashFields is a stable digest of the named fields of values, missing ones
// counting as empty: it tells whether what a target holds is what was written.
func hashFields(values map[string]string, fields []string) string {
	sorted := append([]string(nil), fields...)
	sort.Strings(sorted)
	h := sha256.New()
	for _, f := range sorted {
		fmt.Fprintf(h, "%s=%q\n", f, values[f])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func checkText(errs *FieldErrors, field, v string, maxLen int, required bool) {
	switch {
	case strings.TrimSpace(v) == "":
		if required {
			errs.add(field, "is required")
		}
	case !utf8.ValidString(v):
		errs.add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(v) > maxLen:
		errs.add(field, "must be at most %d characters", maxLen)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		errs.add(field, "must not contain control characters")
	}
}

// checkEmail adds a problem unless v is a plain address like name@example.com.
func checkEmail(errs *FieldErrors, field, v string) {
	before := len(*errs)
	checkText(errs, field, v, 254, true)
	if len(*errs) > before {
		return
	}
	addr, err := mail.ParseAddress(v)
	domain := v[strings.LastIndex(v, "@")+1:]
	if err != nil || addr.Address != strings.TrimSpace(v) || !strings.Contains(domain, ".") {
		errs.add(field, "must be an address like name@example.com")
	}
}

// amended is the result of an amendment: v, or every field error, sorted by
// field, of the amendment itself and of v's validation.
func amended[T any](v T, errs FieldErrors, validate func(T) FieldErrors) (T, error) {
	errs = append(errs, validate(v)...)
	if len(errs) == 0 {
		return v, nil
	}
	slices.SortStableFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return v, errs
}
