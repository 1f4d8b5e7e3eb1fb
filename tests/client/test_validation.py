"""Client-side rules: each accepts exactly the documented set (hypothesis) and names its field."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verify_access_tokens import FactorType, RequestValidationError
from verify_access_tokens._core import _validation as v

HEX = "0123456789abcdefABCDEF"
IDENTITY_RE = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
ALNUM = string.ascii_letters + string.digits


def sid_strategy(prefix: str) -> st.SearchStrategy[str]:
    return st.text(alphabet=HEX, min_size=32, max_size=32).map(lambda s: prefix + s)


@given(sid_strategy("VA"))
def test_service_sid_accepts_every_va_hex(sid: str) -> None:
    assert v.check_service_sid(sid) == sid


@given(sid_strategy("YK"))
def test_token_sid_accepts_every_yk_hex(sid: str) -> None:
    assert v.check_access_token_sid(sid) == sid


@given(st.text(max_size=40))
def test_service_sid_rejects_everything_else(text: str) -> None:
    valid = re.fullmatch(r"VA[0-9a-fA-F]{32}", text) is not None
    if valid:
        assert v.check_service_sid(text) == text
    else:
        with pytest.raises(RequestValidationError, match="service_sid"):
            v.check_service_sid(text)


@pytest.mark.parametrize(
    "bad",
    [
        "YK" + "a" * 32,
        "va" + "a" * 32,
        "VA" + "g" * 32,
        "VA" + "a" * 31,
        "VA" + "a" * 33,
        "VA" + "a" * 32 + "\n",
        "VA" + "٣" * 32,
        "",
        None,
        12,
        b"VA" + b"a" * 32,
    ],
)
def test_service_sid_rejects_lookalikes(bad: object) -> None:
    with pytest.raises(RequestValidationError) as info:
        v.check_service_sid(bad)
    assert info.value.field == "service_sid"


def test_sid_error_does_not_echo_value() -> None:
    with pytest.raises(RequestValidationError) as info:
        v.check_access_token_sid("YKsecret-looking-thing")
    assert "secret-looking" not in str(info.value)
    assert "'YK' followed by 32 hex digits" in str(info.value)


@given(
    st.lists(st.text(alphabet=ALNUM, min_size=1, max_size=10), min_size=1, max_size=8)
    .map("-".join)
    .filter(lambda s: 8 <= len(s) <= 64)
)
def test_identity_accepts_dash_separated_alnum(identity: str) -> None:
    assert v.check_identity(identity) == identity


@given(st.text(max_size=80))
def test_identity_accepts_exactly_the_documented_set(text: str) -> None:
    valid = 8 <= len(text) <= 64 and IDENTITY_RE.fullmatch(text) is not None
    if valid:
        assert v.check_identity(text) == text
    else:
        with pytest.raises(RequestValidationError) as info:
            v.check_identity(text)
        assert info.value.field == "identity"


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("a" * 7, "8 to 64 characters"),
        ("a" * 65, "8 to 64 characters"),
        ("ana@example.com", "letters and digits"),
        ("+14155550100", "letters and digits"),
        ("Ana Lopez123", "letters and digits"),
        ("-abcdefgh", "letters and digits"),
        ("abcd--efgh", "letters and digits"),
        ("abcdefgh-", "letters and digits"),
        ("abcdéfghi", "letters and digits"),
        (None, "must be a str"),
    ],
)
def test_identity_rejections_name_the_rule(bad: object, rule: str) -> None:
    with pytest.raises(RequestValidationError, match=rule):
        v.check_identity(bad)


def test_uuid_identity_passes() -> None:
    assert v.check_identity("0b9a1c5e-3f1d-4c1a-9a7e-2f5d8c6b4a31")


@given(st.integers(min_value=-1000, max_value=1000))
def test_ttl_accepts_exactly_60_to_300(ttl: int) -> None:
    if 60 <= ttl <= 300:
        assert v.check_ttl(ttl) == ttl
    else:
        with pytest.raises(RequestValidationError, match="between 60 and 300"):
            v.check_ttl(ttl)


@pytest.mark.parametrize("bad", [True, False, 60.0, "60", b"60"])
def test_ttl_rejects_non_int(bad: object) -> None:
    with pytest.raises(RequestValidationError, match="must be an int") as info:
        v.check_ttl(bad)
    assert info.value.field == "ttl"


def test_ttl_none_means_server_default() -> None:
    assert v.check_ttl(None) is None


def test_factor_type_accepts_member_and_exact_value() -> None:
    assert v.check_factor_type(FactorType.PUSH) is FactorType.PUSH
    assert v.check_factor_type("push") is FactorType.PUSH


@pytest.mark.parametrize("bad", ["PUSH", "Push", " push", "sms", "totp", "", None, 1])
def test_factor_type_rejects_anything_else(bad: object) -> None:
    with pytest.raises(RequestValidationError, match="must be one of 'push'"):
        v.check_factor_type(bad)


@given(st.text(min_size=1, max_size=64))
def test_friendly_name_accepts_1_to_64_chars(name: str) -> None:
    assert v.check_friendly_name(name) == name


@pytest.mark.parametrize("bad", ["", "x" * 65, 5])
def test_friendly_name_rejections(bad: object) -> None:
    with pytest.raises(RequestValidationError) as info:
        v.check_friendly_name(bad)
    assert info.value.field == "factor_friendly_name"


def test_custom_field_names_are_used() -> None:
    with pytest.raises(RequestValidationError) as info:
        v.check_ttl(5, "Ttl")
    assert info.value.field == "Ttl"
    assert str(info.value).startswith("Ttl: ")
