"""``cdpflow mailer``: email automation on the triggers topic.

A Kafka consumer group reads ``cdp.triggers``; each ``cdp.Trigger`` goes through
:class:`~mailer.sink.TriggerMailer` (``add`` / ``flush``): durable dedupe on
``trigger_id``, consent and frequency cap and quiet hours (:mod:`mailer.policy`),
rendering (:mod:`mailer.templates`), delivery by SMTP or webhook behind
:class:`~mailer.delivery.Delivery`, retries with backoff, dead letters for what cannot be
delivered. Offsets are committed only after a trigger is delivered, skipped, deferred or
dead-lettered (:mod:`mailer.worker`).
"""
