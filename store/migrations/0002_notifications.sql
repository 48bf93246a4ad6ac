-- One row per chat notification key (derived from workflow ID and step), so a
-- retried or re-run step finds the message already sent and does not post again.
CREATE TABLE notifications (
    key         text        PRIMARY KEY,
    team        text        NOT NULL,
    workflow_id text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
