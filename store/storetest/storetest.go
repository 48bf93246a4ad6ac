// Package storetest gives tests a fresh, migrated PostgreSQL database of their own.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
)

// ServerURL is the PostgreSQL server tests create their databases on:
// SIGNALBOX_TEST_DATABASE_URL, else the local server.
func ServerURL() string {
	if u := os.Getenv("SIGNALBOX_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres"
}

// NewDatabaseURL names a new database on the test server (not yet created) and
// drops it when the test ends.
func NewDatabaseURL(t testing.TB) string {
	t.Helper()
	url, drop, err := NewDatabase(ServerURL())
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Logf("drop test database: %v", err)
		}
	})
	return url
}

// NewDatabase names a new database on the server at serverURL (signalbox's
// programs create it on first use) and returns a function that drops it.
func NewDatabase(serverURL string) (dbURL string, drop func() error, err error) {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("SIGNALBOX_TEST_DATABASE_URL must be a postgres:// URL: %w", err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "signalbox_test_" + hex.EncodeToString(suffix)
	u.Path = "/" + name
	drop = func() error {
		ctx := context.Background()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	}
	return u.String(), drop, nil
}

// NewPool opens a fresh, migrated database for the test.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := store.Open(ctx, NewDatabaseURL(t))
	require.NoError(t, err, "open a test database; is PostgreSQL running at %s?", ServerURL())
	t.Cleanup(pool.Close)
	return pool
}
