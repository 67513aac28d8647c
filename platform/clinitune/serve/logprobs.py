"""Log-probabilities on the wire: the generator's token scores as OpenAI's ``logprobs`` objects.

The generator turns its (token id, log-probability, alternatives) triples into entries with token
text (:func:`token_entries`) and cuts the generated ones to the text actually returned
(:func:`trim_to_text`: a stop sequence or a constraint may end the text inside the last tokens).
The gateway then shapes them:

* completions (:func:`completion_logprobs`): ``{"tokens", "token_logprobs", "top_logprobs",
  "text_offset"}``; with ``echo`` the prompt's tokens come first, the first of them with ``null``
  (nothing precedes it), exactly what lm-evaluation-harness's ``local-completions`` reads;
* chat (:func:`chat_logprobs`): ``{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}``.

Token texts are model output: when the PHI guard changed or blocked a choice's text, that choice's
log-probabilities are withheld (``null``) rather than leak what the guard removed.
"""

from __future__ import annotations

from typing import Any, Sequence

Entry = tuple[str, float | None, list[tuple[str, float]]]  # (token text, logprob, [(alternative text, logprob)])


def _pieces(tokenizer, ids: list[int]) -> list[str]:
    """Each token's share of the decoded text: joined, they are the text (a token ending inside a
    multi-byte character gets '' and the token completing it the whole character)."""
    out, prev = [], ""
    for k in range(1, len(ids) + 1):
        cur = tokenizer.decode(ids[:k], skip_special_tokens=True, clean_up_tokenization_spaces=False).rstrip("\ufffd")
        out.append(cur[len(prev):] if cur.startswith(prev) else cur)
        prev = cur if cur.startswith(prev) else prev + out[-1]
    return out


def token_entries(tokenizer, triples: Sequence[tuple[int, float | None, Sequence[tuple[int, float]]]], *,
                  incremental: bool = False) -> list[list]:
    """[(token text, log-probability, [(alternative text, log-probability)])] (JSON-friendly lists).

    ``incremental``: the tokens' texts are their shares of the whole decoded text (generated text,
    so they join to the answer); otherwise each token is decoded alone (echoed prompts, alternatives).
    """
    ids = {int(t) for t, _, _ in triples} | {int(a) for _, _, top in triples for a, _ in top}
    text = {i: tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False) for i in ids}
    own = _pieces(tokenizer, [int(t) for t, _, _ in triples]) if incremental else [text[int(t)] for t, _, _ in triples]
    return [[o, lp, [[text[int(a)], float(v)] for a, v in top]] for o, (t, lp, top) in zip(own, triples)]


def trim_to_text(entries: list[list], text: str) -> list[list]:
    """The entries whose tokens start inside ``text`` (the returned text may end before the last tokens)."""
    out, pos = [], 0
    for e in entries:
        if pos >= len(text) and out:
            break
        out.append(e)
        pos += len(e[0])
    return out


def _top_dict(top: list) -> dict[str, float] | None:
    if not top:
        return None
    d: dict[str, float] = {}
    for t, v in top:  # two ids may decode alike: keep the higher
        d[t] = max(v, d.get(t, float("-inf")))
    return d


def completion_logprobs(prompt: list[list] | None, generated: list[list] | None, want_top: bool) -> dict[str, Any]:
    """OpenAI completions ``logprobs`` over the echoed prompt (when given) then the generated tokens."""
    entries = [*(prompt or []), *(generated or [])]
    tokens, lps, tops, offsets, pos = [], [], [], [], 0
    for i, (t, lp, top) in enumerate(entries):
        tokens.append(t)
        lps.append(lp)
        first_prompt = prompt is not None and i == 0
        tops.append(None if first_prompt else (_top_dict(top) if want_top else None))
        offsets.append(pos)
        pos += len(t)
    return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}


def chat_logprobs(generated: list[list]) -> dict[str, Any]:
    """OpenAI chat ``logprobs``: one entry per generated token with its top alternatives."""
    def item(t: str, lp: float) -> dict[str, Any]:
        return {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}

    return {"content": [{**item(t, lp), "top_logprobs": [item(a, v) for a, v in top]} for t, lp, top in generated]}


def wants_logprobs(req) -> int | None:
    """Alternatives per generated token a request asks for (None: no logprobs)."""
    if hasattr(req, "logprobs_k"):
        return req.logprobs_k()
    return getattr(req, "logprobs", None)


__all__ = ["chat_logprobs", "completion_logprobs", "token_entries", "trim_to_text", "wants_logprobs"]
