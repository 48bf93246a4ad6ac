package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/signalbox-dev/signalbox/api"
	"net/mail"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

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

func checkText(errs *api.FieldErrors, field, v string, maxLen int, required bool) {
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

// checkEmail adds a problem unless v is a plain address like name@example.com.
func checkEmail(errs *api.FieldErrors, field, v string) {
	before := len(*errs)
	checkText(errs, field, v, 254, true)
	if len(*errs) > before {
		return
	}
	addr, err := mail.ParseAddress(v)
	domain := v[strings.LastIndex(v, "@")+1:]
	if err != nil || addr.Address != strings.TrimSpace(v) || !strings.Contains(domain, ".") {
		errs.Add(field, "must be an address like name@example.com")
	}
}

// amended is the result of an amendment: v, or every field error, sorted by
// field, of the amendment itself and of v's validation.
func amended[T any](v T, errs api.FieldErrors, validate func(T) api.FieldErrors) (T, error) {
	errs = append(errs, validate(v)...)
	if len(errs) == 0 {
		return v, nil
	}
	slices.SortStableFunc(errs, func(a, b api.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return v, errs
}
