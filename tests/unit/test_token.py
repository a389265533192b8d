"""Per-call stream tokens: round trip, every rejection reason, URL-safety."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import string
from urllib.parse import quote

import pytest

from app.telephony.token import (
    MAX_TOKEN_LENGTH,
    StreamClaims,
    TokenError,
    issue_token,
    new_secret,
    verify_token,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
NOW = 1_750_000_000.0
CLAIMS = StreamClaims(
    call_id="3f6a1c9e-0b7d-4c2e-9a51-2d8e7f4b6c10", persona="receptionist", expires_at=1_750_000_300
)
URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(secret: bytes, payload: bytes) -> str:
    """A token for an arbitrary payload, built from the documented format (not the module's code)."""
    segment = b64url(payload)
    tag = hmac.new(secret, b"vobiz-stream-token." + segment.encode(), hashlib.sha256).digest()[:16]
    return f"{segment}.{b64url(tag)}"


def reason_of(token: str, *, secret: bytes = SECRET, now: float = NOW) -> str:
    with pytest.raises(TokenError) as info:
        verify_token(secret, token, now=now)
    assert isinstance(info.value, ValueError)
    return info.value.reason


def test_round_trip() -> None:
    token = issue_token(SECRET, CLAIMS)
    assert verify_token(SECRET, token, now=NOW) == CLAIMS


def test_format_is_the_documented_one() -> None:
    payload = json.dumps([1, CLAIMS.call_id, CLAIMS.persona, CLAIMS.expires_at], separators=(",", ":"))
    assert issue_token(SECRET, CLAIMS) == forge(SECRET, payload.encode())


def test_any_replica_with_the_secret_verifies() -> None:
    token = issue_token(bytes(SECRET), CLAIMS)
    assert verify_token(bytes(bytearray(SECRET)), token, now=NOW) == CLAIMS


def test_expired() -> None:
    token = issue_token(SECRET, CLAIMS)
    assert verify_token(SECRET, token, now=CLAIMS.expires_at - 0.001) == CLAIMS
    assert reason_of(token, now=CLAIMS.expires_at) == "expired"
    assert reason_of(token, now=CLAIMS.expires_at + 3600) == "expired"


@pytest.mark.parametrize("now", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_now_refused(now: float) -> None:
    # NaN compares false with everything: without the guard the token would never expire
    with pytest.raises(ValueError, match="finite") as info:
        verify_token(SECRET, issue_token(SECRET, CLAIMS), now=now)
    assert not isinstance(info.value, TokenError)


def test_forged_tag() -> None:
    token = issue_token(SECRET, CLAIMS)
    segment, _, tag = token.partition(".")
    flipped = ("A" if tag[0] != "A" else "B") + tag[1:]
    assert reason_of(f"{segment}.{flipped}") == "bad-signature"
    assert reason_of(f"{segment}.{b64url(bytes(16))}") == "bad-signature"


def test_tampered_payload() -> None:
    token = issue_token(SECRET, CLAIMS)
    _, _, tag = token.partition(".")
    other = StreamClaims(call_id=CLAIMS.call_id, persona="admin", expires_at=CLAIMS.expires_at + 10**6)
    other_segment = issue_token(SECRET, other).partition(".")[0]
    assert reason_of(f"{other_segment}.{tag}") == "bad-signature"


def test_wrong_secret() -> None:
    token = issue_token(SECRET, CLAIMS)
    assert reason_of(token, secret=OTHER_SECRET) == "bad-signature"
    assert reason_of(forge(OTHER_SECRET, b'[1,"c","p",9999999999]')) == "bad-signature"


def test_signature_checked_before_expiry() -> None:
    # an expired token with a bad tag is a forgery, not merely stale
    token = issue_token(OTHER_SECRET, CLAIMS)
    assert reason_of(token, now=CLAIMS.expires_at + 1) == "bad-signature"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        ".",
        "abc",
        "abc.",
        ".abc",
        "a.b.c",
        "not a token",
        "eyJ.abc/def",
        "eyJhbGciOiJIUzI1NiJ9.AAAAAAAAAAAAAAAAAAAAAA==",  # padding is not part of the format
        "eyJh+GciOiJIUzI1NiJ9.AAAAAAAAAAAAAAAAAAAAAA",  # '+' is not base64url
        "eyJhb.AAAAAAAAAAAAAAAAAAAAAA",  # 5 base64 chars cannot encode whole bytes
        "eyJhbGciOiJIUzI1NiJ9.AAAA",  # tag of the wrong length
        "ünïcödé.AAAAAAAAAAAAAAAAAAAAAA",
        "A" * (MAX_TOKEN_LENGTH + 1),
        "A" * 2000 + "." + "A" * 22,
    ],
)
def test_junk_is_malformed(junk: str) -> None:
    assert reason_of(junk) == "malformed"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe not utf-8",
        b"not json",
        b'{"call_id":"c","persona":"p","expires_at":9999999999}',
        b'[1,"c","p"]',
        b'[1,"c","p",9999999999,"c",6]',
        b'[2,"c","p",9999999999]',  # unknown format version
        b'[true,"c","p",9999999999]',
        b'[1,42,"p",9999999999]',
        b'[1,"c",null,9999999999]',
        b'[1,"c","p","9999999999"]',
        b'[1,"c","p",9999999999.0]',
        b'[1,"c","p",true]',
        b'[1,"c","p",Infinity]',
        b'[1,"c","p",NaN]',
        b'"[1,\\"c\\",\\"p\\",9999999999]"',
    ],
)
def test_signed_but_wrongly_typed_payload_is_malformed(payload: bytes) -> None:
    assert reason_of(forge(SECRET, payload)) == "malformed"


