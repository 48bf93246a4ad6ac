-- What the intake keeps so that every intake replica, and every restart,
-- answers alike (docs/intake.md).

-- The signed intake requests received (Signalbox-Signature), by a digest of
-- the signature: receiving one again is a replay, refused. A signature is
-- taken 5 minutes either side of its timestamp only, so rows signed longer
-- ago than that are pruned (the intake does it every minute).
CREATE TABLE intake_signatures (
    digest      text        PRIMARY KEY,
    source      text        NOT NULL,
    signed_at   timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX intake_signatures_signed_at ON intake_signatures (signed_at);

-- The items the intake accepted from each source (answered 202 for): a
-- source reads these through GET /v1/items/{id}, and no other items. A
-- workflow ID is an identifier, never personal data. Kept as long as the
-- items' audit trail.
CREATE TABLE intake_items (
    workflow_id text        NOT NULL,
    source      text        NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, source)
);
