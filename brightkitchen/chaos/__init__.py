"""``brightkitchen chaos``: kill and restart every service, broker and database while numbered
readings and edge events flow, then reconcile what was sent against what was stored.

Modules: ``servers`` (a private Mosquitto, a private PostgreSQL cluster and a TCP proxy for
the edge uplink, each one the run may kill), ``sensors`` (numbered readings over QoS 1),
``edgebox`` (numbered violations through the edge box's outbox), ``faults`` (the schedule),
``reconcile`` (the counts), ``report`` (text and JSON), ``run`` (the orchestration) and
``fuzz`` (hypothesis over every payload type ingest consumes).
"""
