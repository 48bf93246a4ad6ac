-- The durable audit trail: every status change and decision of every item.
-- Rows outlive Temporal's retention; (workflow_id, run_id, seq) makes inserts
-- idempotent so an activity retry never writes a row twice.
CREATE TABLE audit_events (
    id          bigserial   PRIMARY KEY,
    integration text        NOT NULL,
    workflow_id text        NOT NULL,
    run_id      text        NOT NULL,
    seq         integer     NOT NULL,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    from_status text        NOT NULL DEFAULT '',
    to_status   text        NOT NULL DEFAULT '',
    reason      text        NOT NULL DEFAULT '',
    details     jsonb       NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id, run_id, seq)
);
CREATE INDEX audit_events_integration_at ON audit_events (integration, at);

-- Which target record each source record became, and a hash of what was last
-- written there, so a re-sync updates instead of duplicating and a target-side
-- edit can be told apart from our own.
CREATE TABLE external_links (
    integration   text        NOT NULL,
    source_key    text        NOT NULL,
    target_system text        NOT NULL,
    target_id     text        NOT NULL,
    synced_hash   text        NOT NULL DEFAULT '',
    workflow_id   text        NOT NULL,
    synced_at     timestamptz NOT NULL,
    PRIMARY KEY (integration, source_key, target_system)
);
