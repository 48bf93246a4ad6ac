package spine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/signalbox-dev/signalbox/api"
)

// Refused is a submission the intake refuses; nothing was started. Status
// is the HTTP status it is answered with, Fields the problem of each field.
type Refused struct {
	Status  int
	Message string
	Fields  api.FieldErrors
}

func (r *Refused) Error() string { return r.Message }

// Invalid refuses a malformed submission (400).
func Invalid(msg string, fields api.FieldErrors) *Refused {
	return &Refused{Status: http.StatusBadRequest, Message: msg, Fields: fields}
}

// DecodeRecord reads one JSON record of type T, refusing anything that is
// not exactly that — unknown fields, a key given twice, trailing values,
// invalid UTF-8 — and
// any record that breaks its contract (every field's problem at once).
func DecodeRecord[T interface{ Validate() api.FieldErrors }](body []byte, what string) (T, error) {
	var rec T
	if !utf8.Valid(body) {
		return rec, Invalid("the body is not valid UTF-8", nil)
	}
	if path, key, dup := api.DuplicateKey(body); dup {
		return rec, Invalid(api.DuplicateKeyError(path, key), nil)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, Invalid(fmt.Sprintf("the body is not a %s: %s", what, jsonProblem(err)), nil)
	}
	if dec.More() {
		return rec, Invalid("the body holds more than one JSON value", nil)
	}
	if errs := rec.Validate(); len(errs) > 0 {
		return rec, Invalid(fmt.Sprintf("the %s is invalid", what), errs)
	}
	return rec, nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return fmt.Sprintf("field %s must be a %s, not a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return fmt.Sprintf("expected a JSON object, not a JSON %s", typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}
