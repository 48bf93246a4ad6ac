package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PersonClaim is the outcome of claiming a person before looking them up.
type PersonClaim struct {
	// Busy: another holder claimed the person less than a claim's life ago
	// and has not created their record yet; look again later.
	Busy bool
	// ContactID is the record an earlier holder created for the person, if any.
	ContactID string
}

// ClaimPerson claims person for holder for ttl, unless another holder's claim
// is younger and has no record yet. Claims of one person are taken one at a
// time, so two items for the same person cannot both find nothing and create.
func (s *Store) ClaimPerson(ctx context.Context, person, holder string, ttl time.Duration) (PersonClaim, error) {
	var claim PersonClaim
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "person:"+person); err != nil {
			return err
		}
		var other string
		var fresh bool
		err := tx.QueryRow(ctx, `SELECT holder, contact_id, claimed_at > now() - $2::interval FROM person_claims WHERE person = $1`,
			person, ttl.String()).Scan(&other, &claim.ContactID, &fresh)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case other != holder && fresh && claim.ContactID == "":
			claim.Busy = true
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO person_claims (person, holder) VALUES ($1, $2)
			ON CONFLICT (person) DO UPDATE SET holder = excluded.holder, claimed_at = now()`, person, holder)
		return err
	})
	if err != nil {
		return PersonClaim{}, fmt.Errorf("claim a person for %s: %w", holder, err)
	}
	return claim, nil
}

// RecordPersonContact records the record holder created for the person it
// claimed, which lets the next claimant find it.
func (s *Store) RecordPersonContact(ctx context.Context, person, holder, contactID string) error {
	if _, err := s.db.Exec(ctx, `UPDATE person_claims SET contact_id = $3 WHERE person = $1 AND holder = $2`, person, holder, contactID); err != nil {
		return fmt.Errorf("record the contact of a person for %s: %w", holder, err)
	}
	return nil
}
