-- The business's own billing records: PostgreSQL is their source of truth for
-- customers, amounts and lines; Stripe owns payment status (stripe_status).
CREATE TABLE invoices (
    id                 text        PRIMARY KEY,
    customer_id        text        NOT NULL,
    customer_name      text        NOT NULL,
    customer_email     text        NOT NULL,
    currency           text        NOT NULL,
    due_date           date        NOT NULL,
    -- draft: being prepared; ready: to bill; billed: in Stripe; rejected and
    -- cancelled: decided not to bill.
    status             text        NOT NULL DEFAULT 'ready'
                       CHECK (status IN ('draft', 'ready', 'billed', 'rejected', 'cancelled')),
    stripe_customer_id text,
    stripe_invoice_id  text,
    stripe_status      text,
    billed_at          timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_status ON invoices (status);

CREATE TABLE invoice_lines (
    invoice_id  text    NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    line_no     integer NOT NULL,
    description text    NOT NULL,
    quantity    bigint  NOT NULL,
    -- minor units of the invoice's currency (cents)
    unit_amount bigint  NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);
