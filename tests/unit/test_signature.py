"""Webhook signatures (PROTOCOL.md §9) against vectors computed outside this code base."""

from __future__ import annotations

import base64

import pytest
from vobiz.utils import validate_signature as sdk_validate_v2

from app.telephony.signature import (
    SignatureResult,
    base_url,
    compute_v2,
    compute_v3,
    new_nonce,
    sign_headers,
    verify_signature,
)

# (auth token, URL as Vobiz called it, nonce, expected V2, expected V3).
# Expected values were computed once in a shell with OpenSSL, independently of app.telephony:
#   printf '%s' "$BASE$NONCE"  | openssl dgst -sha256 -hmac "$TOKEN" -binary | base64   # V2
#   printf '%s' "$BASE.$NONCE" | openssl dgst -sha256 -hmac "$TOKEN" -binary | base64   # V3
# where $BASE is the URL with query/fragment removed, typed by hand (shown in the comments).
VECTORS = [
    pytest.param(
        "abc123token",
        "https://agent.example.com/vobiz/hangup?x=1",  # BASE=https://agent.example.com/vobiz/hangup
        "12345678901234567890",
        "hmVTrAXD+SjsOMFon/c6EEVWwyf1HqX3NKdMk42goy0=",
        "2qj1PbuXGoS2PLVDTWBY3G1tnx61dNNBIHfxDADg7lA=",
        id="query-dropped",
    ),
    pytest.param(
        "MjM0NTY3ODkwMTIzNDU2Nzg5MA",
        "http://127.0.0.1:8000/vobiz/stream-status",  # BASE=the URL itself (port kept)
        "00000000000000000042",
        "yNHnVMERec7NlAv8WLx3cQsB7ILRumdc6evxX5p3Waw=",
        "xNRlRhI/6NYBSKZXq/JDbXchqBqEBdzewQPqJjqdcCQ=",
        id="port-kept",
    ),
    pytest.param(
        "tökén-ü",  # key bytes are UTF-8 (74 c3 b6 6b c3 a9 6e 2d c3 bc), as OpenSSL got them from argv
        "https://example.com/cb?b=2&a=1#frag",  # BASE=https://example.com/cb
        "98765432109876543210",
        "2vncWKdG5r6srGe582m/EbXt7klZjQQg9oj7qc6srH0=",
        "wQeIiEXH2qkvR4EK1xhpFie908YzAO7nLtzBadynTPI=",
        id="utf8-token-fragment-dropped",
    ),
    pytest.param(
        "parent-main-token",
        "https://example.com?x=1",  # BASE=https://example.com (no path, no slash added)
        "11111111111111111111",
        "9thptpDOA/ESJVE8TFnrwBU8DKH56GrVO/iiKk8JYP8=",
        "iy/zgQXTj0SAhO3n3xbDZqLqUc1w1SpS68+UExEfvOk=",
        id="empty-path",
    ),
]

URL = "https://agent.example.com/vobiz/hangup?x=1"
TOKEN = "abc123token"
NONCE = "12345678901234567890"
V2 = "hmVTrAXD+SjsOMFon/c6EEVWwyf1HqX3NKdMk42goy0="
V3 = "2qj1PbuXGoS2PLVDTWBY3G1tnx61dNNBIHfxDADg7lA="
PARENT = "parent-main-token"


def v2_headers(signature: str = V2, nonce: str = NONCE) -> dict[str, str]:
    return {"X-Vobiz-Signature-V2": signature, "X-Vobiz-Signature-V2-Nonce": nonce}


def v3_headers(signature: str = V3, nonce: str = NONCE) -> dict[str, str]:
    return {"X-Vobiz-Signature-V3": signature, "X-Vobiz-Signature-V3-Nonce": nonce}


@pytest.mark.parametrize(("token", "url", "nonce", "v2", "v3"), VECTORS)
def test_compute_matches_openssl_vectors(token: str, url: str, nonce: str, v2: str, v3: str) -> None:
    assert compute_v2(token, url, nonce) == v2
    assert compute_v3(token, url, nonce) == v3


@pytest.mark.parametrize(("token", "url", "nonce", "v2", "v3"), VECTORS)
def test_verify_accepts_openssl_vectors(token: str, url: str, nonce: str, v2: str, v3: str) -> None:
    assert verify_signature(v2_headers(v2, nonce), url, token).version == "v2"
    assert verify_signature(v3_headers(v3, nonce), url, token).version == "v3"