def test_strict_decoder_accepts_the_exact_shape() -> None:
    # the control case for the table above: same construction, well-typed payload
    token = forge(SECRET, '[1,"c é","p",9999999999]'.encode())
    assert verify_token(SECRET, token, now=NOW) == StreamClaims("c é", "p", 9_999_999_999)


def test_token_length_is_capped_at_issue() -> None:
    assert len(issue_token(SECRET, StreamClaims("c" * 600, "p", 1))) <= MAX_TOKEN_LENGTH
    with pytest.raises(ValueError, match="too long"):
        issue_token(SECRET, StreamClaims("c" * 800, "p", 1))


@pytest.mark.parametrize(
    "claims",
    [
        StreamClaims("c", "p", True),
        StreamClaims("c", "p", 1.5),  # type: ignore[arg-type]
        StreamClaims(b"c", "p", 1),  # type: ignore[arg-type]
        StreamClaims("c", None, 1),  # type: ignore[arg-type]
        StreamClaims("lone \ud800 surrogate", "p", 1),
    ],
)
def test_issue_rejects_bad_claims(claims: StreamClaims) -> None:
    with pytest.raises(ValueError, match=r"must be|not valid Unicode") as info:
        issue_token(SECRET, claims)
    assert not isinstance(info.value, TokenError)


@pytest.mark.parametrize("secret", [b"", b"short", "a string secret, not bytes"])
def test_short_or_wrongly_typed_secret_refused(secret: bytes) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        issue_token(secret, CLAIMS)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        verify_token(secret, "abc.def", now=NOW)


def test_new_secret() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(isinstance(s, bytes) and len(s) == 32 for s in secrets)
    token = issue_token(next(iter(secrets)), CLAIMS)
    assert reason_of(token, secret=new_secret()) == "bad-signature"


def test_url_safe_over_random_claims() -> None:
    rng = random.Random(20240611)
    alphabet = string.printable + "&/?=+#%;., éüñ中文😀\u200b\u00a0"
    for _ in range(500):
        claims = StreamClaims(
            call_id="".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))),
            persona="".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))),
            expires_at=rng.randint(-(2**40), 2**40),
        )
        secret = rng.randbytes(32)
        token = issue_token(secret, claims)
        assert URL_SAFE.fullmatch(token), token
        assert not set(token) & set("&/?=+%# ")
        assert quote(token, safe="") == token  # survives as a URL path segment unchanged
        assert verify_token(secret, token, now=float(claims.expires_at) - 1) == claims


def test_the_callers_number_travels_in_the_token() -> None:
    claims = StreamClaims(call_id="c-1", persona="clinic", expires_at=1_750_000_300, caller="14155550100")
    assert verify_token(SECRET, issue_token(SECRET, claims), now=NOW) == claims
    # the documented payload with the optional fifth element, built without the module
    token = forge(SECRET, b'[1,"c-2","clinic",1750000300,"14155550100"]')
    assert verify_token(SECRET, token, now=NOW).caller == "14155550100"
    assert verify_token(SECRET, issue_token(SECRET, CLAIMS), now=NOW).caller == ""
    assert reason_of(forge(SECRET, b'[1,"c","p",9999999999,5]')) == "malformed"
    both = StreamClaims("c-3", "clinic", 1_750_000_300, caller="14155550100", called="14155550199")
    assert verify_token(SECRET, issue_token(SECRET, both), now=NOW) == both
    only_called = StreamClaims("c-4", "clinic", 1_750_000_300, called="14155550199")
    assert verify_token(SECRET, issue_token(SECRET, only_called), now=NOW) == only_called
