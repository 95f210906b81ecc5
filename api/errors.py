"""API errors and the handlers that turn them into JSON responses.

Every error response has the shape ``{"detail": "<sentence>", "code": "<stable code>"}`` and,
for parameter errors, ``"parameter": "<name>"``. Nothing raised by user input reaches the
client as a 500: validation errors become 422, unknown ids 404, an unreachable InfluxDB 503.

Exceptions::

    Exception
    └── ApiError            a response with a status and a message code
        └── Unavailable     a backing service is down (503)
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from contract import ID_PATTERN, id_problem

from .messages import render, request_language

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error response: HTTP status, message code, the values the message needs and extra headers."""

    def __init__(
        self,
        status_code: int,
        code: str,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
        **values: object,
    ) -> None:
        super().__init__(code)
        self.status_code = status_code
        self.code = code
        self.parameter = parameter
        self.headers = headers
        self.values = values


class Unavailable(ApiError):
    """Raised when a service the response depends on cannot be reached."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(503, code)
        self.reason = reason


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the documented JSON shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if isinstance(exc, Unavailable):
            logger.error("%s %s failed: %s", request.method, request.url.path, exc.reason)
        body = {"detail": render(exc.code, request_language(request), **exc.values), "code": exc.code}
        if exc.parameter:
            body["parameter"] = exc.parameter
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        language = request_language(request)
        error = exc.errors()[0]
        name = str(error["loc"][-1]) if error["loc"] else "request"
        if error["type"] == "missing":
            detail = render("missing_parameter", language, name=name)
            code = "missing_parameter"
        else:
            detail = render("invalid_parameter", language, name=name, problem=_problem(error))
            code = "invalid_parameter"
        return JSONResponse({"detail": detail, "code": code, "parameter": name}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            detail = render("not_found", request_language(request), path=request.url.path)
            return JSONResponse({"detail": detail, "code": "not_found"}, status_code=404)
        return JSONResponse({"detail": str(exc.detail), "code": "http_error"}, status_code=exc.status_code)


def _problem(error: dict) -> str:
    """Describe a validation error; an id gets the contract's own explanation, not a regex."""
    value = error.get("input")
    is_id_pattern = error["type"] == "string_pattern_mismatch" and error["ctx"].get("pattern") == ID_PATTERN
    if isinstance(value, str) and (is_id_pattern or error["type"] == "string_too_long"):
        return id_problem(value) or error["msg"]
    return error["msg"]
