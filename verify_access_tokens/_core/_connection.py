"""Where the client connects and as whom: credentials, the API's origin, a forward proxy.

Resolved once, when a client is built, from the arguments or the environment variables, so
that a misconfiguration fails at start-up (with the name of the argument or variable at fault,
never its value) instead of on the first request.
"""

from __future__ import annotations

import base64
import re
import urllib.request
from collections.abc import Mapping
from typing import Final

import attrs
import yarl

from .._exceptions import ConfigurationError
from ._constants import (
    DEFAULT_BASE_URL,
    ENV_ACCOUNT_SID,
    ENV_API_KEY,
    ENV_API_SECRET,
    ENV_AUTH_TOKEN,
    ENV_BASE_URL,
    ENV_EDGE,
    ENV_REGION,
)
from ._validation import is_encodable, is_loopback, sid_rule

_HOST_LABEL = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@attrs.frozen(slots=True)
class Credentials:
    """Who the client authenticates as. The secret is held only inside the header value."""

    username: str
    account_sid: str
    authorization: str = attrs.field(repr=False)

    @classmethod
    def basic(cls, username: str, secret: str, account_sid: str) -> Credentials:
        raw = f"{username}:{secret}".encode()
        return cls(username, account_sid, "Basic " + base64.b64encode(raw).decode("ascii"))


def _setting(
    explicit: object, env: Mapping[str, str], arg: str, var: str, sid_prefix: str | None
) -> str:
    """The explicit argument if given, else the environment variable, checked and non-empty.

    Errors name the source (``account_sid`` or ``TWILIO_ACCOUNT_SID``) and never the value.
    """
    source = arg if explicit is not None else var
    value = explicit if explicit is not None else env.get(var)
    if not value:
        raise ConfigurationError(source, f"missing: pass {arg}= or set {var}")
    if not isinstance(value, str):
        raise ConfigurationError(source, f"must be a str, not {type(value).__name__}")
    if value != value.strip():  # `$(cat file)` keeps a newline: every call would then get 401
        raise ConfigurationError(
            source, "has leading or trailing whitespace (a newline from a file?); strip it"
        )
    if sid_prefix is not None and (rule := sid_rule(value, sid_prefix)) is not None:
        raise ConfigurationError(source, rule)
    if not is_encodable(value):  # the Basic header is UTF-8: a lone surrogate cannot be sent
        raise ConfigurationError(source, "must not contain lone surrogates (not encodable)")
    return value


def resolve_credentials(
    *,
    account_sid: str | None,
    auth_token: str | None,
    api_key: str | None,
    api_secret: str | None,
    env: Mapping[str, str],
) -> Credentials:
    """Account SID + Auth Token, or API Key SID + secret (with the Account SID they belong to).

    An explicit argument beats the environment; an API key is used when one is passed, or
    when no auth token is passed and ``TWILIO_API_KEY`` is set.
    """
    sid = _setting(account_sid, env, "account_sid", ENV_ACCOUNT_SID, "AC")
    if api_key is not None or (auth_token is None and env.get(ENV_API_KEY)):
        key = _setting(api_key, env, "api_key", ENV_API_KEY, "SK")
        secret = _setting(api_secret, env, "api_secret", ENV_API_SECRET, None)
        return Credentials.basic(key, secret, sid)
    token = _setting(auth_token, env, "auth_token", ENV_AUTH_TOKEN, None)
    return Credentials.basic(sid, token, sid)


# Each Twilio region with its default edge, as Twilio's global infrastructure documents them.
DEFAULT_EDGES: Final = {"us1": "ashburn", "ie1": "dublin", "au1": "sydney", "jp1": "tokyo"}


def resolve_base_url(
    *, base_url: str | None, region: str | None, edge: str | None, env: Mapping[str, str]
) -> str:
    """The origin requests go to, without a trailing slash.

    Arguments beat the environment, and a whole URL beats region/edge: ``base_url``, then the
    ``region``/``edge`` arguments, then ``VERIFY_ACCESS_TOKENS_BASE_URL``, then
    ``TWILIO_REGION``/``TWILIO_EDGE``. Region/edge select
    ``https://verify.{edge}.{region}.twilio.com``, as Twilio's own SDKs do (an edge without a
    region implies ``us1``; a region without an edge takes the region's default edge, since
    Twilio retires the region-only host form). Plain HTTP is refused except on loopback, so
    that credentials never travel in clear text, whichever source the URL came from.
    """
    if base_url is not None:
        return _checked_base_url(base_url, "base_url")
    if region is None and edge is None and env.get(ENV_BASE_URL):
        return _checked_base_url(env[ENV_BASE_URL], ENV_BASE_URL)
    # An error names what was set: the argument, or else the environment variable.
    labels = (
        "region" if region is not None else ENV_REGION,
        "edge" if edge is not None else ENV_EDGE,
    )
    region = region if region is not None else env.get(ENV_REGION) or None
    edge = edge if edge is not None else env.get(ENV_EDGE) or None
    for label, value in zip(labels, (region, edge), strict=True):
        if value is not None and _HOST_LABEL.fullmatch(value) is None:
            raise ConfigurationError(label, "must be lowercase letters, digits and dashes")
    if region is not None and edge is None:
        edge = DEFAULT_EDGES.get(region)
        if edge is None:
            raise ConfigurationError(
                labels[0],
                f"has no default edge this client knows ({', '.join(DEFAULT_EDGES)} have); "
                f"give its edge too ({labels[1]})",
            )
    if edge is not None:
        return f"https://verify.{edge}.{region or 'us1'}.twilio.com"
    return DEFAULT_BASE_URL


