package tests

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
)

// signalsWith runs the signals CLI with env added to the stack's.
func (s *env) signalsWith(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runSignals(t, append(slices.Clone(s.Env), env...), args...)
}

// keygen makes an operator's key pair with `signals keygen` and returns the
// key file and the SIGNALBOX_DECISION_KEYS entry it printed.
func keygen(t *testing.T, operator string) (keyFile, entry string) {
	t.Helper()
	return keygenFor(t, "--operator", operator)
}

// keygenFor is keygen for an operator (--operator) or a console (--console).
func keygenFor(t *testing.T, flag, operator string) (keyFile, entry string) {
	t.Helper()
	keyFile = filepath.Join(t.TempDir(), operator+".key")
	out, err := exec.Command(filepath.Join(binDir, "signals"), "keygen", flag, operator, "--out", keyFile).CombinedOutput()
	require.NoError(t, err, string(out))
	entry = regexp.MustCompile(`(?m)^` + operator + `=\S+$`).FindString(string(out))
	require.NotEmpty(t, entry, "keygen prints the public key entry: %s", out)

	out, err = exec.Command(filepath.Join(binDir, "signals"), "keygen", flag, operator, "--out", keyFile).CombinedOutput()
	require.Error(t, err, "keygen never overwrites a key")
	require.Contains(t, string(out), "exists")
	return keyFile, entry
}

// With SIGNALBOX_DECISION_KEYS set, signals signs with the operator's key
// and the item applies only signed decisions; the audit trail and signals
// show say the actor was verified.
func TestDecisionsSignedByTheOperatorsKey(t *testing.T) {
	t.Parallel()
	bobKey, bobEntry := keygen(t, "bob")
	aliceKey, _ := keygen(t, "alice") // alice has a key, but the workers do not know it
	consoleKey, consoleEntry := keygenFor(t, "--console", "console-1")
	s := startStack(t, "", "SIGNALBOX_DECISION_KEYS="+bobEntry, "SIGNALBOX_CONSOLE_KEYS="+consoleEntry)

	key := uniqueKey(t, "e2e-signed")
	l := lead(key)
	l.Consent = false
	code, body := s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := api.ItemID(api.IntegrationLeadToCRM, key)
	waiting := s.waitStatus(t, id, api.StatusBlocked)

	_, stderr, code := s.signals(t, "", "approve", id, "--as", "bob", "--reason", "consent form #3")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "decisions must be signed", "an unsigned decision is refused")

	_, stderr, code = s.signalsWith(t, []string{"SIGNALBOX_OPERATOR_KEY_FILE=" + bobKey}, "approve", id, "--as", "alice", "--reason", "consent form #3")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "the key in SIGNALBOX_OPERATOR_KEY_FILE is bob's, but you decide as alice")

	_, stderr, code = s.signalsWith(t, []string{"SIGNALBOX_OPERATOR_KEY_FILE=" + aliceKey}, "approve", id, "--as", "alice", "--reason", "consent form #3")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `"alice" has no key in SIGNALBOX_DECISION_KEYS`)

	// A decision bob signed for another item, sent to this one as the
	// Temporal UI would (a signal), is refused and audited.
	forged := api.SignDecision(readKey(t, bobKey), "lead-to-crm:another-lead", api.ExceptionRef(waiting.Exception), api.Decision{Action: api.ActionApprove, Actor: "bob", Reason: "consent form #3"}, time.Now())
	require.NoError(t, s.Client.SignalWorkflow(context.Background(), id, "", api.SignalDecision, forged))
	require.Eventually(t, func() bool {
		show, _, _ := s.signals(t, "", "show", id)
		return strings.Contains(show, "the signature does not match bob's key")
	}, waitFor, 200*time.Millisecond, "the forged decision is refused, with the reason in the audit trail")
	require.Equal(t, api.StatusBlocked, s.waitStatus(t, id, api.StatusBlocked).Status)

	out, stderr, code := s.signalsWith(t, []string{"SIGNALBOX_OPERATOR_KEY_FILE=" + bobKey}, "approve", id, "--as", "bob", "--reason", "consent form #3")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "approve applied")
	require.Equal(t, api.StatusSynced, s.waitResult(t, id).Status)

	show, _, code := s.signals(t, "", "show", id)
	require.Equal(t, 0, code)
	require.Contains(t, show, "approve by bob (verified)", "recent decisions say the actor was verified")
	require.Regexp(t, `bob \(verified\)\s+approve\s+Blocked → Running`, show, "so does the audit trail")
	require.Equal(t, 3, strings.Count(show, "decision_refused"), "each refused decision is audited: %s", show)

	// The operator console signs for alice when the sign-on proxy (here the
	// test, from a trusted address) vouched for her; a token sign-in's
	// decision goes unsigned and is refused. A console key is no operator's.
	_, stderr, code = s.signalsWith(t, []string{"SIGNALBOX_OPERATOR_KEY_FILE=" + consoleKey}, "approve", id, "--as", "alice", "--reason", "x")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "is operator console console-1's key")
	key = uniqueKey(t, "e2e-signed-console")
	l = lead(key)
	l.Consent = false
	code, body = s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id = api.ItemID(api.IntegrationLeadToCRM, key)
	s.waitStatus(t, id, api.StatusBlocked)
	con := startConsole(t, s, "SIGNALBOX_CONSOLE_TRUSTED_PROXIES=127.0.0.1", "SIGNALBOX_CONSOLE_KEY_FILE="+consoleKey)

	withToken := con.signIn(t, consoleAliceToken)
	_, page, _ := withToken.get("/items/" + id)
	form := url.Values{"csrf": {hiddenField(t, page, "csrf")}, "exception": {hiddenField(t, page, "exception")}, "action": {"approve"}, "reason": {"consent on the phone"}}
	code, page, _ = withToken.post("/items/"+id+"/decide", form)
	require.Equal(t, http.StatusConflict, code, page)
	require.Contains(t, page, "decisions must be signed", "a token sign-in's decision is not signed")

	proxied := con.client(t)
	proxied.header = map[string]string{"X-Forwarded-Email": "alice@example.com"}
	code, page, _ = proxied.get("/items/" + id)
	require.Equal(t, http.StatusOK, code, page)
	form.Set("csrf", hiddenField(t, page, "csrf"))
	code, page, _ = proxied.post("/items/"+id+"/decide", form)
	require.Equal(t, http.StatusSeeOther, code, page)
	require.Equal(t, api.StatusSynced, s.waitResult(t, id).Status)
	show, _, _ = s.signals(t, "", "show", id)
	require.Contains(t, show, "approve by alice (verified by console console-1)", "the console vouched for alice")
}

// readKey reads a private key file `signals keygen` wrote.
func readKey(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block)
	require.Equal(t, "bob", block.Headers["Operator"])
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	return k.(ed25519.PrivateKey)
}
