package api

import (
	"fmt"
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

// Add appends a problem.
func (e *FieldErrors) Add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}
