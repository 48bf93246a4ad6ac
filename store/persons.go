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

// ClaimPersons is ClaimPerson for many at once, in one transaction: the
// claims a batch takes before it creates records for them.
func (s *Store) ClaimPersons(ctx context.Context, persons []string, holder string, ttl time.Duration) (map[string]PersonClaim, error) {
	claims := map[string]PersonClaim{}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Locks in one order, so two batches never wait on each other in a cycle.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('person:' || p)) FROM (SELECT DISTINCT unnest($1::text[]) AS p ORDER BY 1) ps", persons); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT person, holder, contact_id, claimed_at > now() - $2::interval FROM person_claims WHERE person = ANY($1)`,
			persons, ttl.String())
		if err != nil {
			return err
		}
		for rows.Next() {
			var person, other, contact string
			var fresh bool
			if err := rows.Scan(&person, &other, &contact, &fresh); err != nil {
				rows.Close()
				return err
			}
			claims[person] = PersonClaim{Busy: other != holder && fresh && contact == "", ContactID: contact}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var take []string
		for _, p := range persons {
			if !claims[p].Busy {
				take = append(take, p)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO person_claims (person, holder) SELECT DISTINCT unnest($1::text[]), $2
			ON CONFLICT (person) DO UPDATE SET holder = excluded.holder, claimed_at = now()`, take, holder)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d records for %s: %w", len(persons), holder, err)
	}
	return claims, nil
}

// RecordPersonContacts is RecordPersonContact for many: record by person.
func (s *Store) RecordPersonContacts(ctx context.Context, holder string, records map[string]string) error {
	persons, ids := make([]string, 0, len(records)), make([]string, 0, len(records))
	for p, id := range records {
		persons, ids = append(persons, p), append(ids, id)
	}
	_, err := s.db.Exec(ctx, `UPDATE person_claims SET contact_id = r.id FROM unnest($1::text[], $2::text[]) AS r(person, id)
		WHERE person_claims.person = r.person AND person_claims.holder = $3`, persons, ids, holder)
	if err != nil {
		return fmt.Errorf("record the records of %d claims for %s: %w", len(records), holder, err)
	}
	return nil
}
