package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
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
	return nil
}

func (t Temporal) usesTLS() bool {
	return t.TLS || t.APIKey != "" || t.TLSClientCertPath != "" || t.TLSServerCACertPath != ""
}

// ClientOptions builds the options to dial Temporal, logging through logger.
func (t Temporal) ClientOptions(logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  t.Address,
		Namespace: t.Namespace,
		Logger:    log.NewStructuredLogger(orDefault(logger)),
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
