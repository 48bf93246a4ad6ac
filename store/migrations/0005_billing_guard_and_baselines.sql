-- Whether and where an invoice was billed: by signalbox (billed_ref is the
-- Stripe invoice) or by hand (billed_ref is the operator's external reference).
-- A re-sync reads this before it could create anything in Stripe.
ALTER TABLE invoices ADD COLUMN billed_by  text CHECK (billed_by IN ('signalbox', 'hand'));
ALTER TABLE invoices ADD COLUMN billed_ref text;

-- Optimistic concurrency: every change of an invoice or of its lines bumps its
-- version, so a writer holding a stale copy notices instead of overwriting.
ALTER TABLE invoices ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION invoices_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER invoices_version BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_bump_version();

CREATE FUNCTION invoice_lines_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE invoices SET version = version WHERE id = COALESCE(NEW.invoice_id, OLD.invoice_id);
    RETURN NULL;
END $$;
CREATE TRIGGER invoice_lines_version AFTER INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_lines_bump_version();

-- The baseline of a link: the values signalbox last synced (or a person's
-- decision settled), field by field, so that an edit is judged three-way
-- against it. manual_ref is where a person resolved the record by hand.
ALTER TABLE external_links ADD COLUMN baseline   jsonb;
ALTER TABLE external_links ADD COLUMN manual_ref text NOT NULL DEFAULT '';

-- Alerts that an item waits are aggregated per team and exception kind: at
-- most one message an interval. last_posted_at is when the last one went out;
-- an alert deferred meanwhile keeps its row in notifications with digest_kind
-- set until a later message covers it.
CREATE TABLE notification_digests (
    team           text        NOT NULL,
    kind           text        NOT NULL,
    last_posted_at timestamptz NOT NULL DEFAULT 'epoch',
    PRIMARY KEY (team, kind)
);
ALTER TABLE notifications ADD COLUMN digest_kind   text;
ALTER TABLE notifications ADD COLUMN waiting_since timestamptz;
CREATE INDEX notifications_deferred ON notifications (team, digest_kind) WHERE sent_at IS NULL AND digest_kind IS NOT NULL;

-- Leads for the same person (same name and company) that arrive together are
-- looked up one after the other: the first claims the person until its
-- contact exists (or the claim expires), the second waits and then finds it.
-- person is a digest of name and company, not the names themselves.
CREATE TABLE person_claims (
    person     text        PRIMARY KEY,
    holder     text        NOT NULL,
    contact_id text        NOT NULL DEFAULT '',
    claimed_at timestamptz NOT NULL DEFAULT now()
);
