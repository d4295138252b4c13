-- Live console: every change a person watches for (an alarm raised or cleared, a ticket
-- opened or moved on, a capture queued or reviewed, a violation stored) is announced on
-- channel bk_live when its transaction commits. The API fans these out to the console
-- over server-sent events; the payload is small (kind, site, id, state), never the row.

CREATE FUNCTION bk_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    body jsonb;
BEGIN
    IF TG_TABLE_NAME = 'alarms' THEN
        body := jsonb_build_object('kind', 'alarm', 'site_id', NEW.site_id, 'id', NEW.id,
            'rule', NEW.rule, 'status', NEW.status, 'tier', NEW.tier,
            'subject', coalesce(NEW.sensor_id, NEW.camera_id));
    ELSIF TG_TABLE_NAME = 'tickets' THEN
        body := jsonb_build_object('kind', 'ticket', 'site_id', NEW.site_id, 'id', NEW.id,
            'rule', NEW.rule, 'status', NEW.status, 'tier', NEW.tier, 'subject', NEW.subject,
            'escalation_level', NEW.escalation_level, 'occurrences', NEW.occurrences);
    ELSIF TG_TABLE_NAME = 'capture_reviews' THEN
        body := jsonb_build_object('kind', 'review', 'site_id', NEW.site_id, 'id', NEW.id,
            'rule', NEW.rule, 'status', NEW.status, 'subject', NEW.camera_id);
    ELSE
        body := jsonb_build_object('kind', 'violation', 'site_id', NEW.site_id,
            'id', NEW.event_id, 'rule', NEW.rule, 'subject', NEW.camera_id);
    END IF;
    body := body || jsonb_build_object('op', lower(TG_OP));
    PERFORM pg_notify('bk_live', body::text);
    RETURN NULL;
END $$;

CREATE TRIGGER alarms_live AFTER INSERT OR UPDATE OF status ON alarms
    FOR EACH ROW EXECUTE FUNCTION bk_live_notify();
CREATE TRIGGER tickets_live_insert AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION bk_live_notify();
CREATE TRIGGER tickets_live_update AFTER UPDATE ON tickets
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       OR OLD.escalation_level IS DISTINCT FROM NEW.escalation_level
                       OR OLD.occurrences IS DISTINCT FROM NEW.occurrences
                       OR OLD.due_at IS DISTINCT FROM NEW.due_at
                       OR OLD.close_proposed_at IS DISTINCT FROM NEW.close_proposed_at)
    EXECUTE FUNCTION bk_live_notify();
CREATE TRIGGER capture_reviews_live AFTER INSERT OR UPDATE OF status ON capture_reviews
    FOR EACH ROW EXECUTE FUNCTION bk_live_notify();
CREATE TRIGGER violations_live AFTER INSERT ON violations
    FOR EACH ROW EXECUTE FUNCTION bk_live_notify();
