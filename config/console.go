package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Console configures `signals serve`, the operator console. Only that
// command needs these settings, so Signals' Validate leaves them to it.
type Console struct {
	// ConsoleAddr is where the console listens. Default: 127.0.0.1:8088.
	ConsoleAddr string `split_words:"true" default:"127.0.0.1:8088"`
	// ConsoleTokens are the operators' sign-in tokens for local use,
	// "alice=<token>;bob=<token>" (at least 16 characters each); only their
	// SHA-256 digests are kept. Default: none.
	ConsoleTokens ConsoleTokens `split_words:"true"`
	// ConsoleTrustedProxies lists the sign-on proxies (IPs or CIDRs,
	// separated by ',') whose X-Forwarded-Email and X-Forwarded-User headers
	// say who the operator is; such headers from any other peer are ignored.
	// Default: none.
	ConsoleTrustedProxies TrustedProxies `split_words:"true"`
	// ConsoleSecureCookies marks the session cookie Secure even on requests
	// that reach the console over plain HTTP (TLS ends before it). Default:
	// false (Secure when the request came over TLS, or a trusted proxy says
	// X-Forwarded-Proto: https).
	ConsoleSecureCookies bool `split_words:"true"`
	// ConsoleSessionTTL is how long a sign-in lasts. Default: 12h.
	ConsoleSessionTTL time.Duration `split_words:"true" default:"12h"`
	// UIBaseURL is the Temporal UI the console links items to, as the
	// workers' notifications do. Default: http://localhost:8233.
	UIBaseURL string `split_words:"true" default:"http://localhost:8233"`
	// ConsoleKeyFile is the console's ed25519 private key (from `signals
	// keygen --console NAME`): it signs the decisions of operators the
	// sign-on proxy authenticated, for workers that require signed
	// decisions and trust its public key (SIGNALBOX_CONSOLE_KEYS).
	// Default: none (decisions are sent unsigned).
	ConsoleKeyFile string `split_words:"true"`
}

// Validate checks the console's settings, and that operators have a way to
// sign in.
func (c Console) Validate() error {
	if err := checkHostPort("SIGNALBOX_CONSOLE_ADDR", c.ConsoleAddr); err != nil {
		return err
	}
	if err := checkURL("SIGNALBOX_UI_BASE_URL", c.UIBaseURL, "http", "https"); err != nil {
		return err
	}
	if c.ConsoleSessionTTL < time.Minute || c.ConsoleSessionTTL > 30*24*time.Hour {
		return Invalid("SIGNALBOX_CONSOLE_SESSION_TTL", c.ConsoleSessionTTL.String(), "must be from 1m to 720h (30 days)")
	}
	if len(c.ConsoleTokens) == 0 && len(c.ConsoleTrustedProxies) == 0 {
		return fmt.Errorf("config: the console needs a way to sign in: set SIGNALBOX_CONSOLE_TOKENS (alice=<token>;bob=<token>, " +
			"at least 16 characters each, e.g. `openssl rand -hex 24`) or SIGNALBOX_CONSOLE_TRUSTED_PROXIES (the address of a sign-on proxy such as oauth2-proxy)")
	}
	return nil
}

// minConsoleTokenLen is the shortest sign-in token accepted.
const minConsoleTokenLen = 16

// ConsoleTokens maps an operator to the SHA-256 digest of their sign-in
// token, decoded from "alice=<token>;bob=<token>". The tokens themselves
// are not kept.
type ConsoleTokens map[string][sha256.Size]byte

// Decode implements envconfig.Decoder. Its errors never echo a token.
func (t *ConsoleTokens) Decode(value string) error {
	out := ConsoleTokens{}
	for n, entry := range splitNonEmpty(value, ";") {
		operator, token, ok := strings.Cut(entry, "=")
		operator, token = strings.TrimSpace(operator), strings.TrimSpace(token)
		if !ok || operator == "" || token == "" {
			return fmt.Errorf("entry %d must be operator=token (entries separated by ';')", n+1)
		}
		if strings.ContainsAny(operator, " \t,") {
			return fmt.Errorf("operator %q must be a single word, as in SIGNALBOX_OPERATORS", operator)
		}
		if _, dup := out[operator]; dup {
			return fmt.Errorf("operator %q appears twice", operator)
		}
		if len(token) < minConsoleTokenLen {
			return fmt.Errorf("the token of %q must be at least %d characters (e.g. `openssl rand -hex 24`)", operator, minConsoleTokenLen)
		}
		digest := sha256.Sum256([]byte(token))
		for other, d := range out {
			if d == digest {
				return fmt.Errorf("operators %q and %q have the same token: give each their own", other, operator)
			}
		}
		out[operator] = digest
	}
	*t = out
	return nil
}

// Operator returns the operator whose token this is. Every digest is
// compared, in constant time, whichever matches.
func (t ConsoleTokens) Operator(token string) (operator string, ok bool) {
	digest := sha256.Sum256([]byte(token))
	for name, d := range t {
		if subtle.ConstantTimeCompare(digest[:], d[:]) == 1 {
			operator, ok = name, true
		}
	}
	return operator, ok
}

// Operators lists the operators with a token, in order.
func (t ConsoleTokens) Operators() []string {
	names := make([]string, 0, len(t))
	for name := range t {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// TrustedProxies are the addresses whose requests may say who the user is,
// decoded from IPs and CIDRs separated by ',': "10.0.0.0/8,127.0.0.1".
type TrustedProxies []netip.Prefix

// Decode implements envconfig.Decoder.
func (p *TrustedProxies) Decode(value string) error {
	var out TrustedProxies
	for _, entry := range splitNonEmpty(value, ",") {
		if strings.Contains(entry, "/") {
			prefix, err := netip.ParsePrefix(entry)
			if err != nil {
				return fmt.Errorf("%q is not an IP or CIDR (e.g. 10.0.0.5 or 10.0.0.0/24)", entry)
			}
			out = append(out, prefix.Masked())
			continue
		}
		addr, err := netip.ParseAddr(entry)
		if err != nil {
			return fmt.Errorf("%q is not an IP or CIDR (e.g. 10.0.0.5 or 10.0.0.0/24)", entry)
		}
		addr = addr.Unmap()
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	*p = out
	return nil
}

// Trusts reports whether addr is one of the proxies.
func (p TrustedProxies) Trusts(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, prefix := range p {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

func (p TrustedProxies) String() string {
	parts := make([]string, len(p))
	for i, prefix := range p {
		parts[i] = prefix.String()
	}
	return strings.Join(parts, ",")
}
