-- rate_slots spaces the requests to a target across every worker process:
-- each request reserves the next send time, at least the target's interval
-- after the one reserved before it (see store.ReserveSend).
CREATE TABLE rate_slots (
    target  text        PRIMARY KEY,
    next_at timestamptz NOT NULL
);
