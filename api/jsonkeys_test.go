package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDuplicateKeysAreFoundAtAnyDepth(t *testing.T) {
	for _, c := range []struct {
		body, path, key string
		found           bool
	}{
		{body: `{"email":"a@x","email":"b@x"}`, path: "$", key: "email", found: true},
		{body: `{"lead":{"consent":false,"consent":true}}`, path: "$.lead", key: "consent", found: true},
		{body: `{"lines":[{"n":1},{"n":2,"n":3}]}`, path: "$.lines[1]", key: "n", found: true},
		{body: `{"a":{"b":1},"b":{"a":2},"c":[{"a":1},{"a":1}]}`},
		{body: `[1, "x", null, {"k": [true]}]`},
		{body: `{"broken": `}, // the decoder reports malformed JSON
	} {
		path, key, found := DuplicateKey([]byte(c.body))
		require.Equal(t, c.found, found, c.body)
		require.Equal(t, c.path, path, c.body)
		require.Equal(t, c.key, key, c.body)
	}
}
