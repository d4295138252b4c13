-- Indexes the API reads and the ticket engine need: a ticket's findings and notifications,
-- a notification's delivery log, alarms newest first, the delivery log newest first.
CREATE INDEX findings_ticket_idx ON findings (ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX findings_open_subject_idx ON findings (site_id, rule, subject, id)
    WHERE processed_at IS NULL;
CREATE INDEX notifications_ticket_idx ON notifications (ticket_id);
CREATE INDEX notifications_created_idx ON notifications (created_at DESC, id DESC);
CREATE INDEX notification_attempts_notification_idx ON notification_attempts (notification_id, id);
CREATE INDEX alarms_raised_idx ON alarms (raised_at DESC, id DESC);
CREATE INDEX tickets_opened_idx ON tickets (opened_at DESC, id DESC);
