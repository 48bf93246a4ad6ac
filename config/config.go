// Package config reads each signalbox program's settings from the environment.
//
// Every program has one struct, read with Load under the prefix SIGNALBOX_. The
// connection settings that other Temporal and PostgreSQL tools share are also read
// under their usual names (TEMPORAL_ADDRESS, DATABASE_URL, ...). A missing or
// malformed value is reported as one line that names the variable and what to do.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// Prefix is the prefix of every signalbox-specific environment variable.
const Prefix = "SIGNALBOX"

// Validator is implemented by config structs that check more than types.
type Validator interface {
	Validate() error
}

// defaulter is implemented by config structs with defaults that struct tags
// cannot express, such as Worker's limits, which differ by target.
type defaulter interface {
	setDefaults()
}

// Load fills spec from the environment and validates it. The error, if any, is a
// single line naming the variable at fault.
func Load(spec Validator) error {
	if err := readSecretFiles(); err != nil {
		return err
	}
	if d, ok := spec.(defaulter); ok {
		d.setDefaults()
	}
	if err := envconfig.Process(Prefix, spec); err != nil {
		return explain(err)
	}
	return spec.Validate()
}

func explain(err error) error {
	var perr *envconfig.ParseError
	if errors.As(err, &perr) {
		return fmt.Errorf("config: %s is not a valid %s (%v)", shown(perr.KeyName, perr.Value), describeType(perr.TypeName), rootCause(perr.Err))
	}
	msg := err.Error()
	if key, ok := strings.CutPrefix(msg, "required key "); ok {
		key = strings.TrimSuffix(key, " missing value")
		return fmt.Errorf("config: %s is required but not set", key)
	}
	return fmt.Errorf("config: %w", err)
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func describeType(goType string) string {
	switch goType {
	case "time.Duration":
		return "duration (e.g. 30s, 5m, 2h)"
	case "bool":
		return "boolean (true or false)"
	case "int", "int32", "int64":
		return "whole number"
	case "float64":
		return "number"
	default:
		return goType
	}
}

// Invalid reports a value that parsed but makes no sense.
func Invalid(variable, value, problem string) error {
	return fmt.Errorf("config: %s %s", shown(variable, value), problem)
}

// secretSuffixes mark variables whose values must never be printed.
var secretSuffixes = []string{"_TOKEN", "_TOKENS", "_KEY", "_SECRET", "_SECRETS", "_WEBHOOKS", "DATABASE_URL"}

// shown is how a variable and its value appear in an error: NAME="value", or
// just NAME for a secret (a token, a key, a webhook URL, a password in a URL).
func shown(variable, value string) string {
	for _, suffix := range secretSuffixes {
		if strings.HasSuffix(variable, suffix) {
			return variable + " (value hidden)"
		}
	}
	return fmt.Sprintf("%s=%q", variable, value)
}

func checkHostPort(variable, value string) error {
	_, port, err := net.SplitHostPort(value)
	if err != nil || port == "" {
		return Invalid(variable, value, "must be host:port, e.g. 127.0.0.1:8080")
	}
	return nil
}

func checkURL(variable, value string, schemes ...string) error {
	u, err := url.Parse(value)
	if err != nil || u.Host == "" {
		return Invalid(variable, value, fmt.Sprintf("must be an absolute URL with a host (%s)", strings.Join(schemes, " or ")))
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return Invalid(variable, value, fmt.Sprintf("must use scheme %s", strings.Join(schemes, " or ")))
}

func checkPositive(variable string, value float64) error {
	if value <= 0 {
		return Invalid(variable, fmt.Sprint(value), "must be greater than zero")
	}
	return nil
}

// SecretVariables may each be given as a file's content instead, with
// NAME_FILE=/path (container and Kubernetes secrets mounted as files).
var SecretVariables = []string{"SIGNALBOX_CRM_TOKEN", "SIGNALBOX_BILLING_API_KEY", "SIGNALBOX_CHAT_WEBHOOKS", "SIGNALBOX_INTAKE_TOKENS",
	"SIGNALBOX_INTAKE_HMAC_SECRETS", "SIGNALBOX_STRIPE_WEBHOOK_SECRET", "SIGNALBOX_SANDBOX_TOKEN", "TEMPORAL_API_KEY", "DATABASE_URL",
	"SIGNALBOX_PAYLOAD_KEYS", "SIGNALBOX_CODEC_TOKEN", "SIGNALBOX_CONSOLE_TOKENS"}

// readSecretFiles sets each secret variable given as NAME_FILE from its
// file (a trailing newline dropped). Both NAME and NAME_FILE set is an error.
func readSecretFiles() error {
	for _, name := range SecretVariables {
		path := os.Getenv(name + "_FILE")
		if path == "" {
			continue
		}
		if os.Getenv(name) != "" {
			return fmt.Errorf("config: %s and %s_FILE are both set: set one", name, name)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %s_FILE: cannot read %s: %v", name, path, rootCause(err))
		}
		value := strings.TrimRight(string(b), "\r\n")
		if value == "" {
			return fmt.Errorf("config: %s_FILE: %s is empty", name, path)
		}
		if err := os.Setenv(name, value); err != nil {
			return fmt.Errorf("config: %s_FILE: %v", name, err)
		}
	}
	return nil
}
