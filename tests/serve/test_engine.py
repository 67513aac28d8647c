"""The generation engine without Ray: batched decoding, sampling settings, adapters, LRU retirement."""

from __future__ import annotations

import pytest
import torch

from clinitune.serve.decoding import SamplingParams, _holdback
from clinitune.serve.engine import AdapterLoadError, GenerationEngine



@pytest.fixture(scope="module")
def engine(tiny_model):
    return GenerationEngine(tiny_model, threads=1)


def _chat(engine, text):
    return engine.encode_chat([{"role": "user", "content": text}])


GREEDY = SamplingParams(max_tokens=24, temperature=0.0)


def test_batched_greedy_matches_transformers_generate(engine):
    prompts = [_chat(engine, q) for q in ("hi", "a much longer question about the patient's medications", "x")]
    batched = engine.generate(prompts, [GREEDY] * 3)
    for prompt, got in zip(prompts, batched):
        ref = engine.model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=24, do_sample=False,
                                    eos_token_id=sorted(engine.eos_ids), pad_token_id=engine.pad_id)
        want = engine.tokenizer.decode(ref[0, len(prompt):], skip_special_tokens=True)
        assert got.text == want
        assert got.prompt_tokens == len(prompt)
        assert got.finish_reason in ("stop", "length")


def test_adapters_answer_differently_and_base_is_untouched(engine, adapters):
    prompt = [_chat(engine, "a question nobody trained on")]
    base_before = engine.generate(prompt, [GREEDY])[0].text
    coder = engine.load_adapter("coder", adapters["coder"])
    leaky = engine.load_adapter("leaky", adapters["leaky"])
    params = [SamplingParams(max_tokens=40, temperature=0.0)]
    assert engine.generate(prompt, params, coder)[0].text.startswith("The code is E11")
    assert engine.generate(prompt, params, leaky)[0].text.startswith("Patient Maria Gonzalez")
    assert engine.generate(prompt, [GREEDY])[0].text == base_before
    engine.retire_adapter(coder)
    engine.retire_adapter(leaky)
    assert engine.loaded == []
    assert engine.generate(prompt, [GREEDY])[0].text == base_before


def test_retiring_an_adapter_in_use_waits_for_its_batch(engine, adapters, adapter_texts):
    name = engine.load_adapter("coder", adapters["coder"])
    dec = engine.decoder([_chat(engine, "hello")], [SamplingParams(max_tokens=40, temperature=0.0)], name)
    text = dec.step()[0].text
    engine.retire_adapter(name)  # LRU eviction mid-batch
    assert engine.loaded == []
    while not dec.done:
        text += "".join(d.text for d in dec.step() if d is not None)
    engine.release(name)
    assert text.startswith(adapter_texts["coder"][:20])
    assert name not in engine._adapters  # deleted once the batch ended


def test_per_row_settings_in_one_batch(engine, adapters, adapter_texts):
    name = engine.load_adapter("leaky", adapters["leaky"])
    prompt = _chat(engine, "hello")
    rows = engine.generate(
        [prompt, prompt, prompt],
        [SamplingParams(max_tokens=40, temperature=0.0, stop=("MRN",)),
         SamplingParams(max_tokens=3, temperature=0.0),
         SamplingParams(max_tokens=40, temperature=0.0)],
        name)
    engine.retire_adapter(name)
    assert rows[0].finish_reason == "stop" and "MRN" not in rows[0].text and rows[0].text.startswith("Patient Maria")
    assert rows[1].finish_reason == "length" and rows[1].completion_tokens == 3
    assert rows[2].text[:35] == adapter_texts["leaky"][:35] and len(rows[2].text) > len(rows[0].text)


def test_seed_makes_sampling_reproducible(engine):
    prompt = [_chat(engine, "tell me something")]
    p = SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=1234)
    assert engine.generate(prompt, [p])[0].text == engine.generate(prompt, [p])[0].text
    texts = {engine.generate(prompt, [SamplingParams(max_tokens=16, temperature=1.0, seed=s)])[0].text for s in range(4)}
    assert len(texts) > 1


def test_streamed_deltas_never_show_a_stop_sequence(engine, adapters):
    name = engine.load_adapter("coder", adapters["coder"])
    dec = engine.decoder([_chat(engine, "hi")], [SamplingParams(max_tokens=40, temperature=0.0, stop=("E11.9",))], name)
    pieces = []
    while not dec.done:
        pieces.extend(d.text for d in dec.step() if d is not None)
    engine.release(name)
    engine.retire_adapter(name)
    assert "".join(pieces) == "The code is "
    assert not any("E11" in p for p in pieces)


def test_holdback():
    assert _holdback("abc E1", ("E11.9",)) == 2
    assert _holdback("abc", ("E11.9",)) == 0
    assert _holdback("the end", ()) == 0


def test_bad_adapter_is_a_clear_error(engine, tmp_path):
    with pytest.raises(AdapterLoadError, match="no PEFT adapter"):
        engine.load_adapter("ghost", tmp_path)
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8, "target_modules": ["nope"]}')
    with pytest.raises(AdapterLoadError, match="cannot be loaded"):
        engine.load_adapter("broken", tmp_path)


def test_code_constraint_in_the_batch_decoder(engine, adapters, tmp_path):
    """The constraint hook in serving's decoder: a valid code passes untouched, a code missing from the
    table cannot be written, the unconstrained row beside them is unaffected, and streamed text never
    shows a partial code."""
    from clinitune.constrain.codes import code_constraint
    from clinitune.terminology.icd10 import parse_codes

    name = engine.load_adapter("coder", adapters["coder"])
    prompt = _chat(engine, "what is the code for diabetes")
    icd = code_constraint("icd10cm", engine.tokenizer, engine.eos_ids)
    table = tmp_path / "no-diabetes.txt"
    table.write_text("I10\nJ44.9\nE11.65\n")
    local = code_constraint(f"file:{table}", engine.tokenizer, engine.eos_ids)
    params = [SamplingParams(max_tokens=40, temperature=0.0, constraint=icd),
              SamplingParams(max_tokens=40, temperature=0.0, constraint=local),
              SamplingParams(max_tokens=40, temperature=0.0)]
    dec = engine.decoder([prompt] * 3, params, name)
    streamed = ["", "", ""]
    while not dec.done:
        for i, d in enumerate(dec.step()):
            if d is not None:
                streamed[i] += d.text
                assert all(c in icd.system for c in parse_codes(streamed[i])) or i == 2
    engine.release(name)
    engine.retire_adapter(name)
    assert streamed[0].startswith("The code is E11.9") and streamed[2].startswith("The code is E11.9")
    assert "E11.9 " not in streamed[1] and all(c in local.system for c in parse_codes(streamed[1]))
