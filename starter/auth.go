package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// authenticator decides which source, if any, sent a request: one holding a
// bearer token, or one that signed the request with its HMAC secret.
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

// signatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>": the HMAC,
// with the source's secret, of the string signedString builds.
const signatureHeader = "Signalbox-Signature"

// oldSignatureHeader carried an HMAC of the body alone, which a replay or
// another path could reuse; it is refused with directions to the new one.
const oldSignatureHeader = "X-Signature-256"

// signatureTolerance is how far a signature's timestamp may be from the
// intake's clock, either way.
const signatureTolerance = 5 * time.Minute

// maxSignatures bounds the v1 entries of one header (a sender rotating its
// secret sends one per secret).
const maxSignatures = 4

// credential is what proved a request's source.
type credential struct {
	source string
	// digest identifies a signed request (SHA-256 of its signature); empty
	// for a bearer token. The same digest is the same request sent again.
	digest   string
	signedAt time.Time
}

// signedString is what a sender signs: its timestamp, the method, the path
// (and query, if any) as sent, the Idempotency-Key header (empty if none)
// and the exact body, the first four each ending in a newline. None of the
// four can hold a newline, so no two requests sign the same string.
func signedString(t, method, target, idempotencyKey string, body []byte) []byte {
	var b []byte
	b = append(b, t+"\n"+method+"\n"+target+"\n"+idempotencyKey+"\n"...)
	return append(b, body...)
}

// requestTarget is the path and query of r as its sender wrote them.
func requestTarget(r *http.Request) string {
	target := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	return target
}

// refusedAuth is a 401 that says what to send.
func refusedAuth(msg string) *spine.Refused {
	return &spine.Refused{Status: http.StatusUnauthorized, Message: msg}
}

// howToAuthenticate ends every 401 for a request without valid credentials.
const howToAuthenticate = "send Authorization: Bearer <token>, or " + signatureHeader +
	": t=<unix time>,v1=<hex HMAC-SHA256 of the time, method, path, Idempotency-Key and body> (docs/intake.md); nothing was started"

// identify returns the credential that proves r's source, or a refusal
// (401) saying what is wrong. Tokens are compared as digests in constant
// time, so neither their content nor their length leaks through timing;
// every candidate is checked.
func (a *authenticator) identify(r *http.Request, body []byte, now time.Time) (credential, error) {
	if bearer, ok := bearerToken(r.Header.Get("Authorization")); ok {
		digest := sha256.Sum256([]byte(bearer))
		found := ""
		for source, want := range a.tokens {
			if subtle.ConstantTimeCompare(digest[:], want[:]) == 1 {
				found = source
			}
		}
		if found != "" {
			return credential{source: found}, nil
		}
	}
	header := r.Header.Get(signatureHeader)
	if header == "" {
		if r.Header.Get(oldSignatureHeader) != "" {
			return credential{}, refusedAuth(oldSignatureHeader + " (an HMAC of the body alone) is no longer accepted: sign the request with " +
				signatureHeader + ": t=<unix time>,v1=<hex HMAC-SHA256 of the time, method, path, Idempotency-Key and body> (docs/intake.md); nothing was started")
		}
		return credential{}, refusedAuth(howToAuthenticate)
	}
	return a.verify(r, header, body, now)
}

// bearerToken is the token of an Authorization header of the Bearer scheme,
// whose name is case-insensitive (RFC 9110, section 11.1): "Bearer",
// "bearer" and "BEARER" alike, followed by one or more spaces.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// verify checks a Signalbox-Signature header.
func (a *authenticator) verify(r *http.Request, header string, body []byte, now time.Time) (credential, error) {
	t, given, ok := parseSignature(header)
	if !ok {
		return credential{}, refusedAuth("the " + signatureHeader + " header is malformed: send t=<unix time>,v1=<64 hex digits> " +
			"(docs/intake.md); nothing was started")
	}
	keys := r.Header.Values("Idempotency-Key")
	if len(keys) > 1 {
		return credential{}, spine.Invalid("send at most one Idempotency-Key header; nothing was started", nil)
	}
	key := ""
	if len(keys) == 1 {
		key = keys[0]
	}
	signed := signedString(t, r.Method, requestTarget(r), key, body)
	found, match := "", []byte(nil)
	for source, secret := range a.secrets {
		mac := hmac.New(sha256.New, secret)
		mac.Write(signed)
		sum := mac.Sum(nil)
		for _, g := range given {
			if hmac.Equal(sum, g) {
				found, match = source, g
			}
		}
	}
	if found == "" {
		return credential{}, refusedAuth("the signature does not match this request: sign the header's t, the method, the path, " +
			"the Idempotency-Key header and the exact body, each of the first four followed by a newline, with the source's secret (docs/intake.md); nothing was started")
	}
	unix, _ := strconv.ParseInt(t, 10, 64)
	signedAt := time.Unix(unix, 0)
	if off := now.Sub(signedAt); off > signatureTolerance || off < -signatureTolerance {
		return credential{}, refusedAuth(fmt.Sprintf("the signature's time t=%s is %s from the intake's clock, more than the %s allowed: "+
			"sign each request as you send it (and check the sender's clock); nothing was started", t, off.Abs().Round(time.Second), signatureTolerance))
	}
	digest := sha256.Sum256(match)
	return credential{source: found, digest: hex.EncodeToString(digest[:]), signedAt: signedAt}, nil
}

// parseSignature reads "t=<unix seconds>,v1=<hex>[,v1=<hex>…]": one
// timestamp and up to maxSignatures signatures; other keys are ignored, as
// Stripe's scheme does, so a later scheme can be added beside v1.
func parseSignature(header string) (t string, sigs [][]byte, ok bool) {
	for _, pair := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
		switch k {
		case "t":
			if t != "" || v == "" || len(v) > 12 || strings.Trim(v, "0123456789") != "" {
				return "", nil, false
			}
			t = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size || len(sigs) == maxSignatures {
				return "", nil, false
			}
			sigs = append(sigs, sig)
		}
	}
	return t, sigs, t != "" && len(sigs) > 0
}
