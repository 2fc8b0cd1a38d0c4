-- Change notifications: every registry change records an audit event in
-- the change's own transaction (model versions, stages, aliases, serving
-- configs, rollouts; API keys under the model ''), so one trigger on
-- audit_events notifies channel ferroserve_registry with the model's name.
-- PostgreSQL delivers it when the transaction commits (never for one that
-- rolls back), and replicas listening on the channel follow the change at
-- once instead of at their next poll.
CREATE FUNCTION ferroserve_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ferroserve_registry', NEW.model);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_notify_change
    AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION ferroserve_notify_change();
