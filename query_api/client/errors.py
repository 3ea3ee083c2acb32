"""What the client raises. Every message says what to do next.

ClientError
 ├── ConnectionFailed     the API could not be reached (after retries)
 └── ApiError             the API answered with an error status
      ├── Unauthorized    401: no key, or an unknown or revoked one
      ├── Forbidden       403: the key may not read this (another tenant, admin-only)
      ├── NotFound        404
      ├── InvalidRequest  413/422: the request itself is wrong; `detail` says how
      └── Unavailable     503 (after retries): the database is down; retry later
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """A freshindex API call failed."""


class ConnectionFailed(ClientError):
    """The API could not be reached: is `freshindex api` (or `up`) running at that URL?"""


class ApiError(ClientError):
    """The API answered with an error status."""

    status = 0
    advice = "see the detail"

    def __init__(self, detail: Any, status: int | None = None) -> None:
        self.detail = detail
        self.status = status or self.status
        super().__init__(f"{self.status}: {_text(detail)} ({self.advice})")


class Unauthorized(ApiError):
    status = 401
    advice = (
        "pass api_key=... (or set FRESHINDEX_API_KEY); an operator creates keys with "
        "`freshindex keys create --tenant NAME`"
    )


class Forbidden(ApiError):
    status = 403
    advice = "use a key of that tenant, or an admin key (`freshindex keys create --admin`)"


class NotFound(ApiError):
    status = 404
    advice = "check the doc_id and tenant; deleted documents are gone"


class InvalidRequest(ApiError):
    status = 422
    advice = "fix the request as the detail says"


class Unavailable(ApiError):
    status = 503
    advice = "the index's database is unreachable; retry later or raise `retries`"

    def __init__(self, detail: Any, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(detail)


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: InvalidRequest,
    422: InvalidRequest,
}


def error_for(status: int, detail: Any, retry_after: float | None) -> ApiError:
    if status == 503:
        return Unavailable(detail, retry_after)
    return _BY_STATUS.get(status, ApiError)(detail, status)


def _text(detail: Any) -> str:
    """FastAPI's validation details (a list of errors) as one readable line."""
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
            if isinstance(e, dict)
            else str(e)
            for e in detail
        )
    return str(detail)
