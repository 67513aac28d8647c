"""The OpenAI-compatible wire format: request models, error bodies, response builders.

Requests are validated strictly: an unknown parameter or an unsupported value is a 400 naming the
parameter (``param``), never ignored silently. Extensions (pass them with the openai client's
``extra_body``): ``retrieval`` and ``code_system`` (terminology-constrained decoding); responses add
``citations``, ``adapter`` and ``constraint``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ApiError(Exception):
    """An error returned to the client in OpenAI's format: ``{"error": {message, type, param, code}}``."""

    TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
             503: "service_unavailable", 500: "server_error"}

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.code}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class RetrievalOptions(_Strict):
    """Per-request retrieval settings (an extension: ``extra_body={"retrieval": {...}}``)."""

    enabled: bool | None = None
    kb: str | None = None
    top_k: int | None = Field(None, ge=1)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(_Strict):
    include_usage: bool = False


class _Common(_Strict):
    model: str = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    user: str | None = Field(None, max_length=256)
    retrieval: RetrievalOptions | None = None
    code_system: str | None = Field(None, min_length=1, max_length=64)  # extension: 'icd10cm', 'none'; null = server default

    @field_validator("n")
    @classmethod
    def _one(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only n=1 is supported")
        return v

    @field_validator("presence_penalty", "frequency_penalty")
    @classmethod
    def _no_penalty(cls, v: float) -> float:
        if v != 0:
            raise ValueError("penalties are not supported; use 0")
        return v

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str] | None:
        if v is None:
            return None
        stops = [v] if isinstance(v, str) else v
        if any(not s for s in stops):
            raise ValueError("stop sequences must not be empty")
        return stops

    def stop_list(self) -> tuple[str, ...]:
        return tuple(self.stop or ())


class ChatCompletionRequest(_Common):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None

    @field_validator("messages")
    @classmethod
    def _non_empty(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if not v:
            raise ValueError("messages must not be empty; send at least one message")
        return v

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, v: bool | None) -> bool | None:
        if v:
            raise ValueError("logprobs are not supported")
        return v

    @model_validator(mode="after")
    def _has_content(self) -> "ChatCompletionRequest":
        if not any(m.text().strip() for m in self.messages):
            raise ValueError("every message is empty; send some text")
        return self

    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def plain_messages(self) -> list[dict[str, str]]:
        out = []
        for m in self.messages:
            role = "system" if m.role == "developer" else m.role
            out.append({"role": role, "content": m.text()})
        return out


class CompletionRequest(_Common):
    prompt: str | list[str]
    echo: bool = False
    suffix: str | None = None
    logprobs: int | None = None
    best_of: int | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[str]) -> str:
        if isinstance(v, list):
            if len(v) != 1:
                raise ValueError("send exactly one prompt per request")
            v = v[0]
        if not v.strip():
            raise ValueError("prompt must not be empty")
        return v

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, v: bool) -> bool:
        if v:
            raise ValueError("echo is not supported")
        return v

    @field_validator("suffix", "logprobs")
    @classmethod
    def _unsupported(cls, v: Any) -> Any:
        if v is not None:
            raise ValueError("not supported; leave it unset")
        return v

    @field_validator("best_of")
    @classmethod
    def _best_of_one(cls, v: int | None) -> int | None:
        if v not in (None, 1):
            raise ValueError("only best_of=1 is supported")
        return v

    def limit(self) -> int:
        return self.max_tokens or 16


def parse_request(body: bytes, model: type[BaseModel]) -> Any:
    """Parse and validate a JSON body, turning every problem into a 400 :class:`ApiError`."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = f" at line {err.lineno} column {err.colno}" if isinstance(err, json.JSONDecodeError) else ""
        raise ApiError(400, f"The request body is not valid JSON{where}. Send a JSON object.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        if first.get("type") == "extra_forbidden":
            raise ApiError(400, f"Unrecognized request argument supplied: {loc}.", param=loc, code="unknown_parameter") from None
        if first.get("type") == "missing":
            raise ApiError(400, f"Missing required parameter: '{loc}'.", param=loc, code="missing_required_parameter") from None
        msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        where = f"'{loc}': " if loc else ""
        raise ApiError(400, f"Invalid value for {where}{msg}.", param=loc or None, code="invalid_value") from None


# -- responses ---------------------------------------------------------------------------------
def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _envelope(rid: str, obj: str, model: str, created: int, choice: dict[str, Any], *,
              usage_: dict | None = None, extras: dict[str, Any] | None = None,
              fingerprint: bool = False) -> dict[str, Any]:
    """The fields every response and stream chunk shares, around its one choice."""
    body: dict[str, Any] = {"id": rid, "object": obj, "created": created, "model": model}
    if fingerprint:
        body["system_fingerprint"] = (extras or {}).get("adapter", {}).get("fingerprint")
    body["choices"] = [{"index": 0, **choice}]
    if usage_ is not None:
        body["usage"] = usage_
    if extras:
        body.update(extras)
    return body


def chat_response(rid: str, model: str, text: str, finish: str, prompt_tokens: int, completion_tokens: int,
                  extras: dict[str, Any]) -> dict[str, Any]:
    choice = {"message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": finish}
    return _envelope(rid, "chat.completion", model, int(time.time()), choice,
                     usage_=usage(prompt_tokens, completion_tokens), extras=extras, fingerprint=True)


def completion_response(rid: str, model: str, text: str, finish: str, prompt_tokens: int, completion_tokens: int,
                        extras: dict[str, Any]) -> dict[str, Any]:
    choice = {"text": text, "logprobs": None, "finish_reason": finish}
    return _envelope(rid, "text_completion", model, int(time.time()), choice,
                     usage_=usage(prompt_tokens, completion_tokens), extras=extras, fingerprint=True)


def chat_chunk(rid: str, model: str, created: int, delta: dict[str, Any], finish: str | None,
               extras: dict[str, Any] | None = None, usage_: dict | None = None) -> dict[str, Any]:
    choice = {"delta": delta, "logprobs": None, "finish_reason": finish}
    return _envelope(rid, "chat.completion.chunk", model, created, choice, usage_=usage_, extras=extras)


def completion_chunk(rid: str, model: str, created: int, text: str, finish: str | None,
                     extras: dict[str, Any] | None = None, usage_: dict | None = None) -> dict[str, Any]:
    choice = {"text": text, "logprobs": None, "finish_reason": finish}
    return _envelope(rid, "text_completion", model, created, choice, usage_=usage_, extras=extras)


def sse(data: dict[str, Any] | str) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n"
