-- The items waiting for a person's decision, one row per item: the operator
-- console's inbox (docs/console.md). It is a projection of the audit trail,
-- kept by InsertAudit in the statement that stores each event: an exception
-- raised puts the item here, a reassignment changes its deciding team, and
-- any other status change takes it out. Temporal's visibility cannot list
-- the waiting items oldest first, so reading them all from it to sort them
-- took seconds at 10,000 items; this table answers the inbox's page from an
-- index.
CREATE TABLE waiting_items (
    workflow_id text        PRIMARY KEY,
    run_id      text        NOT NULL,
    integration text        NOT NULL,
    kind        text        NOT NULL,
    status      text        NOT NULL,
    -- The team that decides the exception, as the workflow picked it; ''
    -- for an exception raised before this table existed, until the workers
    -- fill it in at start (store.FillWaitingDeciders).
    deciders    text        NOT NULL,
    since       timestamptz NOT NULL,
    sla_seconds bigint      NOT NULL DEFAULT 0,
    -- The exception's one-line summary (personal data: signals erase masks it).
    summary     text        NOT NULL DEFAULT ''
);
CREATE INDEX waiting_items_deciders_since ON waiting_items (deciders, since, workflow_id);

-- The items already waiting: each item's last status change, where it is an
-- exception raised, and the team of its last reassignment since.
INSERT INTO waiting_items (workflow_id, run_id, integration, kind, status, deciders, since, sla_seconds, summary)
SELECT r.workflow_id, r.run_id, r.integration, coalesce(r.details->>'kind', ''), r.to_status,
       coalesce((SELECT a.details->>'to' FROM audit_events a
                 WHERE a.workflow_id = r.workflow_id AND a.run_id = r.run_id AND a.action = 'reassign' AND a.id > r.id
                 ORDER BY a.id DESC LIMIT 1),
                r.details->>'deciders', ''),
       r.at, coalesce((r.details->>'slaSeconds')::bigint, 0), r.reason
FROM (SELECT DISTINCT ON (workflow_id) * FROM audit_events
      WHERE to_status <> '' AND to_status <> from_status
      ORDER BY workflow_id, id DESC) r
WHERE r.action = 'raised' AND r.to_status IN ('Blocked', 'Failed');
