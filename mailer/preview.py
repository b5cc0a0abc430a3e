"""``cdpflow mailer preview RULE``: render the email a rule's trigger would get, both parts
and the headers, to the terminal or to files; ``--send-to`` sends one test message.

The trigger is a built-in sample for the rule (:func:`sample_trigger`: a cart with names
and prices, viewed products, a lapsed customer), or ``--trigger-file`` (a ``cdp.Trigger``
as JSON; fields it leaves out come from the sample). ``--customer ID`` renders it for
that customer's profile in the mailer's profile store (``<state dir>/profiles``; the
mailer must not be running on it) and says what the policy would decide.

A test send goes through the configured delivery (SMTP or webhook) to ``--send-to`` only,
with ``[TEST]`` before the subject and a fresh ``preview-`` trigger id; it touches neither
the ledger nor the frequency cap, and its unsubscribe link names ``preview:<customer>``, so
a tester who clicks it unsubscribes no real customer. Errors are one line, exit 2.

Without ``CDPFLOW_MAILER_UNSUBSCRIBE_URL`` (which the mailer itself does not start
without) the preview still renders, with a placeholder link that says what is missing
(:data:`mailer.links.PLACEHOLDER`, in ``.invalid``) in the headers and both parts, and
one warning line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from cdpflow.codec import default_codec
from cdpflow.errors import CdpflowError, ConfigError
from mailer.addresses import InvalidRecipient, header_text, recipient
from mailer.exceptions import DeliveryError
from mailer.links import PLACEHOLDER
from mailer.message import OutgoingEmail, to_mime
from mailer.settings import MailerSettings
from mailer.templates import Renderer, context_for, template_for
from state.store import StoredProfile

__all__ = ["main", "sample_trigger"]

_HOUR_MS = 3_600_000
_NO_URL = (
    "CDPFLOW_MAILER_UNSUBSCRIBE_URL is not set: the unsubscribe link is a placeholder, "
    "and 'cdpflow mailer' will not start without it"
)


def sample_trigger(rule: str, now_ms: int) -> dict[str, Any]:
    """A ``cdp.Trigger`` as the rule would emit it, with the details an email can show."""
    excerpt: dict[str, Any] = {"email": "ada@example.com", "first_name": "Ada", "timezone": None,
               "lifecycle": "active", "tags": [], "segments": []}  # fmt: skip
    base: dict[str, Any] = {
        "trigger_id": f"sample-{rule}", "rule": rule, "customer_id": "sample-customer",
        "email": "ada@example.com", "category": None, "product_ids": [], "items": [],
        "amount": None, "currency": None, "attributes": {}, "profile": excerpt,
        "event_time": now_ms - _HOUR_MS, "emitted_at": now_ms,
    }  # fmt: skip
    if rule == "abandoned_cart":
        lines = [("bag-7", "Tote Bag", "bags", 49.5, 2), ("sho-021", "Trail Runner", "shoes",
                                                          89.9, 1)]  # fmt: skip
        base["items"] = [
            {
                "product": {
                    "product_id": pid,
                    "name": name,
                    "category": cat,
                    "price": price,
                    "currency": "EUR",
                },
                "quantity": qty,
            }
            for pid, name, cat, price, qty in lines
        ]
        base["amount"] = round(sum(price * qty for *_, price, qty in lines), 2)
        base["currency"] = "EUR"
        base["attributes"] = {"tag": '"abandoned_cart"'}
    elif rule == "category_interest":
        base["category"] = "shoes"
        base["product_ids"] = ["sho-021", "sho-026", "sho-030"]
        base["attributes"] = {"views": "3"}
    elif rule == "win_back":
        base["attributes"] = {"from": '"active"', "to": '"lapsed"'}
        base["profile"] = {**excerpt, "lifecycle": "lapsed"}
    else:
        base["category"] = "bags"
        base["product_ids"] = ["bag-7"]
    return base


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cdpflow mailer preview",
        description="Render a rule's email (headers, text, HTML); optionally send one test.",
    )
    p.add_argument("rule", help="the rule (template) to preview, e.g. abandoned_cart")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--trigger-file", type=Path, metavar="F",
                     help="a cdp.Trigger as JSON (missing fields from the sample)")  # fmt: skip
    src.add_argument("--customer", metavar="ID",
                     help="render for this customer's profile in the mailer's store")  # fmt: skip
    p.add_argument("--state-dir", type=Path, help="the mailer's state dir (for --customer)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write RULE.txt, RULE.html and RULE.eml there, not to stdout")  # fmt: skip
    p.add_argument("--send-to", metavar="ADDRESS",
                   help="send one test message to this address only")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = MailerSettings.from_env(for_preview=True)
        if args.state_dir is not None:
            settings = replace(settings, state_dir=args.state_dir)
        if settings.links.unsubscribe_url is None:
            print(f"cdpflow mailer preview: warning: {_NO_URL}", file=sys.stderr)
        return _preview(args, settings)
    except CdpflowError as exc:
        print(f"cdpflow mailer preview: error: {exc}", file=sys.stderr)
        return 2


def _preview(args: argparse.Namespace, settings: MailerSettings) -> int:
    now_ms = time.time_ns() // 1_000_000
    trigger = sample_trigger(args.rule, now_ms)
    if args.trigger_file is not None:
        trigger = {**trigger, **_trigger_file(args.trigger_file), "rule": args.rule}
    profile = None
    if args.customer is not None:
        trigger["customer_id"] = args.customer
        profile = _profile(settings, args.customer)
    try:
        default_codec().encode("cdp.Trigger", trigger)
    except (ValueError, TypeError, CdpflowError) as exc:
        raise ConfigError(f"the trigger does not fit cdp.Trigger ({type(exc).__name__})") from None
    renderer = Renderer(settings.templates_dir)
    template = template_for(trigger)
    if template is None or not renderer.has(template):
        template = settings.fallback_template or "generic"
    if not renderer.has(template):
        raise ConfigError(f"no template {template} for rule {args.rule}")
    test_id = f"preview-{uuid.uuid4().hex}"
    token_customer = trigger["customer_id"]
    if args.send_to is not None:
        token_customer = f"preview:{token_customer}"
    unsubscribe = settings.links.unsubscribe(token_customer, test_id, now_ms / 1000)
    if unsubscribe is None:  # no URL (warned above), or ids too long to sign
        unsubscribe = PLACEHOLDER
    from mailer.worker import catalog_for

    context = context_for(trigger, profile, settings.shop_name, settings.links,
                          unsubscribe.url, catalog_for(settings))  # fmt: skip
    rendered = renderer.render(template, context)
    to = args.send_to or (profile.email if profile and profile.email else trigger["email"])
    try:
        to = recipient(to or "", "--send-to" if args.send_to else "recipient")
    except InvalidRecipient as exc:
        raise ConfigError(str(exc)) from None
    subject = header_text(rendered.subject)
    email = OutgoingEmail(
        trigger_id=test_id,
        rule=args.rule,
        template=template,
        sender=settings.sender,
        to=to,
        subject=f"[TEST] {subject}" if args.send_to else subject,
        text=rendered.text,
        html=rendered.html,
        list_unsubscribe=unsubscribe.header,
    )
    mime = to_mime(email, settings.shop_name, now_ms / 1000)
    if args.customer is not None:
        print(f"policy: {_policy(trigger, profile, settings, now_ms)}")
    if args.out is not None:
        _write(args.out, args.rule, email, mime.as_bytes())
    else:
        _show(email, mime)
    if args.send_to is not None:
        _send(settings, email)
        print(f"test message sent to {args.send_to} ({settings.delivery})")
    return 0


def _trigger_file(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"--trigger-file: cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError:
        raise ConfigError(f"--trigger-file: {path} is not JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--trigger-file: {path} must hold one JSON object (a cdp.Trigger)")
    return data


def _profile(settings: MailerSettings, customer_id: str) -> StoredProfile:
    from state.store import RocksProfileStore
    from state.store.exceptions import StoreError

    path = settings.state_dir / "profiles"
    if not path.is_dir():
        raise ConfigError(f"--customer: no profile store at {path} (set --state-dir)")
    try:
        store = RocksProfileStore(path)
    except StoreError as exc:
        raise ConfigError(f"--customer: {exc} (stop the mailer, or use a copy)") from None
    try:
        profile = store.get(customer_id)
    finally:
        store.close()
    if profile is None:
        raise ConfigError(f"--customer: not in the profile store at {path}")
    return profile


def _policy(
    trigger: dict[str, Any], profile: StoredProfile | None, s: MailerSettings, now: int
) -> str:
    from mailer.policy import Defer, Send, Skip, decide

    decision = decide(trigger, profile, [], now, s.policy)
    if isinstance(decision, Send):
        return "would send"
    if isinstance(decision, Skip):
        return f"would skip ({decision.reason})"
    if isinstance(decision, Defer):
        return "would defer (quiet hours)"
    return f"would refuse ({decision.reason})"


def _show(email: OutgoingEmail, mime: Any) -> None:
    for name in ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"):
        if mime[name] is not None:
            print(f"{name}: {mime[name]}")
    print("\n--- text/plain ---")
    print(email.text.rstrip())
    print("\n--- text/html ---")
    print(email.html.rstrip())


def _write(out: Path, rule: str, email: OutgoingEmail, eml: bytes) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for suffix, data in (("txt", email.text.encode()), ("html", email.html.encode()),
                             ("eml", eml)):  # fmt: skip
            path = out / f"{rule}.{suffix}"
            path.write_bytes(data)
            print(path)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write to {out}: {exc.strerror}") from None


def _send(settings: MailerSettings, email: OutgoingEmail) -> None:
    from mailer.worker import build_delivery

    delivery = build_delivery(settings)
    try:
        delivery.send(email)
    except DeliveryError as exc:
        raise ConfigError(f"--send-to: not sent: {exc}") from None
    finally:
        delivery.close()
