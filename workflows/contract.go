package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
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
