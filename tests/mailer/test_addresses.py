"""Recipient parsing and header text: what reaches a header or an SMTP envelope."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailer.addresses import MAX_HEADER_TEXT, InvalidRecipient, header_text, recipient


@pytest.mark.parametrize(
    "good",
    ["ada@example.com", "a.b-c+tag@mail.example.co.uk", "o'brien@example.ie",
     "x_y=z!#$%&*/?^`{|}~@sub-1.example.com", "A@EXAMPLE.COM"],
)  # fmt: skip
def test_plain_addresses_pass_unchanged(good: str) -> None:
    assert recipient(good, "profile.email") == good
    assert recipient(f"  {good} ", "profile.email") == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("a@victim.example\r\nBcc: b@evil.example", "control character"),
        ("a@victim.example\nBcc: b@evil.example", "control character"),
        ("a@victim.example\rX: y", "control character"),
        ("a@victim.example\x00", "control character"),
        ("a@victim.example\t", "control character"),
        ("a\x7f@victim.example", "control character"),
        ("a@victim.example\u2028Bcc: b@evil.example", "control character"),
        ("a@victim\u200b.example", "control character"),
        ("a@victim.example, b@evil.example", "single bare address"),
        ("a@victim.example; b@evil.example", "single bare address"),
        ("a@victim.example b@evil.example", "single bare address"),
        ("Ada <a@victim.example>", "single bare address"),
        ("b@evil.example <a@victim.example>", "single bare address"),
        ('"a@victim.example"@evil.example', "single bare address"),
        ('"a b"@example.com', "single bare address"),
        ("a(comment)@example.com", "single bare address"),
        ("a@example.com(comment)", "single bare address"),
        ("undisclosed:a@victim.example;", "single bare address"),
        ("a@[127.0.0.1]", "single bare address"),
        ("a@localhost", "single bare address"),
        ("a@-example.com", "single bare address"),
        ("a@example..com", "single bare address"),
        (".a@example.com", "single bare address"),
        ("a..b@example.com", "single bare address"),
        ("a@b@example.com", "single bare address"),
        ("no-at-sign", "single bare address"),
        ("@example.com", "single bare address"),
        ("a@", "single bare address"),
        ("", "empty"),
        ("   ", "empty"),
        ("jos\u00e9@example.com", "not ASCII"),
        ("a" * 65 + "@example.com", "local part longer than 64"),
        ("a@" + "b" * 60 + "." + ("c" * 60 + ".") * 4 + "com", "longer than 254"),
        (42, "not a string"),
    ],
)
def test_anything_but_one_bare_address_is_refused_naming_the_field(bad: object, why: str) -> None:
    with pytest.raises(InvalidRecipient) as caught:
        recipient(bad, "profile.email")
    message = str(caught.value)
    assert message.startswith("profile.email: ")
    assert why in message
    assert caught.value.field == "profile.email"
    assert caught.value.reason == "invalid_recipient"
    assert "victim" not in message
    assert "evil" not in message


@given(st.text(max_size=80))
def test_whatever_passes_is_one_header_safe_address(value: str) -> None:
    try:
        out = recipient(value, "f")
    except InvalidRecipient:
        return
    assert out.count("@") == 1
    assert all(ch.isascii() and ch.isprintable() for ch in out)
    assert not any(ch in out for ch in ' ,;<>()"\\[]:')


def test_header_text_can_neither_end_the_line_nor_grow_without_bound() -> None:
    hostile = "Ada\r\nBcc: evil@example.com\x00\u2028X-Evil: 1\t!"
    out = header_text(hostile)
    assert out == "Ada Bcc: evil@example.com X-Evil: 1 !"
    assert header_text("x" * 10_000) == "x" * MAX_HEADER_TEXT
    assert header_text("  Ada,   still   looking?  ") == "Ada, still looking?"


@given(st.text())
def test_header_text_never_holds_a_control_or_line_separator(value: str) -> None:
    out = header_text(value)
    assert len(out) <= MAX_HEADER_TEXT
    assert not any(ch in out for ch in "\r\n\x00\x0b\x0c\x85\u2028\u2029")
    assert out == out.strip()
