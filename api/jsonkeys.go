package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// DuplicateKey finds a key that appears twice in one JSON object of data
// (at any depth), which encoding/json would silently resolve to the last
// value: a sender and signalbox would then disagree on what was sent. It
// returns where: the object's path ("$", "$.lead", "$.lines[2]") and the
// key. Malformed JSON is left to the decoder: found is false.
func DuplicateKey(data []byte) (path, key string, found bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	path, key, found, _ = duplicateIn(dec, "$")
	return path, key, found
}

// duplicateIn reads one JSON value from dec, at path.
func duplicateIn(dec *json.Decoder, path string) (string, string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", "", false, err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return "", "", false, err
			}
			k, _ := t.(string)
			if seen[k] {
				return path, k, true, nil
			}
			seen[k] = true
			if p, dk, found, err := duplicateIn(dec, path+"."+k); found || err != nil {
				return p, dk, found, err
			}
		}
		_, err := dec.Token() // }
		return "", "", false, err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if p, dk, found, err := duplicateIn(dec, path+"["+strconv.Itoa(i)+"]"); found || err != nil {
				return p, dk, found, err
			}
		}
		_, err := dec.Token() // ]
		return "", "", false, err
	}
	return "", "", false, nil
}

// DuplicateKeyError says which key a body holds twice.
func DuplicateKeyError(path, key string) string {
	return fmt.Sprintf("the key %q appears twice in the object at %s: send each field once", key, path)
}
