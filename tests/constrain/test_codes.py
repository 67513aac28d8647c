"""Terminology-constrained decoding: no code outside the table, ever; free text untouched."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinitune.constrain.codes import code_constraint
from clinitune.terminology.systems import check_code_system, load_code_system
from clinitune.constrain.hook import ConstraintLogitsProcessor, mask_logits
from clinitune.terminology.icd10 import parse_codes
from clinitune.errors import ConfigError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tok():
    from clinitune.models.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer(512)


@pytest.fixture(scope="module")
def icd(tok):
    return code_constraint("icd10cm", tok, [tok.eos_token_id])


def _code_bias(tok) -> torch.Tensor:
    """Logit bias toward the characters codes are made of, so random decoding writes many spans."""
    bias = torch.zeros(len(tok))
    for i in range(len(tok)):
        t = tok.decode([i])
        if t and all(c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.( )," for c in t.upper()):
            bias[i] = 2.5
    return bias


def decode_random(constraint, tok, seed: int, steps: int, bias: torch.Tensor, scale: float) -> str:
    """Sample ``steps`` tokens from random logits under the constraint (no model: the constraint alone decides)."""
    g = torch.Generator().manual_seed(seed)
    state = constraint.begin()
    ids: list[int] = []
    for _ in range(steps):
        logits = torch.randn(1, len(tok), generator=g) * scale + bias
        mask_logits(logits, [state])
        token = int(torch.multinomial(torch.softmax(logits[0], -1), 1, generator=g))
        state.advance(token)
        if token == tok.eos_token_id:
            break
        ids.append(token)
    return constraint.complete(tok.decode(ids, skip_special_tokens=True))


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 60), scale=st.floats(0.5, 4.0))
def test_random_logits_never_produce_a_code_outside_the_table(tok, icd, seed, steps, scale):
    """Whatever the logits, every code the scorer reads from the answer is a billable ICD-10-CM code,
    also when the length limit cuts the answer in the middle of a code."""
    text = decode_random(icd, tok, seed, steps, _code_bias(tok), scale)
    codes = parse_codes(text)
    assert all(c in icd.system for c in codes), (text, codes)


def test_random_decoding_does_write_codes(tok, icd):
    """The property above is not vacuous: biased random decoding writes valid codes, and unconstrained it writes invalid ones."""
    bias = _code_bias(tok)
    valid = sum(len(parse_codes(decode_random(icd, tok, s, 60, bias, 1.0))) for s in range(30))
    assert valid >= 10

    class Free:
        def begin(self):
            return None

        def complete(self, text):
            return text

    g = torch.Generator().manual_seed(0)
    texts = []
    for s in range(30):
        logits = torch.randn(60, len(tok), generator=g) + bias
        ids = torch.multinomial(torch.softmax(logits, -1), 1, generator=g).flatten().tolist()
        texts.append(tok.decode(ids, skip_special_tokens=True))
    assert any(c not in icd.system for t in texts for c in parse_codes(t))


def test_code_spans_only_free_text_elsewhere(icd):
    from clinitune.constrain.codes import _START, _run

    ok = ["Pure hypercholesterolemia, unspecified (E78.00)\nAsthma, uncomplicated (J45.909)",
          "E11.9, I10", "Diagnosis: hypertension (I10).", "Acute on chronic diastolic (congestive) heart failure (I50.33)",
          "BP 120/80, 2 mg, COVID-19, type 2 diabetes"]
    for text in ok:
        assert _run(icd.system, _START, text.upper()) is not None, text
    for bad in ["E11, I10", "T2DM", "E11.99 and more", "I10X", "E11.9_", "Z99.99"]:
        assert _run(icd.system, _START, bad.upper()) is None, bad
    # an answer cut in the middle of a code loses the partial code, nothing else
    assert icd.complete("Asthma (J45.90") == "Asthma (" .rstrip()
    assert icd.complete("E11.9, I1") == "E11.9,"
    assert icd.complete("I10") == "I10"


def test_the_processor_drives_generate_and_stays_inside_the_table(tmp_path, tok):
    """transformers' generate with the hook: a random-init model still writes only table codes."""
    from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList

    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=2, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # push the output layer toward code characters
        model.lm_head.weight.add_(torch.randn_like(model.lm_head.weight) * 0.5)
    icd = code_constraint("icd10cm", tok, [tok.eos_token_id])
    prompts = tok(["I10, E11.9, J44.9 ", "Code: E"], return_tensors="pt", padding=True)
    width = prompts["input_ids"].shape[1]
    states = [icd.begin(), icd.begin()]
    out = model.generate(**prompts, max_new_tokens=40, do_sample=True, top_k=None, pad_token_id=tok.pad_token_id,
                         logits_processor=LogitsProcessorList([ConstraintLogitsProcessor(states, width)]))
    for row in out[:, width:]:
        text = icd.complete(tok.decode(row, skip_special_tokens=True))
        assert all(c in icd.system for c in parse_codes(text)), text


