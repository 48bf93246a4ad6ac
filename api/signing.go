package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// SignatureWindow is how far a signed decision's time may be from the
// item's clock: an older signature is a replay, or sat too long to trust.
const SignatureWindow = 5 * time.Minute

// Identity says how a decision's actor is known.
const (
	// IdentityAsserted: the actor is the name the sender gave.
	IdentityAsserted = "asserted"
	// IdentityVerified: the decision carries a valid signature by the
	// actor's key (SIGNALBOX_DECISION_KEYS).
	IdentityVerified = "verified"
)

// IdentityVouchedBy is the identity of a decision signed by console signer
// for an actor it authenticated through the company's sign-on proxy.
func IdentityVouchedBy(signer string) string { return "verified by console " + signer }

// signedDecision is what a decision's signature covers: the item it is for,
// every field that changes what it does, and when it was signed. JSON with
// fixed field order and sorted map keys, so signer and verifier agree.
type signedDecision struct {
	Domain      string            `json:"domain"`
	Item        string            `json:"item"`
	Exception   string            `json:"exception"`
	Action      Action            `json:"action"`
	Actor       string            `json:"actor"`
	Reason      string            `json:"reason"`
	Choice      string            `json:"choice"`
	Set         map[string]string `json:"set"`
	ExternalRef string            `json:"externalRef"`
	SignedAt    string            `json:"signedAt"`
	// Signer is set only for a console's signature, so that an actor's
	// signature reads as it always did.
	Signer string `json:"signer,omitempty"`
}

// ExceptionRef names the exception a decision is for: its kind and the
// moment it was raised. A signature over it applies to that exception only,
// never to one raised later (another run, or the same item again).
func ExceptionRef(e *ExceptionState) string {
	if e == nil {
		return ""
	}
	return string(e.Kind) + "@" + e.Since.UTC().Format(time.RFC3339Nano)
}

// signedMessage is the exact bytes a decision's signature covers.
func signedMessage(workflowID, exception string, d Decision) []byte {
	b, err := json.Marshal(signedDecision{Domain: "signalbox decision v2", Item: workflowID, Exception: exception, Action: d.Action, Actor: d.Actor,
		Reason: d.Reason, Choice: d.Choice, Set: d.Set, ExternalRef: d.ExternalRef, SignedAt: d.SignedAt, Signer: d.Signer})
	if err != nil {
		panic(err) // strings and a map of strings always marshal
	}
	return b
}

// SignDecision signs d for the exception (ExceptionRef) the item
// workflowID waits on, at now, with the operator's key.
func SignDecision(key ed25519.PrivateKey, workflowID, exception string, d Decision, now time.Time) Decision {
	d.SignedAt = now.UTC().Format(time.RFC3339)
	d.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedMessage(workflowID, exception, d)))
	return d
}

// VerifyDecision checks that d is signed by key for the exception the item
// workflowID waits on, within SignatureWindow of now, and that its
// signature is written in the one canonical base64 form (so a used
// signature cannot come back spelled differently). Its error says what the
// sender should do.
func VerifyDecision(key ed25519.PublicKey, workflowID, exception string, d Decision, now time.Time) error {
	if d.Signature == "" || d.SignedAt == "" {
		return fmt.Errorf("decisions must be signed: sign with `signals` and SIGNALBOX_OPERATOR_KEY_FILE (a key from `signals keygen`), " +
			"or decide in an operator console the workers trust (SIGNALBOX_CONSOLE_KEYS), signed in through the company's sign-on")
	}
	at, err := time.Parse(time.RFC3339, d.SignedAt)
	if err != nil {
		return fmt.Errorf("signedAt %q is not an RFC 3339 time; sign the decision again", d.SignedAt)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(d.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || base64.StdEncoding.EncodeToString(sig) != d.Signature {
		return fmt.Errorf("the signature is not a base64 ed25519 signature in canonical form; sign the decision again")
	}
	if !ed25519.Verify(key, signedMessage(workflowID, exception, d), sig) {
		if d.Signer != "" {
			return fmt.Errorf("the signature does not match console %s's key (SIGNALBOX_CONSOLE_KEYS) for this item, the exception it waits on "+
				"and this decision; decide again from the item's page", d.Signer)
		}
		return fmt.Errorf("the signature does not match %s's key for this item, the exception it waits on and this decision; "+
			"sign it with %s's key from `signals keygen`, for the exception the item waits on now", d.Actor, d.Actor)
	}
	if age := now.Sub(at); age > SignatureWindow || age < -SignatureWindow {
		return fmt.Errorf("the decision was signed at %s, more than %s from the item's clock (%s): sign it again (and check the clock)",
			d.SignedAt, SignatureWindow, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// ParsePublicKey reads an ed25519 public key in base64, as `signals keygen`
// prints it.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("not a base64 ed25519 public key (%d bytes), as `signals keygen` prints", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
