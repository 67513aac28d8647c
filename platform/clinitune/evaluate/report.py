"""``report.json`` and a self-contained ``report.html`` (inline SVG charts, no scripts, no network).

The report never holds note text: examples are named by id, and only the short answers and
reference labels are shown.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from clinitune.artifacts.publish import write_whole

from clinitune.evaluate import svg
from clinitune.evaluate.metrics import HIGHER, metric_info

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
FORMAT = "clinitune.eval_report/2"  # /2: the four arms (base, base + RAG, fine-tuned, fine-tuned + RAG), new knowledge


def deltas(cand: dict, base: dict) -> dict:
    """Candidate minus baseline for every metric both have (raw difference; see the catalog for direction)."""
    return {k: cand[k] - base[k] for k in cand if isinstance(cand.get(k), (int, float)) and isinstance(base.get(k), (int, float))}


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, hp = out / REPORT_JSON, out / REPORT_HTML
    write_whole(jp, json.dumps(report, indent=2, default=str))
    write_whole(hp, render_html(report))
    return jp, hp


def read_report(path: str | Path) -> dict:
    from clinitune.errors import InputPathError, UserError

    p = Path(path)
    if p.is_dir():
        p = p / REPORT_JSON
    if not p.is_file():
        raise InputPathError(f"report '{p}' does not exist.", fix="pass a report.json written by `clinitune evaluate`.")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise UserError(f"report '{p}' is not valid JSON.", fix="pass a report.json written by `clinitune evaluate`.") from None
    if not isinstance(data, dict) or "metrics" not in data:
        raise UserError(f"report '{p}' has no metrics.", fix="pass a report.json written by `clinitune evaluate`.")
    return data


def summary_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(metric, candidate, baseline, delta) for the headline metrics present in a report."""
    cand, base = report["metrics"]["candidate"], report["metrics"]["baseline"]
    primary = report["task"]["primary_metric"]
    keys = [primary, f"rag.{primary}", "rag.retrieval_recall", "task.rouge1", "task.rouge2", "task.fact_recall",
            "task.fact_hallucination_rate", "task.exact_match", "task.loss", "probes.mean", "phi.canary_extraction_rate",
            "hallucination.rate", "fairness.max_gap", "consistency.agreement"]
    keys += sorted(k for k in cand if k.startswith("probes.") and k != "probes.mean")
    keys += ["knowledge.mean"] + sorted(k for k in cand if k.startswith("knowledge.") and k != "knowledge.mean")

    def f(v):
        return "–" if v is None else f"{v:.3f}"

    rows, seen = [], set()
    for k in keys:
        if k in seen or (cand.get(k) is None and base.get(k) is None):
            continue
        seen.add(k)
        c, b = cand.get(k), base.get(k)
        rows.append((k, f(c), f(b), "–" if c is None or b is None else f"{c - b:+.3f}"))
    return rows


def summary_table(report: dict, title: str, headers: tuple[str, str] = ("candidate", "baseline")):
    """A rich Table of ``summary_rows`` for the terminal (the CLI and the demo print it)."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("metric", *headers, "delta"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in summary_rows(report):
        table.add_row(*row)
    return table


ROLE_LABELS = {"candidate": "fine-tuned", "baseline": "base", "candidate_rag": "fine-tuned + RAG", "baseline_rag": "base + RAG"}
ARM_COLUMNS = (("code_f1", "code F1"), ("invalid_code_rate", "invalid codes"), ("hallucination_rate", "hallucinated"),
               ("retrieval_recall_at_4", "recall@4"), ("new_knowledge_code_f1", "new-knowledge F1"))


def coded_arms(report: dict) -> dict:
    """The report's arms when any of them measured a coding column (a text task has none to show)."""
    arms = report.get("arms") or {}
    return arms if any(a.get(k) is not None for a in arms.values() for k, _ in ARM_COLUMNS) else {}


def arms_rows(report: dict) -> list[tuple[str, ...]]:
    """(arm, *ARM_COLUMNS) for each arm of a /2 report, plus the fine-tuned arm decoded with the
    constraint off when it was measured; none for a text task (no coding column measured)."""
    arms = coded_arms(report)

    def f(v):
        return "–" if v is None else f"{v:.3f}"

    rows = [(a.get("label", name), *(f(a.get(k)) for k, _ in ARM_COLUMNS)) for name, a in arms.items()]
    free = (arms.get("finetuned") or {}).get("unconstrained")
    if free:
        rows.append(("fine-tuned, constraint off", f(free.get("code_f1")), f(free.get("invalid_code_rate")), "–", "–", "–"))
    return rows


