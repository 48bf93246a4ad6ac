-- The audit trail by actor, newest first: the operator console's search
-- ("what did alice decide?", store.AuditByActor).
CREATE INDEX audit_events_actor_at ON audit_events (actor, at DESC);
