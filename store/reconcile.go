package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReconcileRun is one reconcile run of an integration: where it stands and
// what it has counted.
type ReconcileRun struct {
	ID          int64      `json:"id"`
	Integration string     `json:"integration"`
	WorkflowID  string     `json:"workflowId"`
	StartedBy   string     `json:"startedBy"`
	StartedAt   time.Time  `json:"startedAt"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	// Phase and Cursor say where it resumes: the last key compared in the
	// phase (PhaseLinked, then PhaseTarget).
	Phase    string `json:"phase"`
	Cursor   string `json:"cursor"`
	Compared int64  `json:"compared"`
	InSync   int64  `json:"inSync"`
	// Requests counts the requests made to the target.
	Requests int64 `json:"requests"`
}

// Phases of a reconcile run.
const (
	// PhaseLinked walks the linked records, by source key.
	PhaseLinked = "linked"
	// PhaseTarget walks the target's records, for those it holds alone or twice.
	PhaseTarget = "target"
	// PhaseSource walks the source's records no link names: never synced.
	PhaseSource = "source"
	// PhaseDone: nothing is left to read.
	PhaseDone = "done"
)

// Difference is one way a record's systems disagree: a field, or the whole
// record when Field is empty.
type Difference struct {
	Seq       int64     `json:"seq"`
	FoundAt   time.Time `json:"foundAt"`
	SourceKey string    `json:"sourceKey"`
	TargetID  string    `json:"targetId,omitempty"`
	Class     string    `json:"class"`
	Field     string    `json:"field,omitempty"`
	// Owner is the system that owns the field.
	Owner    string  `json:"owner,omitempty"`
	Source   *string `json:"source"`
	Target   *string `json:"target"`
	Baseline *string `json:"baseline"`
	// Action is what the run did about it: ActionRepair, ActionAsk,
	// ActionAccepted or ActionReport.
	Action string `json:"action"`
}

// What a run does about a difference.
const (
	DiffRepair   = "repair"
	DiffAsk      = "ask"
	DiffAccepted = "accepted"
	DiffReport   = "report"
)

// Handoff asks a record's own sync to look at it again: start its item, or
// signal it when it runs.
type Handoff struct {
	Integration string `json:"integration"`
	Key         string `json:"key"`
	// Input starts the item when it does not run (nil: a plain item input).
	Input json.RawMessage `json:"input,omitempty"`
	// Signal and Arg are sent to it either way.
	Signal string          `json:"signal"`
	Arg    json.RawMessage `json:"arg,omitempty"`
	// Why goes to the item's audit trail, with the run's ID.
	Why string `json:"why"`
}

// ReconcilePage is what one step of a run found, recorded at once.
type ReconcilePage struct {
	RunID int64
	// Phase and From are where the step began; NextPhase and To where the
	// next begins.
	Phase, From, NextPhase, To string
	Compared, InSync, Requests int64
	Differences                []Difference
	Handoffs                   []Handoff
}

// Add counts q's records and findings in p.
func (p *ReconcilePage) Add(q ReconcilePage) {
	p.Compared, p.InSync, p.Requests = p.Compared+q.Compared, p.InSync+q.InSync, p.Requests+q.Requests
	p.Differences = append(p.Differences, q.Differences...)
	p.Handoffs = append(p.Handoffs, q.Handoffs...)
}

// BeginReconcile opens a run of integration by workflowID, or returns the
// run still open (resumed: true) so that a run stopped midway goes on where
// it stopped. The open run may belong to another workflow: see
// TakeOverReconcile.
func (s *Store) BeginReconcile(ctx context.Context, integration, workflowID, startedBy string) (ReconcileRun, bool, error) {
	_, err := s.db.Exec(ctx, `INSERT INTO reconcile_runs (integration, workflow_id, started_by) VALUES ($1, $2, $3)
		ON CONFLICT (integration) WHERE finished_at IS NULL DO NOTHING`, integration, workflowID, startedBy)
	if err != nil {
		return ReconcileRun{}, false, fmt.Errorf("open a reconcile run of %s: %w", integration, err)
	}
	run, err := scanRun(s.db.QueryRow(ctx, `SELECT `+runColumns+` FROM reconcile_runs
		WHERE integration = $1 AND finished_at IS NULL`, integration))
	if err != nil {
		return ReconcileRun{}, false, fmt.Errorf("open a reconcile run of %s: %w", integration, err)
	}
	return run, run.Compared > 0 || run.Phase != PhaseLinked || run.Cursor != "", nil
}

// TakeOverReconcile hands open run id from workflow from (which no longer
// runs) to workflow to; false if another took it meanwhile.
func (s *Store) TakeOverReconcile(ctx context.Context, id int64, from, to string) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE reconcile_runs SET workflow_id = $3
		WHERE id = $1 AND workflow_id = $2 AND finished_at IS NULL`, id, from, to)
	if err != nil {
		return false, fmt.Errorf("take over reconcile run %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

const runColumns = `id, integration, workflow_id, started_by, started_at, finished_at, phase, cursor, compared, in_sync, requests`

func scanRun(row pgx.Row) (ReconcileRun, error) {
	var r ReconcileRun
	err := row.Scan(&r.ID, &r.Integration, &r.WorkflowID, &r.StartedBy, &r.StartedAt, &r.FinishedAt, &r.Phase, &r.Cursor, &r.Compared, &r.InSync, &r.Requests)
	return r, err
}

// GetReconcileRun returns run id, or ErrNotFound.
func (s *Store) GetReconcileRun(ctx context.Context, id int64) (ReconcileRun, error) {
	r, err := scanRun(s.db.QueryRow(ctx, `SELECT `+runColumns+` FROM reconcile_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read reconcile run %d: %w", id, err)
	}
	return r, nil
}

// LatestReconcileRun returns the latest run of integration (of any, when
// empty), or ErrNotFound.
func (s *Store) LatestReconcileRun(ctx context.Context, integration string) (ReconcileRun, error) {
	r, err := scanRun(s.db.QueryRow(ctx, `SELECT `+runColumns+` FROM reconcile_runs
		WHERE $1 = '' OR integration = $1 ORDER BY id DESC LIMIT 1`, integration))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read the latest reconcile run: %w", err)
	}
	return r, nil
}

// RecordReconcilePage records what a step found and moves the run's cursor,
// in one transaction. A step recorded before (a retried activity whose answer
// was lost) changes nothing: applied is false.
func (s *Store) RecordReconcilePage(ctx context.Context, p ReconcilePage) (applied bool, err error) {
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE reconcile_runs SET phase = $4, cursor = $5,
				compared = compared + $6, in_sync = in_sync + $7, requests = requests + $8
			WHERE id = $1 AND phase = $2 AND cursor = $3 AND finished_at IS NULL`,
			p.RunID, p.Phase, p.From, p.NextPhase, p.To, p.Compared, p.InSync, p.Requests)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		applied = true
		batch := &pgx.Batch{}
		for _, d := range p.Differences {
			batch.Queue(`INSERT INTO reconcile_differences (run_id, source_key, target_id, class, field, owner,
					source_value, target_value, baseline_value, action)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
				p.RunID, d.SourceKey, d.TargetID, d.Class, d.Field, d.Owner, d.Source, d.Target, d.Baseline, d.Action)
		}
		for _, h := range p.Handoffs {
			batch.Queue(`INSERT INTO reconcile_handoffs (run_id, integration, source_key, request)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, p.RunID, h.Integration, h.Key, h)
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return false, fmt.Errorf("record a page of reconcile run %d: %w", p.RunID, err)
	}
	return applied, nil
}

// PendingHandoffs returns up to limit handoffs of a run not yet handed.
func (s *Store) PendingHandoffs(ctx context.Context, runID int64, limit int) ([]Handoff, error) {
	rows, err := s.db.Query(ctx, `SELECT request FROM reconcile_handoffs
		WHERE run_id = $1 AND handed_at IS NULL ORDER BY integration, source_key LIMIT $2`, runID, limit)
	if err != nil {
		return nil, fmt.Errorf("read the handoffs of reconcile run %d: %w", runID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[Handoff])
	if err != nil {
		return nil, fmt.Errorf("read the handoffs of reconcile run %d: %w", runID, err)
	}
	return out, nil
}

// MarkHandedOff records that a handoff reached its item.
func (s *Store) MarkHandedOff(ctx context.Context, runID int64, h Handoff) error {
	_, err := s.db.Exec(ctx, `UPDATE reconcile_handoffs SET handed_at = now()
		WHERE run_id = $1 AND integration = $2 AND source_key = $3`, runID, h.Integration, h.Key)
	if err != nil {
		return fmt.Errorf("record the handoff of %s/%s: %w", h.Integration, h.Key, err)
	}
	return nil
}

// FinishReconcile closes a run and returns it.
func (s *Store) FinishReconcile(ctx context.Context, runID int64) (ReconcileRun, error) {
	r, err := scanRun(s.db.QueryRow(ctx, `UPDATE reconcile_runs SET finished_at = COALESCE(finished_at, now()), phase = $2
		WHERE id = $1 RETURNING `+runColumns, runID, PhaseDone))
	if err != nil {
		return r, fmt.Errorf("finish reconcile run %d: %w", runID, err)
	}
	return r, nil
}

// ReconcileReport is a run with its counts by class and its differences,
// oldest first.
type ReconcileReport struct {
	Run ReconcileRun `json:"run"`
	// Counts holds, by class, how many records fell in it (ClassInSync
	// included).
	Counts      map[string]int64 `json:"counts"`
	Differences []Difference     `json:"differences"`
}

// GetReconcileReport reads the report of run id, or returns ErrNotFound.
func (s *Store) GetReconcileReport(ctx context.Context, id int64) (ReconcileReport, error) {
	run, err := s.GetReconcileRun(ctx, id)
	if err != nil {
		return ReconcileReport{}, err
	}
	rep, err := s.reconcileCounts(ctx, run)
	if err != nil {
		return rep, err
	}
	rows, err := s.db.Query(ctx, `SELECT seq, found_at, source_key, target_id, class, field, owner,
			source_value, target_value, baseline_value, action
		FROM reconcile_differences WHERE run_id = $1 ORDER BY seq`, id)
	if err != nil {
		return rep, fmt.Errorf("read the differences of reconcile run %d: %w", id, err)
	}
	rep.Differences, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Difference])
	if err != nil {
		return rep, fmt.Errorf("read the differences of reconcile run %d: %w", id, err)
	}
	return rep, nil
}

// LatestReconcileCounts returns the latest run of integration with its
// counts by class, without its differences, or ErrNotFound.
func (s *Store) LatestReconcileCounts(ctx context.Context, integration string) (ReconcileReport, error) {
	run, err := s.LatestReconcileRun(ctx, integration)
	if err != nil {
		return ReconcileReport{}, err
	}
	return s.reconcileCounts(ctx, run)
}

// reconcileCounts is run's report without its differences: how many
// records fell in each class.
func (s *Store) reconcileCounts(ctx context.Context, run ReconcileRun) (ReconcileReport, error) {
	rep := ReconcileReport{Run: run, Counts: map[string]int64{"in-sync": run.InSync}}
	rows, err := s.db.Query(ctx, `SELECT class, count(DISTINCT (source_key, target_id)) FROM reconcile_differences
		WHERE run_id = $1 GROUP BY class`, run.ID)
	if err != nil {
		return rep, fmt.Errorf("count the differences of reconcile run %d: %w", run.ID, err)
	}
	for rows.Next() {
		var class string
		var n int64
		if err := rows.Scan(&class, &n); err != nil {
			return rep, fmt.Errorf("count the differences of reconcile run %d: %w", run.ID, err)
		}
		rep.Counts[class] = n
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("count the differences of reconcile run %d: %w", run.ID, err)
	}
	return rep, nil
}

// LinksAfter returns up to limit links of integration to targetSystem whose
// source key sorts after after, in source key order: a run's walk.
func (s *Store) LinksAfter(ctx context.Context, integration, targetSystem, after string, limit int) ([]Link, error) {
	rows, err := s.db.Query(ctx, `SELECT `+linkColumns+` FROM external_links
		WHERE integration = $1 AND target_system = $2 AND source_key COLLATE "C" > $3 AND target_id <> ''
		ORDER BY source_key COLLATE "C" LIMIT $4`, integration, targetSystem, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list links of %s: %w", integration, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Link, error) { return scanLink(r) })
	if err != nil {
		return nil, fmt.Errorf("list links of %s: %w", integration, err)
	}
	return out, nil
}

// AcceptDifference remembers that a person accepted a difference of a
// record: a run does not raise it again while its fingerprint stays.
func (s *Store) AcceptDifference(ctx context.Context, integration, sourceKey, class, fingerprint, actor, reason string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO reconcile_accepted (integration, source_key, class, fingerprint, actor, reason)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (integration, source_key, class) DO UPDATE SET
		fingerprint = excluded.fingerprint, actor = excluded.actor, reason = excluded.reason, accepted_at = now()`,
		integration, sourceKey, class, fingerprint, actor, reason)
	if err != nil {
		return fmt.Errorf("accept the difference of %s/%s: %w", integration, sourceKey, err)
	}
	return nil
}

// AcceptedDifferences returns, for the source keys given, the fingerprints
// accepted, by source key and class.
func (s *Store) AcceptedDifferences(ctx context.Context, integration string, keys []string) (map[[2]string]string, error) {
	rows, err := s.db.Query(ctx, `SELECT source_key, class, fingerprint FROM reconcile_accepted
		WHERE integration = $1 AND source_key = ANY($2)`, integration, keys)
	if err != nil {
		return nil, fmt.Errorf("read accepted differences of %s: %w", integration, err)
	}
	defer rows.Close()
	out := map[[2]string]string{}
	for rows.Next() {
		var key, class, fp string
		if err := rows.Scan(&key, &class, &fp); err != nil {
			return nil, fmt.Errorf("read accepted differences of %s: %w", integration, err)
		}
		out[[2]string{key, class}] = fp
	}
	return out, rows.Err()
}

// FinishedAtString is when the run finished, local time, or "".
func (r ReconcileRun) FinishedAtString() string {
	if r.FinishedAt == nil {
		return ""
	}
	return r.FinishedAt.Local().Format(time.DateTime)
}
