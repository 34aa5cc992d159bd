"""Identifier detectors for transactions on chain: the HIPAA Safe Harbor identifiers (45 CFR
164.514(b)(2)(i)) that a pattern can recognise, and the test of ``phiOnChain: hashes-only`` (a value is a
digest or an opaque pointer).

No library is used: the candidates (Presidio, scrubadub) pull in language models and a large dependency
tree for what precise patterns do here, and their recognisers are tuned for prose, not for ``key=value``
transactions. Each detector is a pattern plus, where the pattern alone is too loose, a check of the match
(calendar dates, IP octets, SSA number ranges). Detectors return the *kinds* found, never the matched
text: nothing here may echo a value (it may be PHI).

Digests and pointers (64 hex digits, base64 of 32 bytes, UUIDs) are blanked before the detectors run, so
that the digits inside a hash are not read as a phone number or a date.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hcops.clock import today

SSN = "ssn"
PHONE = "phone"
EMAIL = "email"
DATE = "date"
MRN = "mrn"
IP = "ip-address"
URL = "url-with-query"
NOT_A_DIGEST = "not-a-digest"  # hashes-only: a value that is neither a digest nor an opaque pointer
KINDS = (SSN, PHONE, EMAIL, DATE, MRN, IP, URL)

# A medical record number has no national format; without --mrn-pattern only a labelled one is found
# ("MRN 0012345", "MRN: A-778812", "medical record number 12345678").
DEFAULT_MRN = r"(?i:\bMRN|\bmedical[ _-]record(?:[ _-](?:number|no))?)\s*[#:=-]?\s*[A-Z0-9][A-Z0-9-]{3,19}\b"

_B = r"(?<![\w.-])"  # not inside a longer token (letters, digits, or a dotted/dashed run)
_E = r"(?![\w-]|\.\w)"

# SSN: 3-2-4 digits separated by '-' or ' ' (or undelimited after an "SSN" label); area 000, 666 and
# 900-999, group 00 and serial 0000 are never issued (SSA), so they do not count.
_SSN = re.compile(
    _B + r"(?!000|666|9\d\d)(\d{3})([- ])(?!00)\d{2}\2(?!0000)\d{4}" + _E
    + r"|(?i:\bSSN|\bsocial security(?: number| no)?)\s*[#:=-]?\s*(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}\b"
)
# North American numbers with separators or parentheses ("(212) 555-0187", "212.555.0187", "+1 212 555
# 0187"); E.164 with a leading '+' ("+441632960961"). A bare run of ten digits is not taken: heights,
# timestamps and amounts look the same.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+?1[ .-]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}" + _E
    + r"|(?<![\w+])\+[1-9]\d{7,14}\b"
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAME = (r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
               r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
# Dates in the common formats (each pattern with the (year, month, day) readings it allows: 03/04/1980 is
# March 4 in the US and 3 April elsewhere). Safe Harbor removes every date tied to a person (birth,
# admission, discharge, death), so any valid full date counts; a machine timestamp (a date followed by
# "T" or a space and a time) is not a date of birth or of care and is left alone.
_Readings = Callable[[re.Match[str]], tuple[tuple[int, int, int], ...]]
_DATES: tuple[tuple[re.Pattern[str], _Readings], ...] = (
    (re.compile(_B + r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?![\w-]|\.\d|[T ]\d{1,2}:)"),
     lambda m: ((int(m[1]), int(m[2]), int(m[3])),)),
    (re.compile(_B + r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})" + _E),
     lambda m: ((int(m[4]), int(m[1]), int(m[3])), (int(m[4]), int(m[3]), int(m[1])))),
    (re.compile(r"\b(" + _MONTH_NAME + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b"),
     lambda m: ((int(m[3]), _MONTHS.index(m[1][:3].lower()) + 1, int(m[2])),)),
    (re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(" + _MONTH_NAME + r")\.?,?\s+(\d{4})\b"),
     lambda m: ((int(m[3]), _MONTHS.index(m[2][:3].lower()) + 1, int(m[1])),)),
    (re.compile(r"(?i:\bdob|\bbirth(?:date)?|\bborn)\s*[#:=-]?\s*((?:19|20)\d{2})(\d{2})(\d{2})\b"),
     lambda m: ((int(m[1]), int(m[2]), int(m[3])),)),
)
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f:]{2,39}(?![\w:])")
_DIGITS3, _DIGITS4, _DOTTED = re.compile(r"\d{3}"), re.compile(r"\d{4}"), re.compile(r"\d\.\d")
_URL = re.compile(r"(?i:\b(?:https?|ftp)://)[^\s/?#]+[^\s?#]*\?[^\s#]*[=&][^\s#]*")

# Digests and pointers: blanked before detection; the whole of a hashes-only value must be one.
_HEX64 = r"(?:sha256:|0x)?[0-9A-Fa-f]{64}"
_B64_32 = r"[A-Za-z0-9+/_-]{43}=?"
_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# Token boundaries: a hex digest or UUID ends at anything that is not a letter or digit ("key=<sha>",
# "record/<uuid>"); base64 also at '+', '/' and '=', which it may contain.
_HEX_TOKEN = re.compile(r"(?<![0-9A-Za-z])(?:" + _HEX64 + "|" + _UUID + r")(?![0-9A-Za-z])")
_B64_TOKEN = re.compile(r"(?<![0-9A-Za-z+/_-])" + _B64_32 + r"(?![0-9A-Za-z+/=_-])")
_URN = re.compile(r"(?i:urn):[A-Za-z0-9][A-Za-z0-9-]{0,31}:[A-Za-z0-9()+,\-.:=@;$_!*'%/?#]+")
_POINTER = re.compile(r"(?:" + _HEX64 + "|" + _UUID + r")|(?i:urn:uuid:)" + _UUID)


def _valid_date(y: int, m: int, d: int) -> bool:
    if not 1850 <= y <= today().year + 1:  # a year no one alive was born in is not a birth date
        return False
    try:
        dt.date(y, m, d)
    except ValueError:
        return False
    return True


def _has_date(text: str) -> bool:
    for pattern, readings in _DATES:
        for m in pattern.finditer(text):
            if any(_valid_date(*ymd) for ymd in readings(m)):
                return True
    return False


def _has_ip(text: str) -> bool:
    for m in _IPV4.finditer(text):
        octets = [int(x) for x in m.groups()]
        # every octet in range and not written with a leading zero (1.02.3.4 is a version, not an address)
        if all(o <= 255 for o in octets) and all(x == "0" or not x.startswith("0") for x in m.groups()):
            return True
    for m in _IPV6.finditer(text):
        try:
            ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        return True
    return False


def is_base64_digest(token: str) -> bool:
    """Base64 of exactly 32 bytes (a SHA-256): 43 characters (44 with its '=' pad) of one alphabet, standard
    or URL-safe, in canonical form (the last character carries no stray bits), with digits, upper and lower
    case letters mixed as random bytes give them (a 43-letter word is not a digest)."""
    body = token[:-1] if len(token) == 44 and token.endswith("=") else token
    if len(body) != 43 or "=" in body:
        return False
    urlsafe = "-" in body or "_" in body
    if urlsafe and ("+" in body or "/" in body):
        return False
    try:
        raw = (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(body + "=")
    except (binascii.Error, ValueError):
        return False
    again = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode().rstrip("=")
    mixed = any(c.isdigit() for c in body) and any(c.isupper() for c in body) and any(c.islower() for c in body)
    return len(raw) == 32 and again == body and mixed


def _blank_tokens(text: str) -> str:
    """Digests and UUIDs replaced by spaces (hex and UUIDs first: a base64 candidate may span them)."""
    text = _HEX_TOKEN.sub(lambda m: " " * len(m.group()), text)
    return _B64_TOKEN.sub(lambda m: " " * len(m.group()) if is_base64_digest(m.group()) else m.group(), text)


@dataclass(frozen=True)
class Detectors:
    """The identifier detectors of one audit; ``mrn`` is the medical record number pattern in effect
    (``hcops audit --mrn-pattern``, else ``DEFAULT_MRN``)."""

    mrn: re.Pattern[str] = re.compile(DEFAULT_MRN)

    @classmethod
    def with_mrn(cls, pattern: str | None) -> Detectors:
        """Raises ``re.error`` on an invalid pattern (the caller reports it as an input error)."""
        return cls(re.compile(pattern)) if pattern else cls()

    def kinds(self, text: str) -> tuple[str, ...]:
        """Identifier kinds found in ``text``, in ``KINDS`` order (never the values)."""
        clean = _blank_tokens(text)
        # Cheap necessary conditions first: most transactions of a hashes-and-pointers chain have no run of
        # three digits left once their digests are blanked, and then only the MRN format is searched.
        digits3 = _DIGITS3.search(clean) is not None
        found = {
            SSN: digits3 and bool(_SSN.search(clean)),
            PHONE: digits3 and bool(_PHONE.search(clean)),
            EMAIL: "@" in clean and bool(_EMAIL.search(clean)),
            DATE: _DIGITS4.search(clean) is not None and _has_date(clean),  # every format has a 4-digit year
            MRN: bool(self.mrn.search(clean)),
            IP: (_DOTTED.search(clean) is not None or clean.count(":") >= 2) and _has_ip(clean),
            URL: "://" in clean and bool(_URL.search(clean)),
        }
        return tuple(k for k in KINDS if found[k])


def is_digest_or_pointer(value: str) -> bool:
    """Whether a whole value is a digest (SHA-256 as 64 hex digits, optionally ``sha256:``/``0x``; base64 of
    32 bytes) or an opaque pointer (a UUID, ``urn:uuid:…``, or another URN). Identifiers inside a URN are
    still found by the detectors, which run on every value."""
    v = value.strip()
    if not v:
        return False
    return bool(_POINTER.fullmatch(v) or is_base64_digest(v) or _URN.fullmatch(v))


def split_tx(tx: bytes) -> tuple[str, str]:
    """(key, value) of a kvstore transaction ``key=value`` (a bare ``value`` has no key); undecodable bytes
    are replaced, so that binary data is still searched."""
    text = tx.decode("utf-8", "replace")
    key, sep, value = text.partition("=")
    return (key, value) if sep else ("", text)


def classify(tx: bytes, policy: str, detectors: Detectors) -> tuple[str, ...]:
    """What is wrong with one transaction under ``spec.data.phiOnChain`` (``policy``): identifier kinds
    (``none`` and ``hashes-only``), plus ``not-a-digest`` under ``hashes-only`` when the value is neither a
    digest nor a pointer. ``allowed`` accepts anything: nothing is reported."""
    if policy == "allowed":
        return ()
    _key, value = split_tx(tx)
    kinds = list(detectors.kinds(tx.decode("utf-8", "replace")))  # the whole text: a URL's query has '='s
    if policy == "hashes-only" and not is_digest_or_pointer(value):
        kinds.append(NOT_A_DIGEST)
    return tuple(kinds)


def describe(kinds: Iterable[str]) -> str:
    names = {SSN: "a social security number", PHONE: "a telephone number", EMAIL: "an email address",
             DATE: "a full date (of birth, admission, ...)", MRN: "a medical record number", IP: "an IP address",
             URL: "a URL with a query", NOT_A_DIGEST: "a value that is not a digest or pointer"}
    return ", ".join(names.get(k, k) for k in kinds)
