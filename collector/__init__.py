"""The HTTP collector: Segment-style tracking API and signed webhooks into ``cdp.events``.

``app.py`` assembles the Starlette application; ``main.py`` runs it with uvicorn
(``cdpflow collect``). Every event is normalized to the JSON shape of
:mod:`cdpflow.json_events`, validated against ``cdp.Event`` and produced keyed by customer
id (else anonymous id); a 2xx answers only after Kafka acknowledged every event of the
request.
"""

__all__: list[str] = []
