-- Live console: every entry of a ticket's timeline (a comment, an acknowledgement, a
-- rectification, an occurrence...) is announced on channel bk_live when its transaction
-- commits, with the ticket's site so the API hands it only to users who may see that site.
-- The payload names the ticket and the entry's kind, never its text.

CREATE FUNCTION bk_live_ticket_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    site text;
BEGIN
    SELECT t.site_id INTO site FROM tickets t WHERE t.id = NEW.ticket_id;
    PERFORM pg_notify('bk_live', jsonb_build_object(
        'kind', 'ticket_event', 'site_id', site, 'id', NEW.id, 'ticket_id', NEW.ticket_id,
        'event', NEW.kind, 'op', 'insert')::text);
    RETURN NULL;
END $$;

CREATE TRIGGER ticket_events_live AFTER INSERT ON ticket_events
    FOR EACH ROW EXECUTE FUNCTION bk_live_ticket_event();
