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

// operatorHeader names, in the key file's PEM headers, whose key it is.
const operatorHeader = "Operator"

// keygen makes an operator's ed25519 key pair: the private key into a file
// only its owner can read, the public key printed for SIGNALBOX_DECISION_KEYS.
func (a *app) keygen(args []string) error {
	fs := flag.NewFlagSet("signals keygen", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	operator := fs.String("operator", "", "the operator the key is for (required; their name in SIGNALBOX_OPERATORS)")
	out := fs.String("out", "", "where to write the private key (default OPERATOR.key); never overwritten")
	if rest, err := parseArgs(fs, args); err != nil || len(rest) > 0 {
		return errUsage
	}
	if api.CheckActor(*operator) != nil {
		fmt.Fprintln(a.stderr, "usage: signals keygen --operator NAME [--out FILE]   (NAME: one word, as in SIGNALBOX_OPERATORS)")
		return errUsage
	}
	if *out == "" {
		*out = *operator + ".key"
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	block := &pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{operatorHeader: *operator}, Bytes: der}
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
	fmt.Fprintf(a.stdout, "wrote %s: %s's private key. Keep it private; point SIGNALBOX_OPERATOR_KEY_FILE at it.\n", *out, *operator)
	fmt.Fprintf(a.stdout, "Add this entry to the workers' SIGNALBOX_DECISION_KEYS (entries separated by ';'):\n%s=%s\n",
		*operator, base64.StdEncoding.EncodeToString(pub))
	return nil
}

// operatorKey is the key decisions are signed with, from
// SIGNALBOX_OPERATOR_KEY_FILE; nil when it is not set.
type operatorKey struct {
	operator string
	key      ed25519.PrivateKey
}

func loadOperatorKey(path string) (*operatorKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("SIGNALBOX_OPERATOR_KEY_FILE: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("SIGNALBOX_OPERATOR_KEY_FILE: %s holds no PEM private key; make one with `signals keygen`", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	key, ok := parsed.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("SIGNALBOX_OPERATOR_KEY_FILE: %s is not an ed25519 private key; make one with `signals keygen`", path)
	}
	return &operatorKey{operator: block.Headers[operatorHeader], key: key}, nil
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
