"""response_format through the constraint hook: a JSON schema compiled by llguidance, applied in
serving's batch decoder and in transformers' generate alike."""

from __future__ import annotations

import json

import pytest

from clinitune.constrain.json_schema import SchemaError, compile_grammar
from clinitune.constrain.registry import build_constraint, json_spec

SCHEMA = {"type": "object", "properties": {"severity": {"enum": ["mild", "severe"]}, "count": {"type": "integer", "maximum": 9}},
          "required": ["severity", "count"], "additionalProperties": False}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clinitune.models.tiny import create_tiny_model

    d = create_tiny_model(tmp_path_factory.mktemp("json-tiny") / "m", hidden_size=32, num_layers=2)
    return AutoModelForCausalLM.from_pretrained(d).eval(), AutoTokenizer.from_pretrained(d)


def test_bad_schemas_are_schema_errors():
    with pytest.raises(SchemaError):
        compile_grammar({"type": "object", "properties": {"a": {"type": "strin"}}})
    with pytest.raises(SchemaError):
        compile_grammar(["not", "a", "schema"])  # type: ignore[arg-type]
    assert compile_grammar(None)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_batch_decoder_output_is_valid_json_under_the_schema(tiny, temperature):
    from clinitune.serve.decoding import BatchDecoder, SamplingParams

    model, tok = tiny
    eos = {tok.eos_token_id}
    c = build_constraint(json_spec(SCHEMA), tok, eos)
    prompts = [tok("patient note", add_special_tokens=False)["input_ids"], tok("x", add_special_tokens=False)["input_ids"]]
    out = BatchDecoder(model, tok, prompts, [SamplingParams(60, temperature, seed=s, constraint=c) for s in (1, 2)],
                       eos_ids=eos, pad_id=tok.pad_token_id).run()
    for d in out:
        got = json.loads(d.text)
        assert got["severity"] in ("mild", "severe") and 0 <= got["count"] <= 9 and set(got) == {"severity", "count"}


def test_transformers_generate_obeys_the_same_constraint(tiny):
    import torch
    from transformers import LogitsProcessorList

    from clinitune.constrain.hook import ConstraintLogitsProcessor

    model, tok = tiny
    c = build_constraint(json_spec(SCHEMA), tok, {tok.eos_token_id})
    enc = tok(["patient note"], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=60, do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                             logits_processor=LogitsProcessorList([ConstraintLogitsProcessor([c.begin()], enc["input_ids"].shape[1])]))
    text = tok.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert json.loads(text)["severity"] in ("mild", "severe")


def test_decoder_logprobs_and_penalties(tiny):
    import torch

    from clinitune.serve.decoding import BatchDecoder, SamplingParams

    model, tok = tiny
    ids = tok("Patient is a 67 year old", add_special_tokens=False)["input_ids"]
    eos = {tok.eos_token_id}
    d = BatchDecoder(model, tok, [ids], [SamplingParams(6, 0.0, logprobs=3)], eos_ids=eos, pad_id=tok.pad_token_id).run()[0]
    gen = [t for t, _, _ in d.logprobs]
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids + gen])).logits[0].float(), -1)
    for k, (t, v, top) in enumerate(d.logprobs):
        assert v == pytest.approx(lp[len(ids) - 1 + k, t].item(), abs=1e-4)
        assert len(top) == 3 and top[0][0] == t  # greedy: the chosen token is the most likely
    plain = BatchDecoder(model, tok, [ids], [SamplingParams(24, 0.0)], eos_ids=eos, pad_id=tok.pad_token_id).run()[0].text
    penal = BatchDecoder(model, tok, [ids], [SamplingParams(24, 0.0, presence_penalty=2.0, frequency_penalty=2.0)],
                         eos_ids=eos, pad_id=tok.pad_token_id).run()[0].text
    assert penal != plain
