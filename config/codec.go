package config

import (
	"fmt"
	"net"
	"net/url"
)

// CodecServer configures `signals codec-server`, which decodes payloads for
// the Temporal UI and the temporal CLI with the keys of
// SIGNALBOX_PAYLOAD_KEYS (Temporal.PayloadKeys).
type CodecServer struct {
	// CodecAddr is where the codec server listens. Default: 127.0.0.1:8089.
	CodecAddr string `split_words:"true" default:"127.0.0.1:8089"`
	// CodecOrigin is the Temporal UI's origin, the only one CORS lets in.
	// Default: http://localhost:8233.
	CodecOrigin string `split_words:"true" default:"http://localhost:8233"`
	// CodecToken is the bearer token callers other than loopback must send.
	// Default: none (loopback callers only).
	CodecToken string `split_words:"true"`
}

// Validate checks the codec server's settings; only `signals codec-server`
// needs them, so Signals' Validate leaves them to it.
func (c CodecServer) Validate() error {
	if err := checkHostPort("SIGNALBOX_CODEC_ADDR", c.CodecAddr); err != nil {
		return err
	}
	u, err := url.Parse(c.CodecOrigin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return Invalid("SIGNALBOX_CODEC_ORIGIN", c.CodecOrigin, "must be the Temporal UI's origin, scheme://host[:port] as the browser's address bar shows it, e.g. http://localhost:8233")
	}
	if c.CodecToken != "" && len(c.CodecToken) < minSecretLen {
		return Invalid("SIGNALBOX_CODEC_TOKEN", c.CodecToken, fmt.Sprintf("must be at least %d characters (e.g. `openssl rand -hex 24`)", minSecretLen))
	}
	if c.CodecToken == "" && !loopbackHost(c.CodecAddr) {
		return Invalid("SIGNALBOX_CODEC_ADDR", c.CodecAddr, "listens beyond this host but SIGNALBOX_CODEC_TOKEN is not set, so every caller there would be refused: "+
			"set SIGNALBOX_CODEC_TOKEN, or listen on 127.0.0.1")
	}
	return nil
}

// UIOrigin is CodecOrigin as browsers send it in their Origin header:
// without a trailing slash.
func (c CodecServer) UIOrigin() string {
	u, err := url.Parse(c.CodecOrigin)
	if err != nil {
		return c.CodecOrigin
	}
	return u.Scheme + "://" + u.Host
}

func loopbackHost(hostPort string) bool {
	host, _, _ := net.SplitHostPort(hostPort)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
