package workflows

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
)

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

// With decision keys configured, only a decision signed by its actor, for
// this item, recently, and not sent before is applied; every other one is
// refused and audited, and the applied one is recorded as verified.
func TestOnlySignedDecisionsApplyWhereKeysAreSet(t *testing.T) {
	t.Parallel()
	const id = "lead-to-crm:lead-signed"
	f := newFixture(t, id)
	fake := &crmFake{}
	fake.install(f)
	bobPub, bobKey := newKey(t)
	_, malloryKey := newKey(t)
	f.keys = map[string]ed25519.PublicKey{"bob": bobPub} // alice, an operator, has no key
	l := ada()
	l.Consent = false

	approve := api.Decision{Action: api.ActionApprove, Actor: "bob", Reason: "consent form #7"}
	sign := func(key ed25519.PrivateKey, item string, d api.Decision, at time.Time) api.Decision {
		return api.SignDecision(key, item, api.ExceptionRef(f.state().Exception), d, at)
	}
	f.at(time.Hour, func() {
		f.decide("unsigned", approve)
		f.decide("no key", sign(bobKey, id, api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "consent"}, f.env.Now()))
		f.decide("forged", sign(malloryKey, id, approve, f.env.Now()))
		f.decide("other item", sign(bobKey, "lead-to-crm:another", approve, f.env.Now()))
		f.decide("stale", sign(bobKey, id, approve, f.env.Now().Add(-6*time.Minute)))
		tampered := sign(bobKey, id, approve, f.env.Now())
		tampered.Action = api.ActionReject
		f.decide("tampered", tampered)
		// Signed for a ConsentMissing raised at another moment: another run
		// of this item, or the same item waiting again.
		earlier := *f.state().Exception
		earlier.Since = earlier.Since.Add(-time.Hour)
		f.decide("other exception", api.SignDecision(bobKey, id, api.ExceptionRef(&earlier), approve, f.env.Now()))
	})
	f.at(2*time.Hour, func() {
		signed := sign(bobKey, id, approve, f.env.Now())
		f.decide("signed", signed)
		f.decide("replayed", signed) // the same signed decision, sent again under another update ID
		respelled := signed
		respelled.Signature += "\n" // decodes to the same bytes in lenient base64
		f.decide("respelled", respelled)
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	for name, want := range map[string]string{
		"unsigned":        "decisions must be signed",
		"no key":          `"alice" has no key in SIGNALBOX_DECISION_KEYS`,
		"forged":          "the signature does not match bob's key",
		"other item":      "the signature does not match bob's key",
		"stale":           "more than 5m0s from the item's clock",
		"tampered":        "the signature does not match bob's key",
		"replayed":        "was sent to " + id + " before",
		"other exception": "the signature does not match bob's key",
		"respelled":       "not a base64 ed25519 signature in canonical form",
	} {
		require.ErrorContains(t, f.updates[name].err, want, name)
	}
	require.NoError(t, f.updates["signed"].err)
	refused := 0
	for _, a := range f.actions() {
		if strings.HasPrefix(a, "decision_refused ") {
			refused++
		}
	}
	require.Equal(t, 9, refused, "every refusal is audited: %v", f.actions())
	var applied map[string]any
	for _, e := range f.audit {
		if e.Action == string(api.ActionApprove) {
			applied = e.Details
		}
	}
	require.Equal(t, api.IdentityVerified, applied["identity"], "the audit trail says the actor was verified")
	var decided []api.DecisionRecord
	for _, d := range f.state().Decisions {
		if d.Applied {
			decided = append(decided, d)
		}
	}
	require.Len(t, decided, 1)
	require.Equal(t, api.IdentityVerified, decided[0].Identity)
}

// Without keys a decision's actor is asserted, as before, and says so.
func TestWithoutKeysTheActorIsAsserted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "lead-to-crm:lead-asserted")
	fake := &crmFake{}
	fake.install(f)
	l := ada()
	l.Consent = false
	f.at(time.Hour, func() {
		f.decide("ok", api.Decision{Action: api.ActionApprove, Actor: "bob", Reason: "consent form #9"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))
	require.Equal(t, api.StatusSynced, f.result().Status)
	require.Equal(t, api.IdentityAsserted, f.state().Decisions[0].Identity)
}

// A console the workers trust signs for the operator its sign-on proxy
// authenticated: the decision applies as that operator's, recorded as
// vouched for by the console. Another console's signature, a console's
// signature over another actor, or a decision naming an untrusted console
// is refused.
func TestATrustedConsoleSignsForItsOperator(t *testing.T) {
	t.Parallel()
	const id = "lead-to-crm:lead-console"
	f := newFixture(t, id)
	fake := &crmFake{}
	fake.install(f)
	consolePub, consoleKey := newKey(t)
	_, otherKey := newKey(t)
	f.consoleKeys = map[string]ed25519.PublicKey{"console-1": consolePub} // no operator has a key of their own
	l := ada()
	l.Consent = false

	approve := api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "consent form #8", Signer: "console-1"}
	sign := func(key ed25519.PrivateKey, d api.Decision) api.Decision {
		return api.SignDecision(key, id, api.ExceptionRef(f.state().Exception), d, f.env.Now())
	}
	f.at(time.Hour, func() {
		unsigned := approve
		unsigned.Signer = ""
		f.decide("unsigned", unsigned)
		f.decide("another console's key", sign(otherKey, approve))
		untrusted := approve
		untrusted.Signer = "console-2"
		f.decide("untrusted console", sign(otherKey, untrusted))
		swapped := sign(consoleKey, approve)
		swapped.Actor = "bob"
		f.decide("actor swapped", swapped)
		f.decide("not an operator", sign(consoleKey, api.Decision{Action: api.ActionApprove, Actor: "mallory", Reason: "x", Signer: "console-1"}))
	})
	f.at(2*time.Hour, func() { f.decide("signed", sign(consoleKey, approve)) })
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	for name, want := range map[string]string{
		"unsigned":              "decisions must be signed",
		"another console's key": "the signature does not match console console-1's key",
		"untrusted console":     `"console-2" is not an operator console the workers trust`,
		"actor swapped":         "the signature does not match console console-1's key",
		"not an operator":       `"mallory" may not decide`,
	} {
		require.ErrorContains(t, f.updates[name].err, want, name)
	}
	require.NoError(t, f.updates["signed"].err)
	var decided []api.DecisionRecord
	for _, d := range f.state().Decisions {
		if d.Applied {
			decided = append(decided, d)
		}
	}
	require.Len(t, decided, 1)
	require.Equal(t, "alice", decided[0].Actor)
	require.Equal(t, "verified by console console-1", decided[0].Identity)
}
