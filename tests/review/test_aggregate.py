"""Aggregation: the latest grade counts, unblinding, win rate and its Wilson interval, accuracy per
slice, unsafe flags, and Cohen's kappa against known values."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from clinitune.review.aggregate import agreement, judgements, wilson_interval, win_rate


@dataclass
class FakeItem:  # the two attributes aggregation reads from an Item, plus its blinding
    id: int
    a_arm: str
    slices: dict = field(default_factory=dict)

    def arm(self, label: str) -> str:
        from clinitune.review.models import Item

        return Item.arm(self, label)


@dataclass
class G:
    id: int
    item_id: int
    reviewer_id: int
    grade_a: str
    grade_b: str
    preference: str
    unsafe_a: list = field(default_factory=list)
    unsafe_b: list = field(default_factory=list)


def test_wilson_interval_matches_known_values():
    # statsmodels.stats.proportion.proportion_confint(8, 10, method="wilson") = (0.4902, 0.9433)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.490160, abs=1e-5) and hi == pytest.approx(0.943318, abs=1e-5)
    # 0 of 20: (0, 0.1611); 20 of 20: (0.8389, 1)
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.161125), abs=1e-5)
    assert wilson_interval(20, 20) == pytest.approx((0.838875, 1.0), abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_latest_grade_counts_and_labels_are_unblinded():
    items = {1: FakeItem(1, "candidate", {"sex": "F"}), 2: FakeItem(2, "baseline", {"sex": "M"})}
    grades = [
        G(1, 1, 10, "incorrect", "correct", "B"),  # superseded below
        G(5, 1, 10, "correct", "incorrect", "A", ["phi"], []),  # item 1: A is the candidate
        G(2, 2, 10, "correct", "partial", "A", [], ["fabricated_fact"]),  # item 2: A is the baseline
        G(3, 1, 11, "partial", "partial", "tie"),
    ]
    js = {(j["item_id"], j["reviewer_id"]): j for j in judgements(grades, items)}
    assert len(js) == 3 and js[(1, 10)]["grade_id"] == 5
    assert js[(1, 10)]["grade"] == {"candidate": "correct", "baseline": "incorrect"} and js[(1, 10)]["preferred"] == "candidate"
    assert js[(1, 10)]["unsafe"] == {"candidate": ["phi"], "baseline": []}
    assert js[(2, 10)]["grade"] == {"candidate": "partial", "baseline": "correct"} and js[(2, 10)]["preferred"] == "baseline"
    assert js[(2, 10)]["unsafe"] == {"candidate": ["fabricated_fact"], "baseline": []}
    assert js[(1, 11)]["preferred"] == "tie"


def test_win_rate_is_item_level_with_ties_half():
    js = [{"item_id": 1, "preferred": "candidate"}, {"item_id": 1, "preferred": "tie"},  # item 1: 0.75
          {"item_id": 2, "preferred": "baseline"},  # item 2: 0
          {"item_id": 3, "preferred": "candidate"}, {"item_id": 4, "preferred": "candidate"}]  # 1, 1
    wr = win_rate(js)
    assert wr["n"] == 4 and wr["rate"] == pytest.approx((0.75 + 0 + 1 + 1) / 4)
    assert (wr["ci_low"], wr["ci_high"]) == pytest.approx(wilson_interval(2.75, 4))
    assert (wr["wins"], wr["ties"], wr["losses"]) == (3, 1, 1)
    assert win_rate([])["rate"] is None


def test_cohens_kappa_matches_the_textbook_example_and_is_none_when_undefined():
    # Two raters, 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> kappa 0.4 (Wikipedia's example)
    pairs = [("candidate", "candidate")] * 20 + [("candidate", "baseline")] * 5 + [("baseline", "candidate")] * 10 + [("baseline", "baseline")] * 15
    js = []
    for i, (a, b) in enumerate(pairs):
        for rid, pref in ((1, a), (2, b)):
            js.append({"item_id": i, "reviewer_id": rid, "preferred": pref, "grade": {"candidate": "correct", "baseline": "correct"}})
    ag = agreement(js, {1: "ann", 2: "ben"})
    (pair,) = ag["pairs"]
    assert pair["reviewers"] == ["ann", "ben"] and pair["shared_items"] == 50
    assert pair["preference_kappa"] == pytest.approx(0.4)
    assert pair["preference_agreement"] == pytest.approx(35 / 50)
    assert pair["grade_kappa"] is None  # both used one label only: undefined, not a perfect score
    assert ag["items_multi_graded"] == 50


def test_summary_of_a_graded_campaign(database, accounts_in, campaign_in):
    from clinitune.review.campaigns import GradeInput, compute_summary, get_campaign, record_grade
    from clinitune.review.models import User

    ids = accounts_in()
    cid = campaign_in(n=6, seed=1)
    with database.session() as s:
        camp = get_campaign(s, cid)
        alice, bob = s.get(User, ids["alice"]), s.get(User, ids["bob"])
        items = list(camp.items)
        for it in items:  # alice always prefers the candidate and grades it correct
            cand = "A" if it.a_arm == "candidate" else "B"
            g = {f"grade_{cand.lower()}": "correct", f"grade_{'b' if cand == 'A' else 'a'}": "incorrect"}
            record_grade(s, camp, it, alice, GradeInput(g["grade_a"], g["grade_b"], cand, [], [], ""), None, {})
        for it in items[:3]:  # bob prefers the baseline on three, and flags one candidate answer
            base = "B" if it.a_arm == "candidate" else "A"
            flags = {"A": [], "B": []}
            if it is items[0]:
                flags["A" if base == "B" else "B"] = ["wrong_drug_or_dose"]
            record_grade(s, camp, it, bob, GradeInput("partial", "partial", base, flags["A"], flags["B"], ""), None, {})
        summary = compute_summary(s, camp)
    assert summary["items"] == 6 and summary["graded_items"] == 6 and summary["reviewers"] == 2
    assert summary["judgements"] == 9
    assert summary["win_rate"]["rate"] == pytest.approx((3 * 0.5 + 3 * 1.0) / 6)
    assert summary["accuracy"]["candidate"]["correct"] == pytest.approx(6 / 9)
    assert summary["accuracy"]["baseline"]["incorrect"] == pytest.approx(6 / 9)
    assert summary["unsafe"]["candidate"]["wrong_drug_or_dose"] == 1 and summary["unsafe"]["baseline"]["wrong_drug_or_dose"] == 0
    assert set(summary["by_slice"]) == {"sex", "age_band", "note_type"}
    assert sum(v["items"] for v in summary["by_slice"]["sex"].values()) == 6
    (pair,) = summary["agreement"]["pairs"]
    assert pair["shared_items"] == 3 and pair["preference_agreement"] == 0.0
