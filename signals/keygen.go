package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"

	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
)

// operatorHeader and consoleHeader name, in the key file's PEM headers,
// whose key it is: an operator's, or an operator console's.
const (
	operatorHeader = "Operator"
	consoleHeader  = "Console"
)

const keygenUsage = "usage: signals keygen (--operator NAME | --console NAME) [--out FILE]\n" +
	"  --operator NAME  an operator's key (NAME: one word, as in SIGNALBOX_OPERATORS), for SIGNALBOX_OPERATOR_KEY_FILE\n" +
	"  --console NAME   an operator console's key (signals serve), for SIGNALBOX_CONSOLE_KEY_FILE"

// keygen makes an ed25519 key pair — an operator's, or a console's that
// signs for the operators its sign-on proxy authenticated: the private key
// into a file only its owner can read, the public key printed for the
// workers' SIGNALBOX_DECISION_KEYS or SIGNALBOX_CONSOLE_KEYS.
func (a *app) keygen(args []string) error {
	fs := flag.NewFlagSet("signals keygen", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	operator := fs.String("operator", "", "the operator the key is for (their name in SIGNALBOX_OPERATORS)")
	console := fs.String("console", "", "the operator console the key is for (a name of your choosing)")
	out := fs.String("out", "", "where to write the private key (default NAME.key); never overwritten")
	if rest, err := parseArgs(fs, args); err != nil || len(rest) > 0 {
		return errUsage
	}
	header, name, variable, fileVariable := operatorHeader, *operator, "SIGNALBOX_DECISION_KEYS", "SIGNALBOX_OPERATOR_KEY_FILE"
	if *console != "" {
		header, name, variable, fileVariable = consoleHeader, *console, "SIGNALBOX_CONSOLE_KEYS", "SIGNALBOX_CONSOLE_KEY_FILE"
	}
	if (*operator == "") == (*console == "") || api.CheckActor(name) != nil {
		fmt.Fprintln(a.stderr, keygenUsage)
		return errUsage
	}
	if *out == "" {
		*out = name + ".key"
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	block := &pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{header: name}, Bytes: der}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: keygen never overwrites a key; choose another --out", *out)
	}
	if err != nil {
		return err
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "wrote %s: %s's private key. Keep it private; point %s at it.\n", *out, name, fileVariable)
	fmt.Fprintf(a.stdout, "Add this entry to the workers' %s (entries separated by ';'):\n%s=%s\n",
		variable, name, base64.StdEncoding.EncodeToString(pub))
	return nil
}

// operatorKey is the key decisions are signed with: an operator's, from
// SIGNALBOX_OPERATOR_KEY_FILE, or a console's, from
// SIGNALBOX_CONSOLE_KEY_FILE; nil when it is not set.
type operatorKey struct {
	// operator or console is whose key it is (its file's header).
	operator, console string
	key               ed25519.PrivateKey
}

func loadOperatorKey(path string) (*operatorKey, error) {
	k, err := loadKey("SIGNALBOX_OPERATOR_KEY_FILE", path)
	if k != nil && k.console != "" {
		return nil, fmt.Errorf("SIGNALBOX_OPERATOR_KEY_FILE: %s is operator console %s's key: it signs in `signals serve` (SIGNALBOX_CONSOLE_KEY_FILE); "+
			"make your own with `signals keygen --operator NAME`", path, k.console)
	}
	return k, err
}

func loadConsoleKey(path string) (*operatorKey, error) {
	k, err := loadKey("SIGNALBOX_CONSOLE_KEY_FILE", path)
	if k != nil && k.console == "" {
		return nil, fmt.Errorf("SIGNALBOX_CONSOLE_KEY_FILE: %s is not a console's key; make one with `signals keygen --console NAME`", path)
	}
	return k, err
}

func loadKey(variable, path string) (*operatorKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", variable, err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: %s holds no PEM private key; make one with `signals keygen`", variable, path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	key, ok := parsed.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("%s: %s is not an ed25519 private key; make one with `signals keygen`", variable, path)
	}
	return &operatorKey{operator: block.Headers[operatorHeader], console: block.Headers[consoleHeader], key: key}, nil
}

// sign signs d for the item id and the exception it waits on now (read
// through its status query), if an operator key is set. An item that waits
// on nothing is sent the decision unsigned: it refuses it, saying why.
func (a *app) sign(ctx context.Context, c client.Client, id string, d api.Decision) (api.Decision, error) {
	if a.opKey == nil {
		return d, nil
	}
	state, _, err := api.ReadItem(ctx, c, id)
	if errors.Is(err, api.ErrNoItem) {
		return d, nil // the item answers NotFound, which sendDecision explains
	}
	if err != nil {
		return d, fmt.Errorf("read the exception %s waits on, to sign the decision: %w", id, err)
	}
	return api.SignDecision(a.opKey.key, id, api.ExceptionRef(state.Exception), d, a.now()), nil
}