@pytest.mark.parametrize(("token", "url", "nonce", "v2", "v3"), VECTORS)
def test_official_sdk_agrees_on_v2(token: str, url: str, nonce: str, v2: str, v3: str) -> None:
    assert sdk_validate_v2(url, nonce, compute_v2(token, url, nonce), token) is True
    assert sdk_validate_v2(url, nonce, v2, token) is True
    assert sdk_validate_v2(url, nonce, v3, token) is False  # the SDK knows no V3: different message


def test_official_sdk_agrees_on_generated_headers() -> None:
    url = "https://tunnel.example.net:8443/vobiz/hangup?CallUUID=abc&x=%20y"
    for _ in range(20):
        headers = sign_headers(url, TOKEN)
        sig, nonce = headers["X-Vobiz-Signature-V2"], headers["X-Vobiz-Signature-V2-Nonce"]
        assert sdk_validate_v2(url, nonce, sig, TOKEN) is True
        assert sdk_validate_v2(url, nonce, sig, TOKEN + "x") is False


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/p/q?x=1&y=2", "https://a.example/p/q"),
        ("https://a.example/p#frag", "https://a.example/p"),
        ("https://a.example", "https://a.example"),
        ("https://a.example/", "https://a.example/"),
        ("http://A.Example:8080/Path/?", "http://A.Example:8080/Path/"),
        ("https://a.example/p;v=1?q", "https://a.example/p;v=1"),
    ],
)
def test_base_url(url: str, expected: str) -> None:
    assert base_url(url) == expected


def test_query_string_is_not_signed() -> None:
    headers = v3_headers() | v2_headers()
    for url in (URL, "https://agent.example.com/vobiz/hangup", "https://agent.example.com/vobiz/hangup?z=9"):
        assert verify_signature(headers, url, TOKEN).ok


def test_v3_preferred_when_both_present() -> None:
    result = verify_signature(v2_headers() | v3_headers(), URL, TOKEN)
    assert result.ok
    assert result.version == "v3"
    assert result.reason == "valid"


def test_v2_used_when_v3_is_bad() -> None:
    assert verify_signature(v2_headers() | v3_headers(signature=V2), URL, TOKEN).version == "v2"


def test_v2_alone_accepted() -> None:
    assert verify_signature(v2_headers(), URL, TOKEN) == SignatureResult(
        ok=True, version="v2", reason="valid"
    )


def test_ma_variants_with_parent_token() -> None:
    # MA signatures are keyed with the parent's token; the sub-account's own token does not match
    ma = {
        "X-Vobiz-Signature-MA-V3": compute_v3(PARENT, URL, NONCE),
        "X-Vobiz-Signature-V3-Nonce": NONCE,
        "X-Vobiz-Signature-MA-V2": compute_v2(PARENT, URL, "22222222222222222222"),
        "X-Vobiz-Signature-MA-V2-Nonce": "22222222222222222222",
    }
    assert verify_signature(ma, URL, "sub-token", parent_auth_token=PARENT).version == "ma-v3"
    assert verify_signature(ma, URL, "sub-token").reason == "mismatch"
    assert verify_signature(ma, URL, PARENT).version == "ma-v3"  # a main account checks with its own
    ma_v2_only = {k: v for k, v in ma.items() if "V3" not in k}
    assert verify_signature(ma_v2_only, URL, "sub-token", parent_auth_token=PARENT).version == "ma-v2"


def test_own_signature_preferred_over_ma() -> None:
    headers = sign_headers(URL, TOKEN, parent_auth_token=PARENT)
    assert verify_signature(headers, URL, TOKEN, parent_auth_token=PARENT).version == "v3"
    assert verify_signature(headers, URL, "wrong", parent_auth_token=PARENT).version == "ma-v3"


@pytest.mark.parametrize(
    ("headers", "url", "token"),
    [
        pytest.param(v3_headers(signature="3" + V3[1:]), URL, TOKEN, id="tampered-signature"),
        pytest.param(v3_headers(nonce="12345678901234567891"), URL, TOKEN, id="tampered-nonce"),
        pytest.param(v3_headers(), "https://agent.example.com/vobiz/hangup2", TOKEN, id="tampered-path"),
        pytest.param(v3_headers(), "http://agent.example.com/vobiz/hangup", TOKEN, id="tampered-scheme"),
        pytest.param(v3_headers(), "https://evil.example.com/vobiz/hangup", TOKEN, id="tampered-host"),
        pytest.param(v3_headers(), URL, TOKEN + "x", id="wrong-token"),
        pytest.param(v3_headers(signature=V2), URL, TOKEN, id="v2-value-in-v3-header"),
        pytest.param(v2_headers(signature=V3), URL, TOKEN, id="v3-value-in-v2-header"),
        pytest.param(v3_headers(signature="not base64!"), URL, TOKEN, id="garbage"),
        pytest.param(v3_headers(signature=base64.b64encode(b"short").decode()), URL, TOKEN, id="short"),
    ],
)
def test_tampering_rejected(headers: dict[str, str], url: str, token: str) -> None:
    result = verify_signature(headers, url, token)
    assert not result.ok
    assert result.version is None
    assert result.reason == "mismatch"


