"""The mailer as a sink: :meth:`TriggerMailer.add` takes one message of the triggers
topic and returns once its outcome is durable; the caller may then commit its offset.

Per ``cdp.Trigger``: dedupe on ``trigger_id`` (the idempotency key) → template for the
rule → the customer's profile → :func:`~mailer.policy.decide` → skip, defer (quiet hours)
or render and deliver with retries → record the outcome; what cannot be delivered or
rendered goes to the dead-letter topic first. ``TagChange`` records are ignored.
Deferred triggers come back through :meth:`TriggerMailer.run_due`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cdpflow.codec import AvroCodec
from cdpflow.errors import CodecError
from mailer.dead_letters import DeadLetterSink, MailerDeadLetter
from mailer.delivery import Backoff, Delivery, deliver_with_retries
from mailer.exceptions import TemplateError
from mailer.ledger import Deferred, Ledger, Outcome
from mailer.message import OutgoingEmail
from mailer.policy import Defer, PolicyConfig, Skip, decide
from mailer.templates import Renderer, context_for, template_for
from state.store import StoredProfile

__all__ = ["MailerConfig", "ProfileLookup", "Result", "TriggerMailer", "TriggerMessage"]

log = logging.getLogger("cdpflow.mailer")


@dataclass(frozen=True, slots=True)
class TriggerMessage:
    """One message of the triggers topic, undecoded."""

    raw: bytes | None
    key: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Result:
    """``status``: sent, duplicate, skipped, deferred, dead_lettered or ignored."""

    status: str
    reason: str = ""
    trigger_id: str | None = None


class ProfileLookup(Protocol):
    """The customer's latest profile; :meth:`refresh` catches up with the profiles topic."""

    def get(self, customer_id: str) -> StoredProfile | None: ...

    def refresh(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MailerConfig:
    sender: str
    shop_name: str
    policy: PolicyConfig
    backoff: Backoff
    profile_wait_ms: int = 5_000


class TriggerMailer:
    def __init__(
        self,
        config: MailerConfig,
        *,
        ledger: Ledger,
        profiles: ProfileLookup,
        renderer: Renderer,
        delivery: Delivery,
        dead_letters: DeadLetterSink,
        codec: AvroCodec,
        now_ms: Callable[[], int],
        sleep: Callable[[float], None],
    ) -> None:
        self._cfg = config
        self._ledger = ledger
        self._profiles = profiles
        self._renderer = renderer
        self._delivery = delivery
        self._dead = dead_letters
        self._codec = codec
        self._now_ms = now_ms
        self._sleep = sleep

    def add(self, msg: TriggerMessage) -> Result:
        """Handle one message; when this returns, its outcome is durable."""
        try:
            name, record = self._codec.decode(msg.raw, logical=False)
        except CodecError as exc:
            self._dead_letter(msg, None, exc.reason, str(exc), type(exc).__name__)
            return self._done(Result("dead_lettered", exc.reason), None)
        if name != "cdp.Trigger":
            return Result("ignored", name)
        trigger_id = record["trigger_id"]
        seen = self._ledger.outcome(trigger_id)
        if seen is not None:
            return self._done(Result("duplicate", seen.outcome, trigger_id), record)
        return self._done(self._process(record, msg, None), record)

    def run_due(self) -> list[Result]:
        """Decide again for deferred triggers whose time has come."""
        results = []
        for item in self._ledger.due(self._now_ms()):
            msg = TriggerMessage(item.raw, item.key, item.topic, item.partition, item.offset)
            _, record = self._codec.decode(item.raw, logical=False)
            results.append(self._done(self._process(record, msg, item), record))
        return results

    def flush(self) -> None:
        """Nothing is buffered: every outcome is durable when :meth:`add` returns."""

    def _process(
        self, trigger: Mapping[str, Any], msg: TriggerMessage, deferred: Deferred | None
    ) -> Result:
        trigger_id: str = trigger["trigger_id"]
        template = template_for(trigger)
        if template is None or not self._renderer.has(template):
            return self._record(trigger_id, "skipped", "no_template", deferred)
        profile = self._profile(trigger["customer_id"], int(trigger["emitted_at"]))
        now = self._now_ms()
        decision = decide(
            trigger, profile, self._ledger.sends(trigger["customer_id"]), now, self._cfg.policy
        )
        if isinstance(decision, Skip):
            return self._record(trigger_id, "skipped", decision.reason, deferred)
        if isinstance(decision, Defer):
            raw = msg.raw or b""
            item = Deferred(decision.until_ms, trigger_id, raw, msg.key, msg.topic,
                            msg.partition, msg.offset)  # fmt: skip
            self._ledger.defer(item, Outcome("deferred", "quiet_hours", now), replaces=deferred)
            return Result("deferred", "quiet_hours", trigger_id)
        try:
            rendered = self._renderer.render(
                template, context_for(trigger, profile, self._cfg.shop_name)
            )
        except TemplateError as exc:
            self._dead_letter(msg, trigger_id, exc.reason, str(exc), type(exc).__name__)
            return self._record(trigger_id, "dead_lettered", exc.reason, deferred)
        email = OutgoingEmail(
            trigger_id=trigger_id,
            rule=trigger["rule"],
            template=template,
            sender=self._cfg.sender,
            to=decision.to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
        )
        gave_up = deliver_with_retries(self._delivery, email, self._cfg.backoff, self._sleep)
        if gave_up is None:
            self._ledger.record(trigger_id, Outcome("sent", template, self._now_ms()),
                                sent_to_customer=trigger["customer_id"], done=deferred)  # fmt: skip
            return Result("sent", template, trigger_id)
        error = gave_up.error
        detail = f"{error} after {gave_up.attempts} attempt(s)"
        self._dead_letter(msg, trigger_id, error.reason, detail, type(error).__name__)
        return self._record(trigger_id, "dead_lettered", error.reason, deferred)

    def _profile(self, customer_id: str, emitted_at: int) -> StoredProfile | None:
        """The profile; a trigger can overtake its customer's first snapshot (snapshots
        are coalesced), so a missing one is waited for up to ``profile_wait_ms`` after the
        trigger was emitted."""
        profile = self._profiles.get(customer_id)
        while profile is None and self._now_ms() < emitted_at + self._cfg.profile_wait_ms:
            self._sleep(0.25)
            self._profiles.refresh()
            profile = self._profiles.get(customer_id)
        return profile

    def _record(
        self, trigger_id: str, status: str, reason: str, deferred: Deferred | None
    ) -> Result:
        self._ledger.record(trigger_id, Outcome(status, reason, self._now_ms()), done=deferred)
        return Result(status, reason, trigger_id)

    def _dead_letter(
        self, msg: TriggerMessage, trigger_id: str | None, reason: str, error: str, kind: str
    ) -> None:
        self._dead.send(
            MailerDeadLetter(
                reason=reason,
                error=error,
                error_type=kind,
                raw=msg.raw,
                key=msg.key,
                trigger_id=trigger_id,
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                seen_at=self._now_ms(),
            )
        )

    def _done(self, result: Result, trigger: Mapping[str, Any] | None) -> Result:
        rule = None if trigger is None else trigger.get("rule")
        log.info("trigger %s rule=%s status=%s reason=%s", result.trigger_id, rule,
                 result.status, result.reason)  # fmt: skip
        return result
