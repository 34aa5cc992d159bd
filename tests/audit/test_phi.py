"""The identifier detectors (hcops.audit.phi): what each recognises, what it must leave alone, and the
hashes-only test of digests and pointers."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

import pytest

from hcops.audit import phi
from hcops.audit.phi import Detectors, classify, is_digest_or_pointer

D = Detectors()
SHA = hashlib.sha256(b"record 17").hexdigest()
B64 = base64.b64encode(hashlib.sha256(b"record 17").digest()).decode()

TRUE_POSITIVES = [
    ("patient=123-45-6789", phi.SSN),
    ("ssn 123 45 6789", phi.SSN),
    ("SSN:123456789", phi.SSN),
    ("social security number 078-05-1120", phi.SSN),
    ("call (212) 555-0187 now", phi.PHONE),
    ("phone=212.555.0187", phi.PHONE),
    ("tel +1 212 555 0187", phi.PHONE),
    ("uk=+441632960961", phi.PHONE),
    ("contact=jane.doe+lab@example-hospital.org", phi.EMAIL),
    ("dob=1980-02-29", phi.DATE),
    ("dob=03/04/1980", phi.DATE),
    ("born 25.12.1975", phi.DATE),
    ("admitted March 4, 2021", phi.DATE),
    ("seen 4th Mar 2021", phi.DATE),
    ("birth:19800229", phi.DATE),
    ("mrn=00123456", phi.MRN),
    ("MRN: A-778812", phi.MRN),
    ("medical record number 12345678", phi.MRN),
    ("client=10.20.30.40", phi.IP),
    ("from 2001:db8::1", phi.IP),
    ("link=https://portal.example.org/chart?patient=77", phi.URL),
]

FALSE_POSITIVES = [
    "hcops-audit/regional-health-net/12=" + SHA,  # an anchor: key and SHA-256
    "doc=" + SHA,
    "doc=sha256:" + SHA,
    "doc=" + B64,
    f"ref={uuid.uuid4()}",
    "height=1234567890",  # ten digits without separators: heights, amounts, times
    "ts=1795608000",
    "version=0.38.17",
    "v1.2.3.4",  # a version, not an address
    "ip=1.02.3.4",  # leading zero: not how addresses are written
    "amount=123-45",  # too short for an SSN
    "ssn-like=000-12-3456",  # area 000 is never issued
    "ssn-like=666-12-3456",
    "ssn-like=912-12-3456",
    "order 555-0187",  # seven digits: no area code
    "at=2026-11-25T12:00:00Z",  # a machine timestamp
    "at=2026-11-25 12:00:00",
    "date=1980-02-30",  # not a calendar date
    "date=13/13/2020",
    "date=1700-01-01",  # no one alive was born then
    "url=https://portal.example.org/chart",  # no query
    "user@localhost",  # no domain
    "12:30:45",  # a time, not an IPv6 address
    "batch-2026",
]


@pytest.mark.parametrize(("text", "kind"), TRUE_POSITIVES)
def test_detects(text: str, kind: str) -> None:
    assert kind in D.kinds(text)


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_leaves_alone(text: str) -> None:
    assert D.kinds(text) == ()


def test_digits_inside_a_digest_are_not_read_as_identifiers() -> None:
    # a hex digest whose digits look like an SSN and a date when read alone
    fake = "123456789" + "0" * 39 + "19800229" + "0" * 8
    assert len(fake) == 64 and D.kinds(f"h={fake}") == ()


def test_mrn_pattern_is_configurable() -> None:
    custom = Detectors.with_mrn(r"\bSTM-\d{7}\b")
    assert custom.kinds("chart STM-0012345") == (phi.MRN,)
    assert custom.kinds("mrn=00123456") == ()  # the configured format replaces the default
    with pytest.raises(re.error):
        Detectors.with_mrn("(unclosed")


@pytest.mark.parametrize(
    "value",
    [SHA, SHA.upper(), "sha256:" + SHA, "0x" + SHA, B64, B64.rstrip("="),
     base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).decode(), str(uuid.uuid4()),
     f"urn:uuid:{uuid.uuid4()}", "urn:hcops:record:7f3a"],
)
def test_digests_and_pointers(value: str) -> None:
    assert is_digest_or_pointer(value)


@pytest.mark.parametrize(
    "value", ["", "Jane Doe", SHA[:63], SHA + "0", base64.b64encode(b"sixteen bytes!!!").decode(), "123-45-6789",
              "https://x.example/r/1"],
)
def test_not_digests(value: str) -> None:
    assert not is_digest_or_pointer(value)


def test_classify_by_policy() -> None:
    ssn = b"patient=123-45-6789"
    assert classify(ssn, "none", D) == (phi.SSN,)
    assert classify(ssn, "hashes-only", D) == (phi.SSN, phi.NOT_A_DIGEST)
    assert classify(ssn, "allowed", D) == ()
    assert classify(b"visit=Jane Doe", "none", D) == ()  # a name is no pattern: not found (see README)
    assert classify(b"visit=Jane Doe", "hashes-only", D) == (phi.NOT_A_DIGEST,)
    assert classify(f"visit={SHA}".encode(), "hashes-only", D) == ()
    assert classify(b"urn:ssn:123-45-6789", "hashes-only", D) == (phi.SSN,)  # a pointer that carries one
    assert classify(b"\xff\xfe123-45-6789", "none", D) == (phi.SSN,)  # undecodable bytes are still searched


def test_describe_never_needs_the_value() -> None:
    assert phi.describe([phi.SSN, phi.NOT_A_DIGEST]) == (
        "a social security number, a value that is not a digest or pointer"
    )


@pytest.mark.parametrize("before", ["doc=", "record/", "h ", "urn:x:", "("])
def test_digests_and_uuids_are_blanked_wherever_they_stand(before: str) -> None:
    from hcops.audit.phi import _blank_tokens

    # base64 may itself contain '/', so after a '/' it cannot be told from a longer base64 run
    for token in (SHA, str(uuid.uuid4())) + (() if before.endswith("/") else (B64,)):
        assert _blank_tokens(before + token + ")").strip(" )") == before.rstrip(), (before, token)
    assert _blank_tokens(before + "x" + SHA) == before + "x" + SHA  # part of a longer word: left alone


@pytest.mark.parametrize(
    "value", ["abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq", "record/2fcf8c3d-4524-41f0-9b47-6d5e97cbb1c9",
              B64[:42] + ("B" if B64[42] != "B" else "C")],  # a word; two alphabets; a non-canonical last char
)
def test_43_characters_are_not_enough_for_a_base64_digest(value: str) -> None:
    assert not is_digest_or_pointer(value)
