"""A ticket's timeline as people read it.

The timeline stores who acted as the system knows them (``system``, a username,
``person:<id>`` for a notice link); the console, the API and the insurer's claim bundle show
the name people know (the person behind an account or a link), so one query serves them all.
"""

from __future__ import annotations

TIMELINE_SQL = """
SELECT e.id, e.at, e.actor, e.kind, e.note, e.data,
       CASE WHEN e.actor = 'system' THEN NULL
            WHEN e.actor LIKE 'person:%%' THEN coalesce(pp.name, substr(e.actor, 8))
            ELSE coalesce(up.name, e.actor) END AS actor_name
FROM ticket_events e
LEFT JOIN people pp ON e.actor LIKE 'person:%%' AND pp.id = substr(e.actor, 8)
LEFT JOIN users u ON u.username = e.actor
LEFT JOIN people up ON up.id = u.person_id
WHERE e.ticket_id = %s ORDER BY e.id
"""
"""A ticket's timeline with each actor as people know them: ``person:<id>`` (a notice link)
and a user linked to a person read as the person's name, ``system`` as null."""
