"""Per-call stream tokens: round trip, every rejection reason, URL-safety, and privacy: the
token is encrypted, nothing of the call can be read from it."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import random
import re
import string
from urllib.parse import quote, unquote

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.telephony.errors import TokenError
from app.telephony.token import MAX_TOKEN_LENGTH, StreamClaims, issue_token, new_secret, verify_token

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
NOW = 1_750_000_000.0
CLAIMS = StreamClaims(
    call_id="3f6a1c9e-0b7d-4c2e-9a51-2d8e7f4b6c10", persona="receptionist", expires_at=1_750_000_300
)
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
DOMAIN = b"vobiz-stream-token/aes-256-gcm"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_of(secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DOMAIN).derive(secret)


def forge(secret: bytes, payload: bytes, *, version: int = 2, pad: bool = True) -> str:
    """A token for an arbitrary payload, built from the documented format (not the module's code)."""
    if pad:
        payload += b" " * (-len(payload) % 32)
    nonce = bytes(range(12))
    sealed = AESGCM(key_of(secret)).encrypt(nonce, payload, DOMAIN + bytes([version]))
    return b64url(bytes([version]) + nonce + sealed)


def open_token(secret: bytes, token: str) -> bytes:
    """The payload of a token, decrypted from the documented format (not the module's code)."""
    raw = unb64url(token)
    return AESGCM(key_of(secret)).decrypt(raw[1:13], raw[13:], DOMAIN + raw[:1])


def reason_of(token: str, *, secret: bytes = SECRET, now: float = NOW) -> str:
    with pytest.raises(TokenError) as info:
        verify_token(secret, token, now=now)
    assert isinstance(info.value, ValueError)
    return info.value.reason


def test_round_trip() -> None:
    token = issue_token(SECRET, CLAIMS)
    assert verify_token(SECRET, token, now=NOW) == CLAIMS


def test_format_is_the_documented_one() -> None:
    token = issue_token(SECRET, CLAIMS)
    assert unb64url(token)[0] == 2
    payload = json.dumps([2, CLAIMS.call_id, CLAIMS.persona, CLAIMS.expires_at], separators=(",", ":"))
    padded = open_token(SECRET, token)
    assert len(padded) % 32 == 0
    assert padded.rstrip(b" ") == payload.encode()
    assert verify_token(SECRET, forge(SECRET, payload.encode()), now=NOW) == CLAIMS


def test_each_token_is_different() -> None:
    tokens = {issue_token(SECRET, CLAIMS) for _ in range(20)}
    assert len(tokens) == 20
    assert all(verify_token(SECRET, t, now=NOW) == CLAIMS for t in tokens)


def readings(token: str) -> list[bytes]:
    """Every way someone holding only the URL might read the token."""
    found = [token.encode(), unquote(token).encode()]
    for text in (token, token.replace("-", "+").replace("_", "/")):
        for cut in range(4):  # a reader may split it anywhere and decode the pieces
            piece = text[cut:]
            piece = piece[: len(piece) - len(piece) % 4]
            for decode in (base64.urlsafe_b64decode, base64.b64decode):
                with contextlib.suppress(binascii.Error, ValueError):
                    found.append(decode(piece))
    with contextlib.suppress(binascii.Error, ValueError):
        found.append(base64.b32decode(token.upper() + "=" * (-len(token) % 8)))
    return found


def test_the_token_reveals_nothing_of_the_call() -> None:
    """Numbers, persona and call id are nowhere in the token, however it is decoded."""
    claims = StreamClaims(
        call_id="8c1d2e3f-call-uuid", persona="clinic", expires_at=1_750_000_300,
        caller="14155550100", called="919876543210",
    )  # fmt: skip
    token = issue_token(SECRET, claims)
    secrets_of_the_call = [claims.caller, claims.called, claims.persona, claims.call_id, "4155550100"]
    for reading in readings(token):
        for text in (reading, reading.lower()):
            for secret in secrets_of_the_call:
                assert secret.encode() not in text
    # a longer number gives no longer token (the payload is padded to 32 bytes)
    shorter = issue_token(SECRET, StreamClaims(claims.call_id, claims.persona, 1_750_000_300, "1", "2"))
    assert len(shorter) == len(token)
    assert verify_token(SECRET, token, now=NOW) == claims


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
    raw = bytearray(unb64url(issue_token(SECRET, CLAIMS)))
    raw[-1] ^= 1  # the GCM tag
    assert reason_of(b64url(bytes(raw))) == "bad-signature"


def test_tampered_payload() -> None:
    raw = unb64url(issue_token(SECRET, CLAIMS))
    for position in (1, 12, 13, 20, len(raw) - 17):  # nonce, ciphertext
        flipped = bytearray(raw)
        flipped[position] ^= 0x40
        assert reason_of(b64url(bytes(flipped))) == "bad-signature"


def test_wrong_secret() -> None:
    token = issue_token(SECRET, CLAIMS)
    assert reason_of(token, secret=OTHER_SECRET) == "bad-signature"
    assert reason_of(forge(OTHER_SECRET, b'[2,"c","p",9999999999]')) == "bad-signature"


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
        "abc.def",
        "not a token",
        "eyJ.abc/def",
        "A" * 60 + "==",  # padding is not part of the format
        "A" * 30 + "+" + "A" * 30,  # '+' is not base64url
        "A" * 61,  # 61 base64 chars cannot encode whole bytes
        "A" * 80,  # 60 bytes: no payload can be that short after padding
        "ünïcödé" + "A" * 80,
        "A" * (MAX_TOKEN_LENGTH + 1),
        "A" * 2000 + "." + "A" * 22,
        forge(SECRET, b'[2,"c","p",9999999999]', version=1),  # an old or unknown format version
        forge(SECRET, b'[2,"c","p",9999999999]', pad=False),  # not padded: impossible length
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
        b'[2,"c","p"]',
        b'[2,"c","p",9999999999,"c",6]',
        b'[1,"c","p",9999999999]',  # the old format's version inside
        b'[true,"c","p",9999999999]',
        b'[2,42,"p",9999999999]',
        b'[2,"c",null,9999999999]',
        b'[2,"c","p","9999999999"]',
        b'[2,"c","p",9999999999.0]',
        b'[2,"c","p",true]',
        b'[2,"c","p",Infinity]',
        b'[2,"c","p",NaN]',
        b'"[2,\\"c\\",\\"p\\",9999999999]"',
    ],
)
def test_authentic_but_wrongly_typed_payload_is_malformed(payload: bytes) -> None:
    assert reason_of(forge(SECRET, payload)) == "malformed"


