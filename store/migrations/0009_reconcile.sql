-- Reconciliation: a run per integration compares source, target and the
-- baseline of every linked record. Reports live here, outliving Temporal's
-- retention. A run that stops midway resumes from cursor: at most one run of
-- an integration is open (finished_at IS NULL) at a time.
CREATE TABLE reconcile_runs (
    id          bigserial   PRIMARY KEY,
    integration text        NOT NULL,
    workflow_id text        NOT NULL,
    started_by  text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    -- phase: linked (walking links), target (walking the target's records);
    -- cursor: the last key of the phase compared.
    phase       text        NOT NULL DEFAULT 'linked',
    cursor      text        NOT NULL DEFAULT '',
    compared    bigint      NOT NULL DEFAULT 0,
    in_sync     bigint      NOT NULL DEFAULT 0,
    requests    bigint      NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX reconcile_runs_one_open ON reconcile_runs (integration) WHERE finished_at IS NULL;
CREATE INDEX reconcile_runs_latest ON reconcile_runs (integration, id DESC);

-- One row per difference: a field (or a whole record: field '') of a record
-- whose systems disagree, with the three values and the field's owner.
-- action: repair (handed to the record's sync, whose field rules write it),
-- ask (handed to the record's sync, which raises an exception for the owner
-- team), accepted (a person accepted this very difference before), report.
CREATE TABLE reconcile_differences (
    run_id      bigint      NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    seq         bigserial,
    found_at    timestamptz NOT NULL DEFAULT now(),
    source_key  text        NOT NULL,
    target_id   text        NOT NULL DEFAULT '',
    class       text        NOT NULL,
    field       text        NOT NULL DEFAULT '',
    owner       text        NOT NULL DEFAULT '',
    source_value   text,
    target_value   text,
    baseline_value text,
    action      text        NOT NULL CHECK (action IN ('repair', 'ask', 'accepted', 'report')),
    PRIMARY KEY (run_id, class, source_key, target_id, field)
);
CREATE INDEX reconcile_differences_order ON reconcile_differences (run_id, seq);

-- What a run hands to records' syncs: one request per record, sent once
-- (handed_at) even when the run is retried or resumed.
CREATE TABLE reconcile_handoffs (
    run_id      bigint      NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    integration text        NOT NULL,
    source_key  text        NOT NULL,
    request     jsonb       NOT NULL,
    handed_at   timestamptz,
    PRIMARY KEY (run_id, integration, source_key)
);

-- Differences a person looked at and accepted: not raised again while the
-- values stay the same (fingerprint).
CREATE TABLE reconcile_accepted (
    integration text        NOT NULL,
    source_key  text        NOT NULL,
    class       text        NOT NULL,
    fingerprint text        NOT NULL,
    actor       text        NOT NULL,
    reason      text        NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration, source_key, class)
);
