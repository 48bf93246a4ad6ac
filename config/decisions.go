package config

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"strings"

	"github.com/signalbox-dev/signalbox/api"
)

// DecisionKeys configures verified decisions.
type DecisionKeys struct {
	// DecisionKeys maps operators to their ed25519 public keys (base64, as
	// `signals keygen` prints them): "alice=<key>;bob=<key>". When set, a
	// decision is applied only if signed by its operator's key. Default:
	// none (the operator's name is asserted, not verified).
	DecisionKeys TeamMap `split_words:"true"`
	// ConsoleKeys maps operator consoles (`signals serve`) to their ed25519
	// public keys: "console=<key>". A decision signed by a console's key
	// (SIGNALBOX_CONSOLE_KEY_FILE) is applied as its actor's: the console
	// vouches that the company's sign-on proxy authenticated them. Setting
	// either this or DecisionKeys makes unsigned decisions refused.
	ConsoleKeys TeamMap `split_words:"true"`
}

// SignedOnly says decisions must be signed.
func (d DecisionKeys) SignedOnly() bool { return len(d.DecisionKeys) > 0 || len(d.ConsoleKeys) > 0 }

// PublicKeys returns the operators' keys, nil when none is set.
func (d DecisionKeys) PublicKeys() (map[string]ed25519.PublicKey, error) {
	return publicKeys("SIGNALBOX_DECISION_KEYS", d.DecisionKeys)
}

// ConsolePublicKeys returns the consoles' keys, nil when none is set.
func (d DecisionKeys) ConsolePublicKeys() (map[string]ed25519.PublicKey, error) {
	return publicKeys("SIGNALBOX_CONSOLE_KEYS", d.ConsoleKeys)
}

func publicKeys(variable string, m TeamMap) (map[string]ed25519.PublicKey, error) {
	if len(m) == 0 {
		return nil, nil
	}
	keys := map[string]ed25519.PublicKey{}
	for _, name := range m.Teams() {
		k, err := api.ParsePublicKey(m[name])
		if err != nil {
			return nil, fmt.Errorf("config: %s: the key of %q is %v", variable, name, err)
		}
		keys[name] = k
	}
	return keys, nil
}

// Validate checks every key, and that a value set holds at least one: a
// stray ";" must not turn verification off unseen.
func (d DecisionKeys) Validate() error {
	for _, v := range []struct {
		variable string
		m        TeamMap
	}{{"SIGNALBOX_DECISION_KEYS", d.DecisionKeys}, {"SIGNALBOX_CONSOLE_KEYS", d.ConsoleKeys}} {
		if variable, m := v.variable, v.m; len(m) == 0 && strings.TrimSpace(os.Getenv(variable)) != "" {
			return fmt.Errorf("config: %s is set but names no key: give name=<base64 key> entries, "+
				"or unset it to take decisions' actors as asserted", variable)
		}
	}
	if _, err := d.PublicKeys(); err != nil {
		return err
	}
	_, err := d.ConsolePublicKeys()
	return err
}
