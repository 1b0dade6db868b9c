"""PII masking: e-mail addresses, IP addresses and phone numbers become fixed tokens.

Replacement tokens (dolma's, as in OLMo's pretraining data)::

    email_address  ->  |||EMAIL_ADDRESS|||
    ip_address     ->  |||IP_ADDRESS|||
    phone_number   ->  |||PHONE_NUMBER|||

E-mails and IPs use datatrove's ``PIIFormatter`` patterns as-is: its e-mail regex, and its
IPv4 regex with its validator, which masks only public (globally routable) addresses —
``192.168.0.1`` or ``127.0.0.1`` identify no one and stay. (datatrove replaces them with
example addresses in rotation; here they become the tokens above, and are counted.)
datatrove has no phone pattern, so that one is written here, kept narrow so that years,
prices, dates, versions and other numbers are left alone:

* North American numbers with separators: ``(555) 123-4567``, ``555-123-4567``,
  ``555.123.4567``, ``555 123 4567``, optionally ``+1``/``1-`` in front (the two separators
  must match);
* international numbers written with a ``+`` country code: ``+44 20 7946 0958``,
  ``+49-30-1234567``: 8 to 15 digits in groups of 1-4 (E.164's maximum is 15).

Not covered: numbers without separators or a ``+`` (``5551234567`` reads like any ID), national
numbers with a trunk zero (``020 7946 0958``), IPv6 addresses. Order: e-mails, IPs, phones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

TOKENS = {
    "email_address": "|||EMAIL_ADDRESS|||",
    "ip_address": "|||IP_ADDRESS|||",
    "phone_number": "|||PHONE_NUMBER|||",
}

_PHONE = re.compile(
    r"(?<![\w+.-])(?:"
    r"(?:\+?1[-. ]?)?(?:\(\d{3}\)[-. ]?\d{3}[-. ]\d{4}|\d{3}([-. ])\d{3}\1\d{4})"
    r"|\+\d{1,3}(?:[-. ]?\(?\d{1,4}\)?){2,6}"
    r")(?![\w+]|[-.]\d)"
)


def _phone_ok(match: str) -> bool:
    return 8 <= sum(c.isdigit() for c in match) <= 15


@cache
def _patterns() -> tuple[tuple[str, re.Pattern, Callable[[str], bool] | None], ...]:
    from datatrove.pipeline.formatters.pii import PIIFormatter

    formatter = PIIFormatter()  # its default: only public IPs
    return (
        ("email_address", formatter.emails_replacer.regex, formatter.emails_replacer.validator),
        ("ip_address", formatter.ip_replacer.regex, formatter.ip_replacer.validator),
        ("phone_number", _PHONE, _phone_ok),
    )


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Mask e-mails, public IPs and phone numbers -> (text, {kind: count}); every kind of
    ``TOKENS`` is in the counts, 0 when none was found."""
    counts = dict.fromkeys(TOKENS, 0)
    for kind, pattern, valid in _patterns():
        token = TOKENS[kind]

        def replace(match: re.Match, kind: str = kind, token: str = token, valid=valid) -> str:
            if valid is not None and not valid(match.group(0)):
                return match.group(0)
            counts[kind] += 1
            return token

        text = pattern.sub(replace, text)
    return text, counts
