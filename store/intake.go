package store

import (
	"context"
	"fmt"
	"time"
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

// RecordIntakeItem records that the intake accepted item workflowID from
// source: the source may read it from now on.
func (s *Store) RecordIntakeItem(ctx context.Context, source, workflowID string) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO intake_items (workflow_id, source) VALUES ($1, $2)
		ON CONFLICT (workflow_id, source) DO NOTHING`, workflowID, source); err != nil {
		return fmt.Errorf("record that source %s was given %s: %w", source, workflowID, err)
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
