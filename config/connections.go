package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/signalbox-dev/signalbox/codec"
)

// Temporal locates the Temporal service. Its variables are read first with the
// SIGNALBOX_ prefix, then under the names the temporal CLI and SDKs use.
type Temporal struct {
	// Address is the frontend's host:port. Default: 127.0.0.1:7233.
	Address string `envconfig:"TEMPORAL_ADDRESS" default:"127.0.0.1:7233"`
	// Namespace holds signalbox's workflows. Default: default.
	Namespace string `envconfig:"TEMPORAL_NAMESPACE" default:"default"`
	// APIKey authenticates to Temporal Cloud; implies TLS. Default: none.
	APIKey string `envconfig:"TEMPORAL_API_KEY"`
	// TLS turns on TLS with the system roots. Default: false.
	TLS bool `envconfig:"TEMPORAL_TLS"`
	// TLSClientCertPath and TLSClientKeyPath enable mTLS. Default: none.
	TLSClientCertPath string `envconfig:"TEMPORAL_TLS_CLIENT_CERT_PATH"`
	TLSClientKeyPath  string `envconfig:"TEMPORAL_TLS_CLIENT_KEY_PATH"`
	// TLSServerCACertPath trusts a private CA. Default: system roots.
	TLSServerCACertPath string `envconfig:"TEMPORAL_TLS_SERVER_CA_CERT_PATH"`
	// TLSServerName overrides the name checked on the server certificate. Default: the address's host.
	TLSServerName string `envconfig:"TEMPORAL_TLS_SERVER_NAME"`
	// PayloadKeys encrypts every payload sent to Temporal with AES-256-GCM:
	// "k2=<base64 key>;k1=<base64 key>", the first key encrypts and all
	// decrypt (docs/encryption.md). Every program and the codec server need
	// the same keys. Read as SIGNALBOX_PAYLOAD_KEYS only, or from the file
	// SIGNALBOX_PAYLOAD_KEYS_FILE names. Default: none, payloads are not
	// encrypted (encrypted ones met are reported, naming their key).
	PayloadKeys string `split_words:"true"`
}

// Validate checks the address and that mTLS settings come in pairs.
func (t Temporal) Validate() error {
	if err := checkHostPort("TEMPORAL_ADDRESS", t.Address); err != nil {
		return err
	}
	if t.Namespace == "" {
		return Invalid("TEMPORAL_NAMESPACE", t.Namespace, "must not be empty")
	}
	if (t.TLSClientCertPath == "") != (t.TLSClientKeyPath == "") {
		return fmt.Errorf("config: TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH must be set together")
	}
	_, err := t.Codec()
	return err
}

// Codec is the payload codec of PayloadKeys; without keys it encrypts
// nothing, and names the key of an encrypted payload it cannot read.
func (t Temporal) Codec() (*codec.Codec, error) {
	c, err := codec.Parse(t.PayloadKeys)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func (t Temporal) usesTLS() bool {
	return t.TLS || t.APIKey != "" || t.TLSClientCertPath != "" || t.TLSServerCACertPath != ""
}

// ClientOptions builds the options to dial Temporal, logging through logger.
func (t Temporal) ClientOptions(logger *slog.Logger) (client.Options, error) {
	payloads, err := t.Codec()
	if err != nil {
		return client.Options{}, err
	}
	// Every client and worker dials through here: all encrypt alike.
	opts := client.Options{
		HostPort:         t.Address,
		Namespace:        t.Namespace,
		Logger:           log.NewStructuredLogger(orDefault(logger)),
		DataConverter:    payloads.DataConverter(),
		FailureConverter: payloads.FailureConverter(),
	}
	if t.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(t.APIKey)
	}
	if !t.usesTLS() {
		return opts, nil
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.TLSServerName}
	if t.TLSClientCertPath != "" {
		cert, err := tls.LoadX509KeyPair(t.TLSClientCertPath, t.TLSClientKeyPath)
		if err != nil {
			return opts, fmt.Errorf("config: TEMPORAL_TLS_CLIENT_CERT_PATH/TEMPORAL_TLS_CLIENT_KEY_PATH: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	if t.TLSServerCACertPath != "" {
		pem, err := os.ReadFile(t.TLSServerCACertPath)
		if err != nil {
			return opts, fmt.Errorf("config: TEMPORAL_TLS_SERVER_CA_CERT_PATH: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return opts, fmt.Errorf("config: TEMPORAL_TLS_SERVER_CA_CERT_PATH=%q holds no PEM certificate", t.TLSServerCACertPath)
		}
		tlsConfig.RootCAs = pool
	}
	opts.ConnectionOptions.TLS = tlsConfig
	return opts, nil
}

// Database locates PostgreSQL.
type Database struct {
	// URL is a PostgreSQL connection URL; the database is created if missing.
	// Default: postgres://postgres@127.0.0.1:5432/signalbox.
	URL string `envconfig:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/signalbox"`
}

// Validate checks that URL is a connection string pgx accepts.
func (d Database) Validate() error {
	if d.URL == "" {
		return Invalid("DATABASE_URL", d.URL, "must not be empty")
	}
	if _, err := pgxpool.ParseConfig(d.URL); err != nil {
		// pgx masks the password in its message; never echo the raw value.
		return fmt.Errorf("config: DATABASE_URL is not a valid PostgreSQL connection string: %v", err)
	}
	return nil
}

func orDefault(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.Default()
	}
	return logger
}

// Dial connects to Temporal. A long-running program passes patience > 0: it
// keeps trying, logging each failure, for that long, so that it rides through
// a server restart or a start before the server; a command passes 0 and fails
// at once.
func (t Temporal) Dial(ctx context.Context, logger *slog.Logger, patience time.Duration) (client.Client, error) {
	opts, err := t.ClientOptions(logger)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(patience)
	wait := 250 * time.Millisecond
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w (is it running? check TEMPORAL_ADDRESS)", t.Address, t.Namespace, err)
		}
		orDefault(logger).Warn("Temporal is not reachable yet; retrying", "address", t.Address, "in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