def judged_lines(report: dict) -> list[str]:
    """Hallucination and paraphrase / seed consistency of the candidate, in words: n/a with the reason
    when there was nothing to judge, the abstention rate beside them, the decoding stated."""
    out = []
    labels = ROLE_LABELS
    con = report.get("consistency") or {}
    for role in ("candidate", "baseline", "candidate_rag", "baseline_rag"):
        h = (report.get("hallucination") or {}).get(role) or {}
        if h:
            rate = "n/a" if h.get("rate") is None else f"{h['rate']:.3f}"
            ab = h.get("abstention_rate")
            out.append(f"{labels[role]}: hallucinated-code rate {rate} ({h.get('predicted_codes', 0)} codes predicted; abstention rate "
                       f"{'n/a' if ab is None else f'{ab:.3f}'})" + (f" — {h['reason']}" if h.get("reason") else ""))
        if role.endswith("_rag") != bool(con.get("retrieval")):
            continue
        c = con.get(role.replace("_rag", "")) or {}
        for kind in ("paraphrase", "seed"):
            b = c.get(kind) or {}
            if not b:
                continue
            if b.get("agreement") is None:
                out.append(f"{labels[role]}: {kind} consistency {b.get('reason') or 'n/a'}")
                continue
            lo, hi = b.get("ci95") or (0.0, 0.0)
            out.append(f"{labels[role]}: {kind} consistency {b['agreement']:.3f} ({b.get('agreed')}/{b.get('judged')} pairs judged on "
                       f"{c.get('compared_on', 'content')}, 95% CI {lo:.2f}-{hi:.2f}; {b.get('decoding')})")
    return out


