// Package store keeps signalbox's records in PostgreSQL: the audit trail, the
// links between source and target records, and the business's own tables.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DBTX is what the store's queries need; a *pgxpool.Pool, a *pgx.Conn and a
// pgx.Tx all satisfy it, so the same code runs alone or inside a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Store runs signalbox's queries on a DBTX.
type Store struct {
	db DBTX
}

// New returns a Store over db.
func New(db DBTX) *Store { return &Store{db: db} }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockID is the advisory lock that serialises migrations across processes.
const migrationLockID = 0x5167_6e61_6c62_6f78 // "Signalbox"

// Open connects to the database at url, creating it if it does not exist, and
// applies pending migrations. It is safe to call from several processes at once.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if err := ensureDatabase(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// ErrNoSchema means the database exists but signalbox's tables are not in it.
var ErrNoSchema = errors.New("the database has no signalbox schema yet: the workers create and migrate it when they start")

// Connect connects to an existing database at url without creating or
// migrating anything, for programs that only read and write rows (the operator
// CLI): they need no CREATEDB or DDL rights. It reports ErrNoSchema when the
// workers have not migrated the database yet.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	var migrated bool
	err = pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&migrated)
	switch {
	case isCode(err, "3D000"):
		err = fmt.Errorf("database %q does not exist: the workers create it when they start (check DATABASE_URL)", cfg.ConnConfig.Database)
	case err != nil:
		err = fmt.Errorf("connect to PostgreSQL at %s:%d: %w (is it running? check DATABASE_URL)", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	case !migrated:
		err = fmt.Errorf("database %q: %w", cfg.ConnConfig.Database, ErrNoSchema)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// ensureDatabase creates the configured database when connecting reports that it
// does not exist (SQLSTATE 3D000). It connects to the server's "postgres"
// database for that, so a deployment whose database already exists needs no
// extra privilege.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	if !isCode(err, "3D000") {
		return fmt.Errorf("connect to PostgreSQL at %s:%d: %w (is it running? check DATABASE_URL)", cfg.Host, cfg.Port, err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("database %q does not exist and connecting to \"postgres\" to create it failed: %w", cfg.Database, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	// Another process may create it at the same moment: PostgreSQL then reports
	// 42P04 (duplicate_database) or, mid-race, 23505 on pg_database's unique index.
	if err != nil && !isCode(err, "42P04") && !isCode(err, "23505") {
		return fmt.Errorf("create database %q: %w (create it by hand, or grant CREATEDB)", cfg.Database, err)
	}
	return nil
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies the embedded migrations not yet applied, each in its own
// transaction, holding a session advisory lock so concurrent starts take turns.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLockID)); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLockID)) //nolint:errcheck // the lock also ends with the session

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, v := range versions {
		applied[int(v)] = true
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
	}
	return nil
}

// WithLock runs fn in a transaction holding a PostgreSQL advisory lock on
// name, so that every worker process serialises the read-modify-write of one
// external record. fn must use the Store it is given: it runs on the
// transaction's connection (taking another from the pool while holding the
// lock could exhaust the pool when many wait for the same lock).
func (s *Store) WithLock(ctx context.Context, name string, fn func(context.Context, *Store) error) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", name); err != nil {
			return fmt.Errorf("lock %s: %w", name, err)
		}
		return fn(ctx, New(tx))
	})
}