def test_strict_decoder_accepts_the_exact_shape() -> None:
    # the control case for the table above: same construction, well-typed payload
    token = forge(SECRET, '[2,"c é","p",9999999999]'.encode())
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
        verify_token(secret, "abcdef", now=NOW)


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
        assert not set(token) & set("&/?=+%#. ")
        assert quote(token, safe="") == token  # survives as a URL path segment unchanged
        assert verify_token(secret, token, now=float(claims.expires_at) - 1) == claims


def test_the_callers_number_travels_in_the_token() -> None:
    claims = StreamClaims(call_id="c-1", persona="clinic", expires_at=1_750_000_300, caller="14155550100")
    assert verify_token(SECRET, issue_token(SECRET, claims), now=NOW) == claims
    # the documented payload with the optional fifth element, built without the module
    token = forge(SECRET, b'[2,"c-2","clinic",1750000300,"14155550100"]')
    assert verify_token(SECRET, token, now=NOW).caller == "14155550100"
    assert verify_token(SECRET, issue_token(SECRET, CLAIMS), now=NOW).caller == ""
    assert reason_of(forge(SECRET, b'[2,"c","p",9999999999,5]')) == "malformed"
    both = StreamClaims("c-3", "clinic", 1_750_000_300, caller="14155550100", called="14155550199")
    assert verify_token(SECRET, issue_token(SECRET, both), now=NOW) == both
    only_called = StreamClaims("c-4", "clinic", 1_750_000_300, called="14155550199")
    assert verify_token(SECRET, issue_token(SECRET, only_called), now=NOW) == only_called
