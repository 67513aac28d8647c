"""The OpenAI-compatible wire format: request models, error bodies, response builders.

Requests are validated strictly: an unknown parameter or an unsupported value is a 400 naming the
parameter (``param``), never ignored silently. Supported beyond plain text: ``n``, ``seed``,
``presence_penalty``/``frequency_penalty``, ``response_format`` (``json_object``, ``json_schema``:
constrained decoding), chat ``logprobs``/``top_logprobs``, and on completions ``logprobs`` (top-k),
``echo`` (the prompt's tokens with their log-probabilities; ``max_tokens: 0`` allowed) and prompts
as a string, a list of strings, token ids or a list of token-id lists (what lm-evaluation-harness
sends). Extensions (pass them with the openai client's
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


MAX_N = 16  # choices per request
MAX_LOGPROBS = 5  # completions' logprobs (OpenAI's limit)
MAX_TOP_LOGPROBS = 20  # chat's top_logprobs (OpenAI's limit)


class JsonSchemaFormat(_Strict):
    name: str = Field("response", min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)


class ResponseFormat(_Strict):
    """``{"type": "text" | "json_object" | "json_schema", "json_schema": {name, schema, strict}}``."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> "ResponseFormat":
        if self.type == "json_schema" and (self.json_schema is None or self.json_schema.schema_ is None):
            raise ValueError("type 'json_schema' needs json_schema.schema")
        return self

    def constrained(self) -> bool:
        return self.type != "text"

    def schema_dict(self) -> dict[str, Any] | None:
        """The schema to constrain to (None: any JSON object)."""
        return self.json_schema.schema_ if self.type == "json_schema" and self.json_schema else None


class _Common(_Strict):
    model: str = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=MAX_N)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    user: str | None = Field(None, max_length=256)
    retrieval: RetrievalOptions | None = None
    code_system: str | None = Field(None, min_length=1, max_length=64)  # extension: 'icd10cm', 'none'; null = server default
    response_format: ResponseFormat | None = None

    @model_validator(mode="after")
    def _one_streamed_choice(self) -> "_Common":
        if self.stream and self.n > 1:
            raise ApiError(400, "Streaming returns one choice; send n=1 with stream=true, or stream=false for several.",
                           param="n", code="invalid_value")
        return self

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
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    @field_validator("messages")
    @classmethod
    def _non_empty(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if not v:
            raise ValueError("messages must not be empty; send at least one message")
        return v

    @model_validator(mode="after")
    def _has_content(self) -> "ChatCompletionRequest":
        if not any(m.text().strip() for m in self.messages):
            raise ValueError("every message is empty; send some text")
        if self.logprobs and self.stream:
            raise ApiError(400, "logprobs are returned with whole responses; send stream=false.", param="logprobs",
                           code="invalid_value")
        if self.top_logprobs is not None and not self.logprobs:
            raise ApiError(400, "top_logprobs needs logprobs=true.", param="top_logprobs", code="invalid_value")
        return self

    def logprobs_k(self) -> int | None:
        """Alternatives per generated token (None: no logprobs)."""
        return (self.top_logprobs or 0) if self.logprobs else None

    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def plain_messages(self) -> list[dict[str, str]]:
        out = []
        for m in self.messages:
            role = "system" if m.role == "developer" else m.role
            out.append({"role": role, "content": m.text()})
        return out


class CompletionRequest(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(None, ge=0)
    echo: bool = False
    suffix: str | None = None
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    best_of: int | None = None

    @field_validator("prompt")
    @classmethod
    def _prompts_ok(cls, v):
        items = [v] if isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(t, int) for t in v)) else v
        if not items:
            raise ValueError("prompt must not be empty")
        for p in items:
            if isinstance(p, str) and not p.strip():
                raise ValueError("prompt must not be empty")
            if isinstance(p, list) and (not p or any(t < 0 for t in p)):
                raise ValueError("token-id prompts must be non-empty lists of non-negative token ids")
        return v

    @field_validator("suffix")
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

    @model_validator(mode="after")
    def _echo_rules(self) -> "CompletionRequest":
        if self.echo and self.stream:
            raise ApiError(400, "echo is not supported with stream=true; send stream=false to get the prompt back.",
                           param="echo", code="invalid_value")
        if self.logprobs is not None and self.stream:
            raise ApiError(400, "logprobs are returned with whole responses; send stream=false.", param="logprobs",
                           code="invalid_value")
        if self.max_tokens == 0 and not self.echo:
            raise ApiError(400, "max_tokens=0 only makes sense with echo=true (the prompt's log-probabilities); "
                                "ask for at least 1 token.", param="max_tokens", code="invalid_value")
        return self

    def prompts(self) -> list[str | list[int]]:
        """Each prompt: text, or token ids (lm-evaluation-harness sends ids)."""
        v = self.prompt
        if isinstance(v, str) or (v and all(isinstance(t, int) for t in v)):
            return [v]  # type: ignore[list-item]
        return list(v)  # type: ignore[arg-type]

    def limit(self) -> int:
        return 16 if self.max_tokens is None else self.max_tokens


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


def _envelope(rid: str, obj: str, model: str, created: int, choice: dict[str, Any] | list[dict[str, Any]], *,
              usage_: dict | None = None, extras: dict[str, Any] | None = None,
              fingerprint: bool = False) -> dict[str, Any]:
    """The fields every response and stream chunk shares, around its one choice."""
    body: dict[str, Any] = {"id": rid, "object": obj, "created": created, "model": model}
    if fingerprint:
        body["system_fingerprint"] = (extras or {}).get("adapter", {}).get("fingerprint")
    body["choices"] = [{"index": i, **c} for i, c in enumerate(choice)] if isinstance(choice, list) else [{"index": 0, **choice}]
    if usage_ is not None:
        body["usage"] = usage_
    if extras:
        body.update(extras)
    return body


def chat_response(rid: str, model: str, text: str, finish: str, prompt_tokens: int, completion_tokens: int,
                  extras: dict[str, Any], *, choices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``choices`` (several, with logprobs) replaces the one choice ``text``/``finish`` describe."""
    choice = choices or {"message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": finish}
    return _envelope(rid, "chat.completion", model, int(time.time()), choice,
                     usage_=usage(prompt_tokens, completion_tokens), extras=extras, fingerprint=True)


def completion_response(rid: str, model: str, text: str, finish: str, prompt_tokens: int, completion_tokens: int,
                        extras: dict[str, Any], *, choices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    choice = choices or {"text": text, "logprobs": None, "finish_reason": finish}
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