def test_missing_headers() -> None:
    assert verify_signature({}, URL, TOKEN).reason == "missing"
    assert verify_signature({"Content-Type": "x"}, URL, TOKEN).reason == "missing"
    assert verify_signature({"X-Vobiz-Signature-V3": "  "}, URL, TOKEN).reason == "missing"
    assert not verify_signature({}, URL, TOKEN).ok
    # a signature without its nonce cannot be checked
    result = verify_signature({"X-Vobiz-Signature-V3": V3, "X-Vobiz-Signature-V2-Nonce": NONCE}, URL, TOKEN)
    assert (result.ok, result.reason) == (False, "missing-nonce")


def test_header_names_case_insensitive() -> None:
    lower = {"x-vobiz-signature-v3": V3, "x-vobiz-signature-v3-nonce": NONCE}
    shouty = {"X-VOBIZ-SIGNATURE-V2": V2, "x-VoBiZ-signature-v2-NONCE": NONCE}
    assert verify_signature(lower, URL, TOKEN).version == "v3"
    assert verify_signature(shouty, URL, TOKEN).version == "v2"


def test_whitespace_and_encoding_variants_tolerated() -> None:
    assert verify_signature(v3_headers(f"  {V3}\n", f" {NONCE}\r\n"), URL, TOKEN).ok
    assert verify_signature(v3_headers(V3.rstrip("=")), URL, TOKEN).ok  # padding dropped
    urlsafe = V3.replace("+", "-").replace("/", "_")
    assert verify_signature(v3_headers(urlsafe), URL, TOKEN).ok
    assert verify_signature(v3_headers(f"{V2}, {V3}"), URL, TOKEN).ok  # rotated-key list
    assert not verify_signature(v3_headers(f"{V2}, {V2}"), URL, TOKEN).ok


def test_empty_token_never_validates() -> None:
    # a signature genuinely computed with the empty key must still be refused
    headers = v3_headers(compute_v3("", URL, NONCE)) | v2_headers(compute_v2("", URL, NONCE))
    result = verify_signature(headers, URL, "")
    assert (result.ok, result.reason) == (False, "no-token")
    assert not verify_signature(headers, URL, "", parent_auth_token="").ok
    ma = {"X-Vobiz-Signature-MA-V3": compute_v3("", URL, NONCE), "X-Vobiz-Signature-V3-Nonce": NONCE}
    assert not verify_signature(ma, URL, "").ok


def test_sign_headers_verify() -> None:
    headers = sign_headers(URL, TOKEN)
    assert set(headers) == {
        "X-Vobiz-Signature-V2",
        "X-Vobiz-Signature-V2-Nonce",
        "X-Vobiz-Signature-V3",
        "X-Vobiz-Signature-V3-Nonce",
    }
    assert verify_signature(headers, URL, TOKEN).version == "v3"
    only_v2 = {k: v for k, v in headers.items() if "V2" in k}
    assert verify_signature(only_v2, URL, TOKEN).version == "v2"
    assert not verify_signature(headers, URL, "other").ok
    for name in ("X-Vobiz-Signature-V2-Nonce", "X-Vobiz-Signature-V3-Nonce"):
        assert len(headers[name]) == 20
        assert headers[name].isdigit()


def test_sign_headers_with_fixed_nonce_reproduces_vectors() -> None:
    headers = sign_headers(URL, TOKEN, nonce=NONCE)
    assert headers["X-Vobiz-Signature-V2"] == V2
    assert headers["X-Vobiz-Signature-V3"] == V3


def test_sign_headers_refuses_empty_token() -> None:
    with pytest.raises(ValueError, match="empty"):
        sign_headers(URL, "")


def test_nonces_are_random_20_digits() -> None:
    nonces = {new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    assert all(len(n) == 20 and n.isascii() and n.isdigit() for n in nonces)