def _checked_base_url(base_url: str, setting: str) -> str:
    try:
        url = yarl.URL(base_url)
    except (TypeError, ValueError):
        raise ConfigurationError(setting, "must be an absolute http(s) URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(setting, "must be an absolute http(s) URL")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ConfigurationError(
            setting, "plain http is allowed only for loopback hosts; use https"
        )
    if url.query_string or url.fragment or url.user or url.password:
        raise ConfigurationError(setting, "must not carry a query, fragment or credentials")
    return str(url).rstrip("/")


def resolve_proxy(
    *,
    proxy: str | None,
    proxy_auth: tuple[str, str] | None,
    trust_env: bool,
    base_url: str,
    env: Mapping[str, str],
) -> yarl.URL | None:
    """The forward proxy for ``base_url``, with its credentials inside, or None.

    An explicit ``proxy`` wins; with ``trust_env`` the standard variables are read once, here:
    ``HTTPS_PROXY``/``HTTP_PROXY`` (by the base URL's scheme, lower case first, as urllib does)
    unless ``NO_PROXY`` lists the host. ``~/.netrc`` is never read, so it can neither replace
    the client's own ``Authorization`` nor add proxy credentials. Errors never quote the URL,
    which may hold a password.
    """
    target = yarl.URL(base_url)
    source = "proxy"
    if proxy is None and trust_env:
        scheme = target.scheme
        names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
        source = next((name for name in names if env.get(name)), "")
        no_proxy = env.get("no_proxy") or env.get("NO_PROXY")
        # urllib's own NO_PROXY matcher (what urllib and aiohttp apply on Linux); untyped in
        # typeshed, hence the ignore.
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if not source or (no_proxy and bypass(target.raw_authority, {"no": no_proxy})):
            return None
        proxy = env[source]
    if proxy is None:
        if proxy_auth is not None:
            raise ConfigurationError("proxy_auth", "given without a proxy")
        return None
    try:
        url = yarl.URL(proxy) if isinstance(proxy, str) else None
    except ValueError:
        url = None
    if url is None or url.scheme != "http" or not url.host or url.path not in ("", "/"):
        raise ConfigurationError(source, "must be an http:// proxy URL (scheme, host and port)")
    if proxy_auth is not None:
        if url.user is not None:
            raise ConfigurationError("proxy_auth", "the proxy URL already holds credentials")
        if not (isinstance(proxy_auth, tuple) and len(proxy_auth) == 2):
            raise ConfigurationError("proxy_auth", "must be a (login, password) tuple")
        login, password = proxy_auth
        if not isinstance(login, str) or not isinstance(password, str) or ":" in login:
            raise ConfigurationError(
                "proxy_auth", "login and password must be str, no ':' in login"
            )
        if not is_encodable(f"{login}:{password}", "latin-1"):  # yarl would drop a surrogate
            raise ConfigurationError("proxy_auth", "login and password must be latin-1 characters")
        url = url.with_user(login).with_password(password)
    if not is_encodable(f"{url.user or ''}:{url.password or ''}", "latin-1"):
        # aiohttp sends Proxy-Authorization in latin-1, as most proxies expect.
        raise ConfigurationError(source, "login and password must be latin-1 characters")
    if target.scheme == "http" and not is_loopback(url.host or ""):
        raise ConfigurationError(
            source, "a plain-http base URL may go only through a loopback proxy; use https"
        )
    return url.with_path("")


def proxy_authorization(proxy: yarl.URL | None) -> str | None:
    """The ``Proxy-Authorization`` value aiohttp will send for ``proxy`` (for the Scrubber)."""
    if proxy is None or (proxy.user is None and proxy.password is None):
        return None
    pair = f"{proxy.user or ''}:{proxy.password or ''}".encode("latin-1")  # as aiohttp encodes
    return "Basic " + base64.b64encode(pair).decode("ascii")
