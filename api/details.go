package api

import (
	"fmt"
	"strconv"
	"strings"
)

// The labels of the values an exception's details name, side by side: the
// workflows write them with FormatValues, and the console reads them back
// with ParseValues to set them in columns.
const (
	ValueInPostgreSQL = "PostgreSQL"
	ValueInCRM        = "CRM"
	ValueInForm       = "form"
	ValueLastSynced   = "last synced"
)

// LabelledValue is one value of a detail and what holds it.
type LabelledValue struct{ Label, Value string }

// FormatValues writes labelled values as one detail: `CRM "a", form "b"`,
// each value Go-quoted, so that any value — blank, or holding quotes and
// commas — reads back as it was.
func FormatValues(values ...LabelledValue) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = fmt.Sprintf("%s %q", v.Label, v.Value)
	}
	return strings.Join(parts, ", ")
}

// ParseValues reads a detail FormatValues wrote, with an optional note after
// "; ": each label one of labels, at most once. ok is false for anything
// else, and the detail is then shown as it is.
func ParseValues(s string, labels ...string) (values map[string]string, note string, ok bool) {
	values = map[string]string{}
	rest := s
	for {
		label := ""
		for _, l := range labels {
			if strings.HasPrefix(rest, l+` "`) {
				label = l
				break
			}
		}
		if label == "" {
			return nil, "", false
		}
		if _, dup := values[label]; dup {
			return nil, "", false
		}
		rest = rest[len(label)+1:]
		quoted, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil, "", false
		}
		v, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, "", false
		}
		values[label] = v
		rest = rest[len(quoted):]
		switch {
		case rest == "":
			return values, "", true
		case strings.HasPrefix(rest, "; "):
			return values, strings.TrimSpace(rest[2:]), true
		case strings.HasPrefix(rest, ", "):
			rest = rest[2:]
		default:
			return nil, "", false
		}
	}
}
