-- A notification is claimed for a while by the attempt sending it, so that two
-- attempts of the same step delivered at once (Temporal delivers activity
-- tasks at least once) cannot both post.
ALTER TABLE notifications ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
