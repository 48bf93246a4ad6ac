package main

import (
	"errors"
	"net/http"
	"testing"

	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// FuzzSourceKey: a key from a header or a record is taken or refused with a
// 400, never a panic.
func FuzzSourceKey(f *testing.F) {
	for _, seed := range []string{"lead-1", "", " ", "a@b.co", "ä", "x:y", "../etc"} {
		f.Add(seed, "lead-1")
	}
	f.Fuzz(func(t *testing.T, header, own string) {
		key, err := sourceKey(header, own)
		if err != nil {
			var bad *spine.Refused
			if !errors.As(err, &bad) || bad.Status != http.StatusBadRequest {
				t.Fatalf("a bad key must be a 400: %v", err)
			}
			return
		}
		if key == "" {
			t.Fatal("accepted an empty key")
		}
	})
}
