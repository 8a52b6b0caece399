"""Live credentials from the environment, held so that they cannot leak by accident.

``Secret`` hides its value from ``str``, ``repr`` and f-strings; only ``reveal()`` gives it, and only the
HTTP client calls that. ``LiveCredentials.redactor()`` knows every secret value, and is what reports, logs
and error messages pass through. A missing variable is reported together with every other missing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aigw_harness.errors import ConfigError, TargetUnavailable
from aigw_harness.proxy.redaction import Redactor

__all__ = [
    "ACCOUNT_ID_ENV",
    "API_BASE",
    "API_BASE_ENV",
    "API_TOKEN_ENV",
    "GATEWAY_BASE",
    "GATEWAY_BASE_ENV",
    "GATEWAY_ID_ENV",
    "GATEWAY_TOKEN_ENV",
    "LiveCredentials",
    "Secret",
]

ACCOUNT_ID_ENV = "CLOUDFLARE_ACCOUNT_ID"
API_TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
GATEWAY_ID_ENV = "AIGW_GATEWAY_ID"
GATEWAY_TOKEN_ENV = "AIGW_GATEWAY_TOKEN"
API_BASE_ENV = "AIGW_LIVE_API_BASE"
GATEWAY_BASE_ENV = "AIGW_LIVE_GATEWAY_BASE"

API_BASE = "https://api.cloudflare.com/client/v4"
GATEWAY_BASE = "https://gateway.ai.cloudflare.com/v1"

_PURPOSE = {
    ACCOUNT_ID_ENV: "the Cloudflare account id (dashboard → Workers AI → account id)",
    API_TOKEN_ENV: "an API token with AI Gateway Read and Workers AI Read (see docs/live-spike.md)",
    GATEWAY_ID_ENV: "the AI Gateway's id (its name in the dashboard)",
}


class Secret:
    __slots__ = ("_name", "_value")

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    @property
    def name(self) -> str:
        return self._name

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self._name})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._name == self._name and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._name)


@dataclass(frozen=True)
class LiveCredentials:
    account_id: Secret
    api_token: Secret
    gateway_id: str
    gateway_token: Secret | None = None
    api_base: str = API_BASE
    """Cloudflare's REST API; the fake serves it at ``{base_url}/client/v4``."""
    gateway_base: str = GATEWAY_BASE
    """AI Gateway's endpoint; the fake serves it at ``{base_url}/v1``."""

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str],
        *,
        api_base: str | None = None,
        gateway_base: str | None = None,
    ) -> LiveCredentials:
        """Credentials from ``environ``; the endpoints from the arguments, else ``AIGW_LIVE_API_BASE`` and
        ``AIGW_LIVE_GATEWAY_BASE``, else Cloudflare's (a stand-in such as ``aigw fake serve`` serves the API
        at ``{url}/client/v4`` and the gateway at ``{url}/v1``)."""
        missing = [name for name in _PURPOSE if not environ.get(name, "").strip()]
        if missing:
            lines = "\n".join(f"  {name}: {_PURPOSE[name]}" for name in missing)
            raise TargetUnavailable(
                f"live runs need these environment variables, which are not set:\n{lines}\n"
                f"Set {GATEWAY_TOKEN_ENV} too if the gateway is authenticated."
            )
        token = environ.get(GATEWAY_TOKEN_ENV, "").strip()
        return cls(
            account_id=Secret(ACCOUNT_ID_ENV, environ[ACCOUNT_ID_ENV].strip()),
            api_token=Secret(API_TOKEN_ENV, environ[API_TOKEN_ENV].strip()),
            gateway_id=environ[GATEWAY_ID_ENV].strip(),
            gateway_token=Secret(GATEWAY_TOKEN_ENV, token) if token else None,
            api_base=_endpoint(api_base or environ.get(API_BASE_ENV) or API_BASE, "api_base"),
            gateway_base=_endpoint(
                gateway_base or environ.get(GATEWAY_BASE_ENV) or GATEWAY_BASE, "gateway_base"
            ),
        )

    @property
    def stand_in(self) -> bool:
        """Whether the endpoints are not Cloudflare's (a rehearsal against a stand-in)."""
        return (self.api_base, self.gateway_base) != (API_BASE, GATEWAY_BASE)

    def redactor(self) -> Redactor:
        secrets = {s.name: s.reveal() for s in (self.account_id, self.api_token, self.gateway_token) if s}
        return Redactor(secrets)

    def gateway_url(self, path: str) -> str:
        """``{gateway_base}/{account}/{gateway}/{path}``: the provider-native and compat endpoints."""
        return f"{self.gateway_base}/{self.account_id.reveal()}/{self.gateway_id}/{path.lstrip('/')}"

    def gateway_headers(self) -> dict[str, str]:
        headers = {"authorization": f"Bearer {self.api_token.reveal()}"}
        if self.gateway_token is not None:
            headers["cf-aig-authorization"] = f"Bearer {self.gateway_token.reveal()}"
        return headers

    def api_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_token.reveal()}"}


def _endpoint(url: str, name: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: expected an http(s) URL such as https://host/path, got {url!r}")
    return url.strip().rstrip("/")
