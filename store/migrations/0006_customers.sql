-- The business's own customer records: PostgreSQL is their source of truth.
-- The customer sync keeps each one consistent with a CRM company, field by
-- field, in both directions; version and updated_at let it write optimistically
-- and poll for changes.
CREATE TABLE customers (
    -- like "CUST-1001": letters, digits, '.', '_', '~' and '-'
    id              text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._~-]+$'),
    legal_name      text        NOT NULL,
    domain          text        NOT NULL DEFAULT '',
    billing_email   text        NOT NULL DEFAULT '',
    phone           text        NOT NULL DEFAULT '',
    address_line1   text        NOT NULL DEFAULT '',
    city            text        NOT NULL DEFAULT '',
    postal_code     text        NOT NULL DEFAULT '',
    -- an ISO 3166-1 alpha-2 code in capitals, or '' when unknown
    country         text        NOT NULL DEFAULT '' CHECK (country ~ '^([A-Z]{2})?$'),
    -- like "net30"
    payment_terms   text        NOT NULL DEFAULT '',
    -- whole units of the customer's currency
    credit_limit    bigint      NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
    industry        text        NOT NULL DEFAULT '',
    lifecycle_stage text        NOT NULL DEFAULT '',
    account_owner   text        NOT NULL DEFAULT '',
    archived        boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint      NOT NULL DEFAULT 1
);

-- Optimistic concurrency and change polling: an update that changes any
-- column bumps version by one and stamps updated_at; one that changes nothing
-- changes neither. Both belong to this trigger: a value an UPDATE gives them is
-- ignored. clock_timestamp(), not now(), so that two updates in one
-- transaction still get different times.
CREATE FUNCTION customers_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version;
    NEW.updated_at := OLD.updated_at;
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END $$;
CREATE TRIGGER customers_version BEFORE UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION customers_bump_version();

-- Change polling reads customers in (updated_at, id) order, page by page.
CREATE INDEX customers_updated_at_id ON customers (updated_at, id);

-- How far a poller has read a source of changes, by name.
CREATE TABLE sync_watermarks (
    name       text        PRIMARY KEY,
    at         timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Records a person decided to ignore (say, a CRM company that is not a
-- customer), so that a later poll does not ask about them again.
CREATE TABLE ignored_records (
    integration text        NOT NULL,
    system      text        NOT NULL,
    record_id   text        NOT NULL,
    actor       text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration, system, record_id)
);