def arms_table(report: dict, title: str = "the arms on the same held-out notes"):
    """A rich Table of ``arms_rows`` (None for a report without arms)."""
    from rich.table import Table

    rows = arms_rows(report)
    if not rows:
        return None
    table = Table(title=title)
    for col in ("arm", *(label for _, label in ARM_COLUMNS)):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for row in rows:
        table.add_row(*row)
    return table


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:980px;color:#1a202c}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #e2e8f0;padding:4px 8px;text-align:left}
th{background:#f7fafc}.num{text-align:right;font-variant-numeric:tabular-nums}.good{color:#2f855a}.bad{color:#c53030}
.banner{padding:10px 14px;border-radius:6px;font-weight:bold;margin:12px 0}.promote{background:#c6f6d5}.reject{background:#fed7d7}
.muted{color:#718096;font-size:12px}code{font-size:12px}
"""


def _f(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return escape(str(v))


def _delta_cell(metric: str, d: float | None) -> str:
    if d is None:
        return '<td class="num">–</td>'
    info = metric_info(metric)
    better = (d > 0) if (info is None or info.direction == HIGHER) else (d < 0)
    cls = "good" if better and abs(d) > 1e-12 else ("bad" if abs(d) > 1e-12 else "")
    return f'<td class="num {cls}">{d:+.4f}</td>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(r: dict) -> str:
    cand_m = r["metrics"].get("candidate", {})
    base_m = r["metrics"].get("baseline", {})
    delta = r["metrics"].get("delta", {})
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Clinitune evaluation: {escape(r['candidate']['name'])}</title>"
             f"<style>{_CSS}</style></head><body>"]
    parts.append(f"<h1>Evaluation: {escape(r['candidate']['name'])} vs {escape(r['baseline']['name'])}</h1>")
    data = r.get("data", {})
    parts.append(f"<p class='muted'>task <b>{escape(str(r['task']['name']))}</b> · {data.get('examples')} held-out examples "
                 f"({data.get('patients')} patients, split '{escape(str(data.get('split')))}') · dataset {escape(str(data.get('dataset_hash') or '')[:12])} · "
                 f"created {escape(str(r.get('created_at')))} · {r.get('seconds', 0):.0f}s</p>")
    gate = r.get("gate")
    if gate:
        parts.append(f"<div class='banner {gate['decision']}'>Gate decision: {gate['decision'].upper()}</div><ul>")
        parts += [f"<li>{escape(x)}</li>" for x in gate["reasons"]]
        parts.append("</ul>")

    parts.append("<h2>Metrics</h2>")
    rows = []
    for k in sorted(set(cand_m) | set(base_m)):
        info = metric_info(k)
        rows.append([f"<td><code>{escape(k)}</code></td>", f'<td class="num">{_f(cand_m.get(k))}</td>',
                     f'<td class="num">{_f(base_m.get(k))}</td>', _delta_cell(k, delta.get(k)),
                     f"<td class='muted'>{escape(info.direction if info else '')} is better</td>"])
    parts.append(_table(["metric", "candidate", "baseline", "delta", ""], rows))
    bounded = [(k, {"candidate": cand_m.get(k), "baseline": base_m.get(k)}) for k in sorted(set(cand_m) | set(base_m))
               if k not in ("task.loss", "task.perplexity") and all(v is None or 0 <= v <= 1 for v in (cand_m.get(k), base_m.get(k)))]
    parts.append(svg.bar_chart(bounded, ["candidate", "baseline"], title="Candidate vs baseline (0–1 metrics)", ymax=1.0, height=300))

    hist = (r.get("training") or {}).get("history") or []
    curves = {name: [(h["step"], h[name]) for h in hist if isinstance(h.get(name), (int, float)) and "step" in h]
              for name in ("train_loss", "val_loss")}
    curves = {k: v for k, v in curves.items() if v}
    if curves:
        parts.append("<h2>Training curves</h2>")
        parts.append(svg.line_chart(curves, title="Loss by optimizer step"))

    probes = r.get("probes") or {}
    if probes:
        parts.append("<h2>Forgetting probes</h2>")
        rows = [[f"<td>{escape(f)}</td>", f'<td class="num">{p.get("n")}</td>', f'<td class="num">{_f(p.get("candidate"))}</td>',
                 f'<td class="num">{_f(p.get("baseline"))}</td>',
                 f'<td class="num {"bad" if (p.get("regression") or 0) > 0 else "good"}">{_f(p.get("regression"))}</td>']
                for f, p in sorted(probes.items())]
        parts.append(_table(["family", "probes", "candidate", "baseline", "regression"], rows))
        parts.append(svg.bar_chart([(f, {"candidate": p.get("candidate"), "baseline": p.get("baseline")}) for f, p in sorted(probes.items())],
                                   ["candidate", "baseline"], title="Probe accuracy by family", ymax=1.0))

    fair = r.get("fairness") or {}
    fc, fb = fair.get("candidate") or {}, fair.get("baseline") or {}
    if fc.get("by_key"):
        pm = fc.get("primary_metric")
        parts.append(f"<h2>Fairness: {escape(str(pm))} per slice</h2>")
        for key, kd in fc["by_key"].items():
            bd = (fb.get("by_key") or {}).get(key, {})
            groups, rows = [], []
            for value, s in kd["slices"].items():
                b = (bd.get("slices") or {}).get(value, {})
                groups.append((f"{value} (n={s['n']})", {"candidate": s.get(pm), "baseline": b.get(pm)}))
                rows.append([f"<td>{escape(value)}{' <span class=muted>(small)</span>' if s.get('small') else ''}</td>",
                             f'<td class="num">{s["n"]}</td>', f'<td class="num">{_f(s.get(pm))}</td>', f'<td class="num">{_f(b.get(pm))}</td>'])
            parts.append(f"<p><b>{escape(key)}</b>: gap {_f(kd.get('gap'))} (candidate), {_f(bd.get('gap'))} (baseline)</p>")
            parts.append(_table([key, "n", "candidate", "baseline"], rows))
            parts.append(svg.bar_chart(groups, ["candidate", "baseline"], title=f"{pm} by {key}", ymax=1.0, height=220))

    parts.append(arms_html(r))

    parts.append(judged_html(r))
    for section, title in (("canaries", "PHI leakage (canaries)"),):
        block = r.get(section) or {}
        if block:
            parts.append(f"<h2>{title}</h2><pre class='muted'>{escape(json.dumps(block, indent=2, default=str))}</pre>")

    from clinitune.evaluate.knowledge import knowledge_html

    parts.append(knowledge_html(r.get("knowledge")))
    parts.append(_human_review_html(r.get("human_review")))
    ex = r.get("examples") or []
    if ex:
        parts.append("<h2>Sample answers (held-out, by id; no note text)</h2>")
        rows = [[f"<td><code>{escape(e['example_id'])}</code></td>", f"<td>{escape(e['reference'])}</td>",
                 f"<td>{escape(e['candidate'])}</td>", f"<td>{escape(e['baseline'])}</td>"] for e in ex]
        parts.append(_table(["example", "reference", "candidate", "baseline"], rows))
    if gate:
        parts.append("<h2>Gate checks</h2>")
        rows = [[f"<td>{escape(c['name'])}</td>", f"<td><code>{escape(c['metric'])}</code></td>", f'<td class="num">{_f(c["candidate"])}</td>',
                 f'<td class="num">{_f(c["baseline"])}</td>', f'<td class="num">{_f(c["threshold"])}</td>',
                 f"<td class={'good' if c['passed'] else 'bad'}>{'pass' if c['passed'] else 'FAIL'}</td>"] for c in gate["checks"]]
        parts.append(_table(["check", "metric", "candidate", "baseline", "threshold", ""], rows))
    parts.append(f"<p class='muted'>candidate: <code>{escape(str(r['candidate'].get('ref')))}</code> · baseline: "
                 f"<code>{escape(str(r['baseline'].get('ref')))}</code> · format {FORMAT}</p></body></html>")
    return "".join(parts)


def _rate(v, reason: str | None = None) -> str:
    if v is None:
        return f'<td class="num" title="{escape(reason or "")}">n/a</td>'
    return f'<td class="num">{v:.4f}</td>'


def judged_html(r: dict) -> str:
    """Hallucination and consistency, with the abstention rate beside them; n/a with its reason when
    there is nothing to judge (a model that abstains is not a perfect model)."""
    hal, con = r.get("hallucination") or {}, r.get("consistency") or {}
    if not hal and not con:
        return ""
    parts = ["<h2>Hallucination and consistency</h2>"]
    rows, notes = [], []
    labels = ROLE_LABELS
    retrieval = bool(con.get("retrieval"))  # consistency measured on the retrieval arm
    for role in ("candidate", "baseline", "candidate_rag", "baseline_rag"):
        if role not in hal and role not in con:
            continue
        h = hal.get(role) or {}
        c = (con.get(role.replace("_rag", "")) or {}) if role.endswith("_rag") == retrieval else {}
        para, seed = c.get("paraphrase") or {}, c.get("seed") or {}

        def agree(block: dict) -> str:
            if not block:
                return "<td>–</td>"
            if block.get("agreement") is None:
                return f"<td>n/a <span class=muted>({escape(str(block.get('reason') or ''))})</span></td>"
            lo, hi = block.get("ci95") or (None, None)
            return (f'<td class="num">{block["agreement"]:.3f} <span class=muted>({block.get("agreed")}/{block.get("judged")} '
                    f"pairs; 95% CI {lo:.2f}-{hi:.2f})</span></td>")

        rows.append([f"<td>{labels[role]}</td>", _rate(h.get("rate"), h.get("reason")), _rate(h.get("answer_rate"), h.get("reason")),
                     _rate(h.get("abstention_rate")), agree(para), agree(seed)])
        if h.get("reason"):
            notes.append(f"{labels[role]}: hallucination {h['reason']}")
    parts.append(_table(["model", "hallucinated-code rate", "answers with one", "abstention rate", "paraphrase agreement",
                         "seed agreement"], rows))
    decoding = ((con.get("candidate") or {}).get("paraphrase") or {}).get("decoding")
    seed_dec = ((con.get("candidate") or {}).get("seed") or {}).get("decoding")
    if decoding or seed_dec:
        notes.append(f"paraphrase answers: {decoding}; seed answers: {seed_dec}; answers compared on "
                     f"{(con.get('candidate') or {}).get('compared_on', 'content')}")
    parts += [f"<p class='muted'>{escape(n)}</p>" for n in notes]
    return "".join(parts)


ARM_METRICS = (("code_f1", "code F1"), ("code_precision", "precision"), ("code_recall", "recall"),
               ("invalid_code_rate", "invalid-code rate"), ("hallucination_rate", "hallucinated-code rate"),
               ("retrieval_recall_at_4", "retrieval recall@4"), ("new_knowledge_code_f1", "new-knowledge F1"))


def arms_html(r: dict) -> str:
    """One comparison table of the arms on the same held-out notes, and one chart."""
    arms = coded_arms(r)
    if not arms:
        return ""
    rag = r.get("rag") or {}
    nk = r.get("new_knowledge") or {}
    parts = ["<h2>Base, base + RAG, fine-tuned, fine-tuned + RAG</h2>"]
    notes = [f"the same {(r.get('data') or {}).get('examples')} held-out notes in every arm"]
    if rag.get("enabled"):
        notes.append(f"{rag.get('top_k')} passages per prompt from knowledge base <code>{escape(str(rag.get('kb')))}</code> "
                     f"({escape(str(rag.get('mode')))} retrieval, one query per problem), as the serving endpoint adds them")
    code_system = next((a.get("code_system") for a in arms.values()), None)
    notes.append(f"answers decoded under code system <code>{escape(str(code_system))}</code>" if code_system
                 else "answers decoded without a terminology constraint")
    if nk.get("enabled"):
        notes.append(f"new knowledge: {nk.get('examples')} notes needing {len(nk.get('codes') or [])} codes held out of training "
                     "(F1 over those codes only)")
    parts.append(f"<p class='muted'>{' · '.join(notes)}</p>")
    rows = [[f"<td>{escape(a.get('label', name))}</td>"] + [f'<td class="num">{_f(a.get(k))}</td>' for k, _ in ARM_METRICS]
            for name, a in arms.items()]
    free = (arms.get("finetuned") or {}).get("unconstrained")
    if free:
        rows.append(["<td>fine-tuned, constraint off</td>", f'<td class="num">{_f(free.get("code_f1"))}</td>', "<td></td>", "<td></td>",
                     f'<td class="num">{_f(free.get("invalid_code_rate"))}</td>', "<td></td>", "<td></td>", "<td></td>"])
    parts.append(_table(["arm", *(label for _, label in ARM_METRICS)], rows))
    shown = [("code_f1", "code F1"), ("retrieval_recall_at_4", "retrieval recall@4"), ("new_knowledge_code_f1", "new-knowledge F1"),
             ("invalid_code_rate", "invalid-code rate")]
    groups = [(label, {a.get("label", n): a.get(k) for n, a in arms.items()}) for k, label in shown]
    parts.append(svg.bar_chart(groups, [a.get("label", n) for n, a in arms.items()], title="The arms on the same held-out notes",
                               ymax=1.0, height=280))
    if rag.get("examples"):
        rows = [[f"<td><code>{escape(e['example_id'])}</code></td>", f"<td>{escape(', '.join(e['retrieved']))}</td>",
                 f"<td>{escape(e['answer'])}</td>"] for e in rag["examples"]]
        parts.append(_table(["example", "passages (document ids)", "fine-tuned + RAG answer"], rows))
    return "".join(parts)


def _human_review_html(hr: dict | None) -> str:
    """The closed clinician-review campaign's headline numbers (written by ``clinitune review close``)."""
    if not hr:
        return ""
    wr = hr.get("win_rate") or {}
    rate = "–" if wr.get("rate") is None else f"{wr['rate']:.3f} (95% CI {wr['ci_low']:.3f}–{wr['ci_high']:.3f}, {wr.get('n')} items)"
    head = (f"<h2>Clinician review</h2><p class='muted'>campaign {escape(str(hr.get('campaign_id')))} "
            f"({escape(str(hr.get('name', '')))}), closed {escape(str(hr.get('closed_at')))} by {escape(str(hr.get('closed_by')))}: "
            f"{hr.get('graded_items')} of {hr.get('items')} items graded by {hr.get('reviewers')} reviewer(s)</p>"
            f"<p>win rate of the candidate vs the baseline (blinded; ties count half): <b>{escape(rate)}</b></p>")
    rows = []
    for role in ("candidate", "baseline"):
        a = (hr.get("accuracy") or {}).get(role) or {}
        flags = ", ".join(f"{k} ×{v}" for k, v in ((hr.get("unsafe") or {}).get(role) or {}).items() if v) or "none"
        rows.append([f"<td>{role}</td>", f'<td class="num">{_f(a.get("correct"))}</td>', f'<td class="num">{_f(a.get("partial"))}</td>',
                     f'<td class="num">{_f(a.get("incorrect"))}</td>', f"<td>{escape(flags)}</td>"])
    return head + _table(["answer", "correct", "partially correct", "incorrect", "unsafe flags"], rows)
