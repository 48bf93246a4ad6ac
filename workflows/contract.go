package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/signalbox-dev/signalbox/api"
	"slices"
	"sort"
	"strings"
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

// amended is the result of an amendment: v, or every field error, sorted by
// field, of the amendment itself (api.Spec.CheckAmendment) and of v's
// validation — a problem of a value set is named once, though both find it.
func amended[T any](v T, errs api.FieldErrors, validate func(T) api.FieldErrors) (T, error) {
	own := errs
	for _, e := range validate(v) {
		if !slices.Contains(own, e) {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return v, nil
	}
	slices.SortStableFunc(errs, func(a, b api.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return v, errs
}
