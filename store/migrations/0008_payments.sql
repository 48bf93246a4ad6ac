-- Payment status from Stripe (integration invoice-payments): Stripe's webhook
-- events, and the statuses reconciliation reads from Stripe, set an invoice's
-- stripe_status once per event and in the order Stripe created them.

-- When Stripe created the event that set stripe_status (for a reconcile
-- repair: when the invoice reached it). NULL while only billing wrote it.
ALTER TABLE invoices ADD COLUMN stripe_status_at timestamptz;
CREATE INDEX invoices_stripe_invoice_id ON invoices (stripe_invoice_id) WHERE stripe_invoice_id IS NOT NULL;

-- A Stripe invoice's statuses in lifecycle order. Of two statuses set at the
-- same time the higher wins; paid and void are both final. Unknown: -1.
CREATE FUNCTION stripe_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE status
        WHEN 'draft' THEN 0
        WHEN 'open' THEN 1
        WHEN 'uncollectible' THEN 2
        WHEN 'paid' THEN 3
        WHEN 'void' THEN 3
        ELSE -1
    END
$$;

-- Whether a status reported at new_at supersedes the one an invoice holds:
-- a newer event wins, an older one never does; at the same time the later
-- lifecycle status wins. A status written without a time (billing's) yields
-- to any event that does not go back in the lifecycle.
CREATE FUNCTION stripe_status_supersedes(new_status text, new_at timestamptz, cur_status text, cur_at timestamptz) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN cur_status IS NULL THEN true
        WHEN cur_at IS NULL THEN stripe_status_rank(new_status) >= stripe_status_rank(cur_status)
        WHEN new_at <> cur_at THEN new_at > cur_at
        ELSE stripe_status_rank(new_status) > stripe_status_rank(cur_status)
    END
$$;

-- Every payment event an item handled, by Stripe's event ID (or the
-- reconcile event's): an event is handled once, whatever retries or
-- re-deliveries bring it again. outcome: applied (it set the status), older
-- (a newer status was there), superseded (the invoice is billed as another
-- Stripe invoice now). Kept: the IDs are the idempotency keys.
CREATE TABLE payment_events (
    event_id          text        PRIMARY KEY,
    stripe_invoice_id text        NOT NULL,
    invoice_id        text        NOT NULL,
    type              text        NOT NULL,
    status            text        NOT NULL,
    created           timestamptz NOT NULL,
    outcome           text        NOT NULL CHECK (outcome IN ('applied', 'older', 'superseded')),
    handled_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_invoice ON payment_events (invoice_id, created);

-- The Stripe webhook deliveries the intake accepted, by what Stripe signed
-- ("<timestamp>.<body>", SHA-256): receiving one again is a replay, refused.
-- Stripe re-delivers an event with a new timestamp and signature, which is
-- a new delivery (the event itself is applied once, by payment_events).
-- A delivery older than the signature tolerance is refused as stale before
-- it is looked up here, so rows older than that are pruned.
CREATE TABLE stripe_webhook_deliveries (
    delivery    text        PRIMARY KEY,
    event_id    text        NOT NULL,
    signed_at   timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_webhook_deliveries_signed_at ON stripe_webhook_deliveries (signed_at);
