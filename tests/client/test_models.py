"""Models and the cattrs converter: types, repr hygiene, round-trips, strictness."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from helpers.constants import JWT, token_body
from hypothesis import given
from hypothesis import strategies as st

from verify_access_tokens import AccessToken, FactorType, ResponseValidationError
from verify_access_tokens._serde import parse_json_object, structure


def test_repr_hides_token_and_friendly_name() -> None:
    token = structure(token_body(factor_friendly_name="Ana's iPhone"), AccessToken)
    text = repr(token)
    assert JWT not in text
    assert "Ana's iPhone" not in text
    assert "YK" in text


def test_models_are_frozen() -> None:
    token = structure(token_body(), AccessToken)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        token.ttl = 5  # type: ignore[misc]


def test_date_created_is_aware_utc() -> None:
    token = structure(token_body(date_created="2015-07-30T22:00:00+02:00"), AccessToken)
    assert token.date_created == dt.datetime(2015, 7, 30, 20, tzinfo=dt.UTC)
    assert token.date_created.tzinfo is dt.UTC


def test_rfc2822_dates_are_accepted() -> None:
    token = structure(token_body(date_created="Thu, 30 Jul 2015 20:00:00 +0000"), AccessToken)
    assert token.date_created == dt.datetime(2015, 7, 30, 20, tzinfo=dt.UTC)


def test_unknown_keys_are_ignored() -> None:
    token = structure(token_body(links={"x": 1}, new_field=True), AccessToken)
    assert token.sid.startswith("YK")


def test_not_an_object_is_rejected() -> None:
    with pytest.raises(ResponseValidationError, match="expected a JSON object, got list"):
        structure([], AccessToken)
    with pytest.raises(ResponseValidationError, match="expected a JSON object, got str"):
        parse_json_object(b'"text"')
    with pytest.raises(ResponseValidationError, match="not valid JSON"):
        parse_json_object(b"\xff\xfe")


hex32 = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@given(
    sid=hex32,
    identity=st.from_regex(r"[A-Za-z0-9]{8,64}", fullmatch=True),
    ttl=st.integers(60, 300),
    name=st.none() | st.text(min_size=1, max_size=64),
    factor=st.sampled_from(["push", "future-type"]),
    when=st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.replace(microsecond=0)),
)
def test_round_trip(
    sid: str, identity: str, ttl: int, name: str | None, factor: str, when: dt.datetime
) -> None:
    body = token_body(
        sid="YK" + sid,
        entity_identity=identity,
        ttl=ttl,
        factor_friendly_name=name,
        factor_type=factor,
        date_created=when.isoformat().replace("+00:00", "Z"),
    )
    token = structure(body, AccessToken)
    assert token.to_dict() == body
    assert structure(token.to_dict(), AccessToken) == token
    assert (token.factor_type is FactorType.PUSH) == (factor == "push")


def test_public_api_is_exported() -> None:
    import verify_access_tokens as package

    assert len(package.__all__) == len(set(package.__all__))
    assert all(hasattr(package, name) for name in package.__all__)
    for name in (
        "VerifyClient",
        "AccessTokens",
        "AccessToken",
        "FactorType",
        "VerifyError",
        "EnrollmentBatch",
        "BatchSummary",
        "OutcomeUnknownError",
        "__version__",
    ):
        assert name in package.__all__


def test_to_dict_is_the_api_json_shape_token_included() -> None:
    body = token_body(date_created="2015-07-30T22:00:00+02:00", factor_friendly_name="Pixel")
    data = structure(body, AccessToken).to_dict()
    assert data == structure(body, AccessToken).to_dict()
    assert (data["token"], data["date_created"], data["factor_type"]) == (
        JWT,
        "2015-07-30T20:00:00Z",
        "push",
    )
