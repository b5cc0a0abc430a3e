"""The mailer as a sink: :meth:`TriggerMailer.add` takes one message of the triggers
topic and returns once its outcome is durable; the caller may then commit its offset.

Per ``cdp.Trigger``: dedupe on ``trigger_id`` (the idempotency key) → template for the
rule (else the fallback template, when configured) → the customer's profile →
:func:`~mailer.policy.decide` → skip, defer (quiet hours) or render (with a signed
one-click unsubscribe link, :mod:`mailer.links`) and deliver with retries → record the
outcome; what cannot be delivered or rendered, and a recipient that is not one valid
address, goes to the dead-letter topic first. ``TagChange`` records are ignored.
Deferred triggers come back through :meth:`TriggerMailer.run_due`.

Every email is a marketing email and carries ``List-Unsubscribe``: a mailer without an
unsubscribe URL is not built (``ConfigError``), and a trigger whose link cannot be signed
(its ids too long for a token) is dead-lettered (``no_unsubscribe_link``), never sent
without one.

The failure boundary: any other exception while handling one trigger (or one deferred
trigger) makes it a ``processing_error`` dead letter naming the stage and the exception
type (:mod:`mailer.failures`), counted in ``cdpflow_mailer_processing_errors``, and the
mailer goes on; the offset is then committed past it, so a poison trigger cannot stop
the mailer again on restart. Only :class:`~mailer.exceptions.Unavailable` (the
dead-letter topic or the profiles feed unreachable: no trigger's fault) goes up, and the
trigger is not committed. Transient delivery errors are retried as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cdpflow.codec import AvroCodec
from cdpflow.errors import CodecError, ConfigError
from mailer.addresses import header_text
from mailer.catalog import Catalog
from mailer.dead_letters import DeadLetterSink, MailerDeadLetter
from mailer.delivery import Backoff, Delivery, deliver_with_retries
from mailer.exceptions import TemplateError, Unavailable
from mailer.failures import PROCESSING_ERROR, describe
from mailer.ledger import Deferred, Ledger, Outcome
from mailer.links import UNSUBSCRIBE_URL_REQUIRED, LinkConfig
from mailer.message import OutgoingEmail
from mailer.metrics import MailerMetrics
from mailer.policy import Defer, PolicyConfig, Refuse, Skip, decide
from mailer.templates import Renderer, context_for, template_for
from state.store import StoredProfile

__all__ = ["MailerConfig", "ProfileLookup", "Result", "TriggerMailer", "TriggerMessage"]

log = logging.getLogger("cdpflow.mailer")

#: The dead-letter reason of a trigger whose email could get no unsubscribe link.
NO_UNSUBSCRIBE_LINK = "no_unsubscribe_link"
#: A trigger id goes into the ``Message-ID`` and ``X-Cdpflow-Trigger`` headers and the
#: ledger's keys: a dot-atom of letters, digits, ``_`` and ``-`` (the dataflow's are hex).
_TRIGGER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}(?:\.[A-Za-z0-9_-]{1,128}){0,3}")


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
    links: LinkConfig = field(default_factory=LinkConfig)
    #: The template of a rule that has none of its own; ``None``: such triggers are skipped.
    fallback_template: str | None = None
    catalog: Catalog = field(default_factory=Catalog)


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
        metrics: MailerMetrics | None = None,
    ) -> None:
        if config.links.unsubscribe_url is None or not config.links.secrets:
            raise ConfigError(UNSUBSCRIBE_URL_REQUIRED)
        self._cfg = config
        self._ledger = ledger
        self._profiles = profiles
        self._renderer = renderer
        self._delivery = delivery
        self._dead = dead_letters
        self._codec = codec
        self._now_ms = now_ms
        self._sleep = sleep
        self.metrics = metrics or MailerMetrics()

    def add(self, msg: TriggerMessage) -> Result:
        """Handle one message; when this returns, its outcome is durable (see the module
        docstring for the failure boundary)."""
        at = _Progress()
        try:
            result = self._add(msg, at)
        except Unavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - the failure boundary (module docstring)
            result = self._failed(msg, at, exc, None)
        self.metrics.triggers.labels(result.status).inc()
        return result

    def _add(self, msg: TriggerMessage, at: _Progress) -> Result:
        try:
            name, record = self._codec.decode(msg.raw, logical=False)
        except CodecError as exc:
            self._dead_letter(msg, None, exc.reason, str(exc), type(exc).__name__)
            return self._done(Result("dead_lettered", exc.reason), None)
        if name != "cdp.Trigger":
            return Result("ignored", name)
        trigger_id = record["trigger_id"]
        if not isinstance(trigger_id, str) or not _TRIGGER_ID.fullmatch(trigger_id):
            detail = "trigger_id: not 1-128 letters, digits, '_' or '-' (dot-separated)"
            self._dead_letter(msg, None, "invalid_trigger", detail, "InvalidTrigger")
            return self._done(Result("dead_lettered", "invalid_trigger"), None)
        at.trigger_id, at.stage = trigger_id, "dedupe"
        seen = self._ledger.outcome(trigger_id)
        if seen is not None:
            return self._done(Result("duplicate", seen.outcome, trigger_id), record)
        return self._done(self._process(record, msg, None, at), record)

    def run_due(self) -> list[Result]:
        """Decide again for deferred triggers whose time has come. A deferred trigger
        that fails is dead-lettered and leaves the queue, like a new one."""
        results = []
        for item in self._ledger.due(self._now_ms()):
            msg = TriggerMessage(item.raw, item.key, item.topic, item.partition, item.offset)
            at = _Progress(trigger_id=item.trigger_id)
            try:
                _, record = self._codec.decode(item.raw, logical=False)
                result = self._done(self._process(record, msg, item, at), record)
            except Unavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - the failure boundary (module docstring)
                result = self._failed(msg, at, exc, item)
            self.metrics.triggers.labels(result.status).inc()
            results.append(result)
        return results

    def flush(self) -> None:
        """Nothing is buffered: every outcome is durable when :meth:`add` returns."""

    def _failed(
        self, msg: TriggerMessage, at: _Progress, exc: Exception, deferred: Deferred | None
    ) -> Result:
        """The failure boundary's side: a ``processing_error`` dead letter, counted,
        logged by type and place only, and the outcome recorded when the id is known."""
        detail = describe(at.stage, exc)
        self.metrics.processing_errors.labels(at.stage).inc()
        log.error("trigger %s: %s; dead-lettered (%s)", at.trigger_id, detail, PROCESSING_ERROR)
        self._dead_letter(msg, at.trigger_id, PROCESSING_ERROR, detail, type(exc).__name__)
        if at.trigger_id is not None:
            return self._record(at.trigger_id, "dead_lettered", PROCESSING_ERROR, deferred)
        return Result("dead_lettered", PROCESSING_ERROR)

    def _process(
        self,
        trigger: Mapping[str, Any],
        msg: TriggerMessage,
        deferred: Deferred | None,
        at: _Progress,
    ) -> Result:
        trigger_id: str = trigger["trigger_id"]
        at.stage = "template"
        template = template_for(trigger)
        if template is None or not self._renderer.has(template):
            template = self._cfg.fallback_template
        if template is None or not self._renderer.has(template):
            return self._record(trigger_id, "skipped", "no_template", deferred)
        at.stage = "profile"
        profile = self._profile(trigger["customer_id"], int(trigger["emitted_at"]))
        now = self._now_ms()
        at.stage = "policy"
        decision = decide(
            trigger, profile, self._ledger.sends(trigger["customer_id"]), now, self._cfg.policy
        )
        if isinstance(decision, Skip):
            return self._record(trigger_id, "skipped", decision.reason, deferred)
        if isinstance(decision, Refuse):
            self._dead_letter(
                msg, trigger_id, decision.reason, decision.detail, decision.error_type
            )
            return self._record(trigger_id, "dead_lettered", decision.reason, deferred)
        if isinstance(decision, Defer):
            raw = msg.raw or b""
            item = Deferred(decision.until_ms, trigger_id, raw, msg.key, msg.topic,
                            msg.partition, msg.offset)  # fmt: skip
            self._ledger.defer(item, Outcome("deferred", "quiet_hours", now), replaces=deferred)
            return Result("deferred", "quiet_hours", trigger_id)
        at.stage = "render"
        links = self._cfg.links
        unsubscribe = links.unsubscribe(trigger["customer_id"], trigger_id, now / 1000)
        if unsubscribe is None:
            detail = "no List-Unsubscribe link: the ids do not fit an unsubscribe token"
            self._dead_letter(msg, trigger_id, NO_UNSUBSCRIBE_LINK, detail, "NoUnsubscribeLink")
            return self._record(trigger_id, "dead_lettered", NO_UNSUBSCRIBE_LINK, deferred)
        context = context_for(trigger, profile, self._cfg.shop_name, links, unsubscribe.url,
                              self._cfg.catalog)  # fmt: skip
        try:
            rendered = self._renderer.render(template, context)
        except TemplateError as exc:
            self._dead_letter(msg, trigger_id, exc.reason, str(exc), type(exc).__name__)
            return self._record(trigger_id, "dead_lettered", exc.reason, deferred)
        at.stage = "message"
        email = OutgoingEmail(
            trigger_id=trigger_id,
            rule=trigger["rule"],
            template=template,
            sender=self._cfg.sender,
            to=decision.to,
            subject=header_text(rendered.subject),
            text=rendered.text,
            html=rendered.html,
            list_unsubscribe=unsubscribe.header,
        )
        at.stage = "deliver"
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
        self.metrics.dead_letters.labels(reason).inc()
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


@dataclass(slots=True)
class _Progress:
    """How far one trigger got: what the failure boundary reports."""

    stage: str = "decode"
    trigger_id: str | None = None
