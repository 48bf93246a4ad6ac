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
}

// PublicKeys returns the operators' keys, nil when none is set.
func (d DecisionKeys) PublicKeys() (map[string]ed25519.PublicKey, error) {
	if len(d.DecisionKeys) == 0 {
		return nil, nil
	}
	keys := map[string]ed25519.PublicKey{}
	for _, operator := range d.DecisionKeys.Teams() {
		k, err := api.ParsePublicKey(d.DecisionKeys[operator])
		if err != nil {
			return nil, fmt.Errorf("config: SIGNALBOX_DECISION_KEYS: the key of %q is %v", operator, err)
		}
		keys[operator] = k
	}
	return keys, nil
}

// Validate checks every key, and that a value set holds at least one: a
// stray ";" must not turn verification off unseen.
func (d DecisionKeys) Validate() error {
	if len(d.DecisionKeys) == 0 && strings.TrimSpace(os.Getenv("SIGNALBOX_DECISION_KEYS")) != "" {
		return fmt.Errorf("config: SIGNALBOX_DECISION_KEYS is set but names no key: give operator=<base64 key> entries, " +
			"or unset it to take decisions' actors as asserted")
	}
	_, err := d.PublicKeys()
	return err
}
