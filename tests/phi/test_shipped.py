"""The tagger shipped in the package: it is the default detector, it loads offline from a fresh
clone (the weights are in git), it reads names from context, and every stage uses it — curation's
Ray Data actors and the serving guard. One engine per session: loading the encoder is the cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clinitune.phi import PhiConfig, PhiEngine
from clinitune.phi.tagger import ADAPTER_CONFIG, ADAPTER_FILE, META_FILE, WEIGHTS_DIR

ROOT = Path(__file__).resolve().parents[2]
RULES = PhiEngine(PhiConfig(detector="rules"))

# Names the lexicons do not hold, in contexts no rule reads: only the tagger can find them.
CONTEXT_ONLY = [
    ("We discussed the plan with Vrenthal and she agreed to the transfer.", ["Vrenthal"]),
    ("Per Oskarsdottir, the family will visit tomorrow.", ["Oskarsdottir"]),
    ("Case reviewed with Belvanne, who agrees with the plan.", ["Belvanne"]),
]


@pytest.fixture(scope="session")
def shipped():
    return PhiEngine().warm_up()


def _leaks(text: str, words: list[str]) -> list[str]:
    return [w for w in words if w in text]


def test_the_default_detector_is_the_ensemble_on_the_shipped_weights(shipped):
    assert PhiConfig().detector == "ensemble"
    assert shipped.tagger.meta["labels"][0] == "O"
    assert shipped.tagger.meta["licence"] == "GPL-2.0-only" and (WEIGHTS_DIR / "LICENSE").is_file()
    assert (WEIGHTS_DIR / ADAPTER_FILE).stat().st_size < 8 * 2**20  # adapter and head only


def test_the_weights_load_offline_from_a_fresh_clone(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "platform/clinitune/phi/weights"],
                             capture_output=True, text=True, check=True).stdout.split()
    for name in (ADAPTER_FILE, ADAPTER_CONFIG, META_FILE, "LICENSE"):
        assert f"platform/clinitune/phi/weights/{name}" in tracked
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    env = {**os.environ, "PYTHONPATH": str(clone / "platform"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    code = ("import clinitune.phi as p, json; e = p.PhiEngine().warm_up(); "
            "print(json.dumps([p.__file__, e.redact(" + repr(CONTEXT_ONLY[0][0]) + ").text]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    where, red = json.loads(out.stdout.strip().splitlines()[-1])
    assert where.startswith(str(clone)) and "Vrenthal" not in red and "[NAME]" in red


@pytest.mark.parametrize("text,names", CONTEXT_ONLY)
def test_names_known_only_from_context(shipped, text, names):
    assert _leaks(RULES.redact(text).text, names), "the rules alone should miss this name (else the case tests nothing)"
    assert not _leaks(shipped.redact(text).text, names)


def test_a_note_longer_than_the_encoder_window(shipped):
    filler = "Vital signs stable, tolerating tube feeds, lungs clear, will continue to monitor overnight. "
    text = ("Spoke with Vrenthal at the bedside. " + filler * 40 + "Seen on 2021-05-18T09:30:00Z. " + filler * 40
            + "Per Oskarsdottir, family aware. Call 617-555-0134.")
    assert len(shipped.tagger.tokenizer(text)["input_ids"]) > 3 * 512
    red = shipped.redact(text, note_id="long-1").text
    assert not _leaks(red, ["Vrenthal", "2021-05-18", "Oskarsdottir", "617-555-0134"])
    assert red.count(filler.strip()) == 80


def test_the_serving_guard_redacts_a_name_no_lexicon_holds():
    from clinitune.serve.config import PhiGuardSettings
    from clinitune.serve.guard import PhiGuard

    guard = PhiGuard(PhiGuardSettings())
    for text, names in CONTEXT_ONLY:
        out = guard.output(text)
        assert not out.blocked and not _leaks(out.text, names) and out.counts.get("NAME")
    stream = guard.stream()
    sent = "".join(stream.feed(part) for part in CONTEXT_ONLY[0][0].split(" ")[:1]) + "".join(
        stream.feed(" " + part) for part in CONTEXT_ONLY[0][0].split(" ")[1:]) + stream.finish()
    assert "Vrenthal" not in sent


@pytest.mark.ray
def test_curation_actors_run_the_ensemble(ray_session, tmp_path):
    from clinitune.curate.config import CurateConfig
    from clinitune.curate.pipeline import run_curation
    from clinitune.schema import SPLITS

    recs = [{"note_id": f"n{i}", "patient_id": f"p{i % 4}",
             "text": f"{CONTEXT_ONLY[i % 3][0]} Visit {i}: lungs clear, plan to wean oxygen, labs in the morning, case {i}x{i * 7}."}
            for i in range(12)]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    cfg = CurateConfig()
    cfg.boilerplate.enabled = False
    cfg.execution.batch_size = 4
    out = tmp_path / "curated"
    run_curation([str(src)], out, cfg)
    texts = pd.concat([pd.read_parquet(f) for s in SPLITS for f in sorted((out / s).glob("*.parquet"))], ignore_index=True)
    assert len(texts) == 12
    joined = "\n".join(texts["text"])
    assert not _leaks(joined, [n for _, names in CONTEXT_ONLY for n in names])
    assert "lungs clear" in joined
