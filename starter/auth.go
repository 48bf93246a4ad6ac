package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// authenticator decides which source, if any, sent a request: one holding a
// bearer token, or one that signed the body with its HMAC secret.
type authenticator struct {
	tokens  map[string][32]byte // source → SHA-256 of its token
	secrets map[string][]byte   // source → HMAC secret
}

func newAuthenticator(tokens, secrets map[string]string) *authenticator {
	a := &authenticator{tokens: map[string][32]byte{}, secrets: map[string][]byte{}}
	for source, token := range tokens {
		a.tokens[source] = sha256.Sum256([]byte(token))
	}
	for source, secret := range secrets {
		a.secrets[source] = []byte(secret)
	}
	return a
}

// signatureHeader carries "sha256=<hex HMAC-SHA256 of the body>".
const signatureHeader = "X-Signature-256"

// source returns the authenticated source of a request with this body. Tokens
// are compared as digests in constant time, so neither their content nor their
// length leaks through timing; every candidate is checked.
func (a *authenticator) source(r *http.Request, body []byte) (string, bool) {
	found := ""
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		digest := sha256.Sum256([]byte(strings.TrimSpace(bearer)))
		for source, want := range a.tokens {
			if subtle.ConstantTimeCompare(digest[:], want[:]) == 1 {
				found = source
			}
		}
	}
	if sig, ok := strings.CutPrefix(r.Header.Get(signatureHeader), "sha256="); ok && found == "" {
		given, err := hex.DecodeString(strings.TrimSpace(sig))
		if err == nil {
			for source, secret := range a.secrets {
				mac := hmac.New(sha256.New, secret)
				mac.Write(body)
				if hmac.Equal(mac.Sum(nil), given) {
					found = source
				}
			}
		}
	}
	return found, found != ""
}