def test_file_tables_and_config_errors(tmp_path, tok):
    table = tmp_path / "local.csv"
    table.write_text("code,name\nE11.9,T2DM\nI10,HTN\n")
    system = load_code_system(f"file:{table}")
    assert system.codes == ("E11.9", "I10")
    c = code_constraint(f"file:{table}", tok, [tok.eos_token_id])
    from clinitune.constrain.codes import _START, _run

    assert _run(c.system, _START, "E11.9") is not None and _run(c.system, _START, "J44.9") is None
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty code table") as err:
        check_code_system(f"file:{empty}", "generation.code_system")
    assert "\n" not in str(err.value) and "generation.code_system" in str(err.value)
    with pytest.raises(ConfigError, match="unknown code system 'snomed'"):
        check_code_system("snomed", "generation.code_system")
    assert check_code_system(None) is None and check_code_system("icd10cm") == "icd10cm"


def _steer(constraint, tok, prefix: str, prefer: list[str], steps: int = 16) -> str:
    """Decode after ``prefix`` with logits that rank continuations of ``prefer[0]`` first, ``prefer[1]``
    second, ...: the text the constraint lets through."""
    state = constraint.begin()
    for i in tok(prefix, add_special_tokens=False)["input_ids"]:
        state.advance(i)
    texts = [tok.decode([i]) for i in range(len(tok))]
    out = ""
    for _ in range(steps):
        logits = torch.full((1, len(tok)), -5.0)
        for rank, target in enumerate(prefer):
            rest = target[len(out):] if target.startswith(out) else ""
            for i, t in enumerate(texts):
                if t and rest.startswith(t):
                    logits[0, i] = max(float(logits[0, i]), 10.0 - 3 * rank + len(t) * 0.01)
        if not bool((logits > -5).any()):
            break
        mask_logits(logits, [state])
        token = int(logits.argmax())
        state.advance(token)
        out += texts[token]
        if out.endswith(")"):
            break
    return out


def test_a_code_after_a_diagnosis_name_is_a_code_of_that_name(tok, icd):
    """A model that would write the wrong code after a name it got right writes the named code;
    after a name the table does not know, the code is left to the model (any table code)."""
    assert icd.system.named("old myocardial infarction") == ("I25.2",)
    assert _steer(icd, tok, "Old myocardial infarction (", ["I20.1)", "I25.2)"]) == "I25.2)"
    assert _steer(icd, tok, "2. Hypokalemia (", ["E87.1)", "E87.6)"]) == "E87.6)"
    assert _steer(icd, tok, "Heart attack long ago (", ["I20.1)", "I25.2)"]) == "I20.1)"
    # free text inside the parentheses is untouched
    assert _steer(icd, tok, "Old myocardial infarction (", ["remote)"]) == "remote)"


def test_a_file_table_with_names_narrows_too(tmp_path, tok):
    table = tmp_path / "named.csv"
    table.write_text("code,name\nE11.9,Diabetes type two\nI10,Hypertension\nI15.0,Renovascular hypertension\n")
    c = code_constraint(f"file:{table}", tok, [tok.eos_token_id])
    assert _steer(c, tok, "Hypertension (", ["I15.0)", "I10)"]) == "I10)"
    assert _steer(c, tok, "High blood pressure (", ["I15.0)", "I10)"]) == "I15.0)"
    unnamed = tmp_path / "codes.txt"
    unnamed.write_text("I10\nI15.0\n")
    c = code_constraint(f"file:{unnamed}", tok, [tok.eos_token_id])
    assert _steer(c, tok, "Hypertension (", ["I15.0)", "I10)"]) == "I15.0)"
