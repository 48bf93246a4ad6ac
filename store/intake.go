package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// IntakeSignature is a signed intake request, identified by a digest of its
// signature: the same digest is the same request, sent again.
type IntakeSignature struct {
	Digest   string
	Source   string
	SignedAt time.Time
}

// ClaimIntakeSignature records a signed request and reports whether it is
// new: false means it was received before (a replay), by this intake or
// another one on the same database.
func (s *Store) ClaimIntakeSignature(ctx context.Context, sig IntakeSignature) (bool, error) {
	tag, err := s.db.Exec(ctx, `INSERT INTO intake_signatures (digest, source, signed_at) VALUES ($1, $2, $3)
		ON CONFLICT (digest) DO NOTHING`, sig.Digest, sig.Source, sig.SignedAt)
	if err != nil {
		return false, fmt.Errorf("record a signed request of source %s: %w", sig.Source, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseIntakeSignature forgets a claimed request that was not taken (the
// intake could not act on it): sending it again is no replay.
func (s *Store) ReleaseIntakeSignature(ctx context.Context, digest string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM intake_signatures WHERE digest = $1`, digest); err != nil {
		return fmt.Errorf("forget a signed request: %w", err)
	}
	return nil
}

// ForgetIntakeSignatures forgets the requests signed before signedBefore,
// which the intake refuses as stale anyway, and says how many.
func (s *Store) ForgetIntakeSignatures(ctx context.Context, signedBefore time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM intake_signatures WHERE signed_at < $1`, signedBefore)
	if err != nil {
		return 0, fmt.Errorf("forget old signed requests: %w", err)
	}
	return tag.RowsAffected(), nil
}

// The items the intake accepted from each source are the rows of
// intake_items. An item key belongs to the source recorded first for its
// workflow ID, its owner: the intake records a source only while no other
// source owns the key (ClaimIntakeItem), so from then on one source holds
// each key. (Rows written before owners were enforced may name several
// sources for one item: the first recorded owns it, the others still read it.)

// IntakeItemOwner is the source item workflowID belongs to: the first
// recorded for it; "" when none is.
func (s *Store) IntakeItemOwner(ctx context.Context, workflowID string) (string, error) {
	return intakeItemOwner(ctx, s.db, workflowID)
}

func intakeItemOwner(ctx context.Context, db DBTX, workflowID string) (string, error) {
	var owner string
	err := db.QueryRow(ctx, `SELECT source FROM intake_items WHERE workflow_id = $1 ORDER BY accepted_at, source LIMIT 1`, workflowID).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up whose item %s is: %w", workflowID, err)
	}
	return owner, nil
}

// ClaimIntakeItem records that the intake takes item workflowID from
// source, unless another source owns it, and returns the owner (source when
// the claim holds) and whether a row was added. Claims of one item are taken
// one at a time, on every intake replica: of two sources claiming a new key
// at once, one owns it.
func (s *Store) ClaimIntakeItem(ctx context.Context, source, workflowID string) (owner string, added bool, err error) {
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "intake-item:"+workflowID); err != nil {
			return err
		}
		if owner, err = intakeItemOwner(ctx, tx, workflowID); err != nil || (owner != "" && owner != source) {
			return err
		}
		owner = source
		tag, err := tx.Exec(ctx, `INSERT INTO intake_items (workflow_id, source) VALUES ($1, $2)
			ON CONFLICT (workflow_id, source) DO NOTHING`, workflowID, source)
		added = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("record that source %s is given %s: %w", source, workflowID, err)
	}
	return owner, added, nil
}

// ReleaseIntakeItem forgets the row a claim added when the intake then
// started nothing: the key is free again.
func (s *Store) ReleaseIntakeItem(ctx context.Context, source, workflowID string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM intake_items WHERE workflow_id = $1 AND source = $2`, workflowID, source); err != nil {
		return fmt.Errorf("forget that source %s was given %s: %w", source, workflowID, err)
	}
	return nil
}

// IntakeItemOf reports whether the intake accepted item workflowID from source.
func (s *Store) IntakeItemOf(ctx context.Context, source, workflowID string) (bool, error) {
	var ok bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM intake_items WHERE workflow_id = $1 AND source = $2)`, workflowID, source).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up whether source %s was given %s: %w", source, workflowID, err)
	}
	return ok, nil
}
