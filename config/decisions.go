package config

// DecisionKeys configures verified decisions.
type DecisionKeys struct {
	// DecisionKeys maps operators to their ed25519 public keys (base64, from
	// `signals keygen`): "alice=<key>;bob=<key>". When set, a decision is
	// applied only if signed by its operator's key. Default: none (the
	// operator's name is asserted, not verified).
	DecisionKeys TeamMap `split_words:"true"`
}
