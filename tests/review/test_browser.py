"""The review app in a real headless Chromium (Debian's, driven by Playwright) against
``clinitune review serve`` on a free port: sign-in, grading with the mouse and with the keyboard,
progress, redirects, roles, and closing a campaign.

Set ``CLINITUNE_SCREENSHOTS=<dir>`` to save the screenshots the README shows (docs/review-*.png),
and ``CLINITUNE_SCREENSHOTS_EVAL=<eval output dir>`` to grade a real model's answers in them
instead of the tiny random-init models' (any evaluation with at least 6 held-out items).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from .conftest import PASSWORDS

SHOTS = os.environ.get("CLINITUNE_SCREENSHOTS")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"review-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory, eval_dir, review_server):
    import shutil

    from clinitune.review.accounts import add_user
    from clinitune.review.campaigns import create_campaign
    from clinitune.review.db import Database
    from clinitune.review.source import resolve_eval

    root = tmp_path_factory.mktemp("browser")
    ev = Path(shutil.copytree(os.environ.get("CLINITUNE_SCREENSHOTS_EVAL") or eval_dir, root / "eval"))
    url = f"sqlite:///{root / 'review.db'}"
    db = Database(url)
    with db.session() as s:
        for name, pw in PASSWORDS.items():
            add_user(s, name, pw, "admin" if name == "admin" else "reviewer", min_length=12, actor="test")
        cid = create_campaign(s, resolve_eval(str(ev)), n=6, seed=0, name=None, created_by="test").id
    base = review_server(url, root)
    yield {"base": base, "db": db, "cid": cid, "eval": ev}
    db.dispose()


@pytest.fixture
def as_user(chromium, site):
    contexts = []

    def open_as(user: str | None, viewport=(1280, 900)):
        ctx = chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(30_000)  # generous: the machine may be busy
        if user:
            page.goto(site["base"] + "/login")
            page.fill("#username", user)
            page.fill("#password", PASSWORDS[user])
            page.click("#sign-in")
            page.wait_for_url(site["base"] + "/")
        return page

    yield open_as
    for ctx in contexts:
        ctx.close()


def _grades(site) -> list:
    from clinitune.review.models import Grade

    with site["db"].session() as s:
        return list(s.scalars(select(Grade).order_by(Grade.id)).all())


def test_unauthenticated_visit_goes_to_sign_in_and_back(site, as_user):
    page = as_user(None)
    cid = site["cid"]
    page.goto(f"{site['base']}/campaigns/{cid}")
    assert re.search(r"/login\?next=/campaigns/\d+$", page.url)
    shot(page, "sign-in")
    page.fill("#username", "alice")
    page.fill("#password", "wrong-password-here")
    page.click("#sign-in")
    assert page.inner_text("#error") == "Sign-in failed: wrong user name or password."
    page.fill("#password", PASSWORDS["alice"])
    page.click("#sign-in")
    page.wait_for_url(f"{site['base']}/campaigns/{cid}")
    assert page.inner_text("#progress-mine-text") == "0/6"


def test_grading_with_mouse_and_keyboard_moves_progress(site, as_user):
    page = as_user("alice")
    cid = site["cid"]
    page.click(f"tr[data-campaign='{cid}'] >> text=Start grading")
    page.wait_for_url(f"{site['base']}/campaigns/{cid}/items/1")
    shot(page, "grading")
    # mouse: click the choices and type a comment
    page.click("#grade_a-partial")
    page.click("#grade_b-correct")
    page.click("#unsafe_a-fabricated_fact")
    page.click("#preference-B")
    page.fill("#comment", "A invents a code; reviewer phone 617-555-0199.")
    page.click("#submit")
    page.wait_for_url(f"{site['base']}/campaigns/{cid}/items/2?saved=1")
    assert page.inner_text("#progress-mine-text") == "1/6" and page.is_visible("#saved")
    assert "done" in page.get_attribute("nav.items a:nth-child(1)", "class")
    # keyboard: 1 (A correct), 6 (B incorrect), a (A better), Enter (save)
    for key in ("1", "6", "a"):
        page.keyboard.press(key)
    assert page.is_checked("#grade_a-correct") and page.is_checked("#grade_b-incorrect") and page.is_checked("#preference-A")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site['base']}/campaigns/{cid}/items/3?saved=1")
    assert page.inner_text("#progress-mine-text") == "2/6"
    # keys typed into the comment box stay text; Escape leaves it; n / p move between items
    page.keyboard.press("c")
    page.keyboard.type("1 and 4 look similar")
    assert page.input_value("#comment") == "1 and 4 look similar" and not page.is_checked("#grade_a-correct")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    page.wait_for_url(f"{site['base']}/campaigns/{cid}/items/4")
    page.keyboard.press("p")
    page.wait_for_url(f"{site['base']}/campaigns/{cid}/items/3")
    # an incomplete grade is explained and nothing is stored
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "Grade answer B" in page.inner_text("main") and len(_grades(site)) == 2

    g1, g2 = _grades(site)[:2]
    assert (g1.grade_a, g1.grade_b, g1.preference, g1.unsafe_a) == ("partial", "correct", "B", ["fabricated_fact"])
    assert "617-555-0199" not in g1.comment and "[PHONE]" in g1.comment
    assert (g2.grade_a, g2.grade_b, g2.preference) == ("correct", "incorrect", "A")
    page.goto(f"{site['base']}/campaigns/{cid}")
    assert page.get_attribute("#progress-mine", "value") == "2" and page.inner_text("#progress-all-text") == "2/6"
    shot(page, "campaign")


def test_second_reviewer_sees_campaign_progress_and_cannot_reach_admin(site, as_user):
    page = as_user("bob")
    cid = site["cid"]
    assert page.query_selector("#nav-admin") is None
    row = page.inner_text(f"tr[data-campaign='{cid}']")
    assert "0/6" in row and "2/6" in row  # bob's own progress, and the campaign's
    page.goto(f"{site['base']}/campaigns/{cid}/items/1")
    page.keyboard.press("2")
    page.keyboard.press("5")
    page.keyboard.press("t")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site['base']}/campaigns/{cid}/items/2?saved=1")
    for path in ("/admin", f"/campaigns/{cid}/agreement", f"/campaigns/{cid}/export.csv"):
        resp = page.goto(site["base"] + path)
        assert resp.status == 403 and "Admins only" in page.inner_text("main"), path


def test_admin_sees_agreement_closes_the_campaign_and_grading_stops(site, as_user):
    cid = site["cid"]
    reviewer = as_user("alice")
    reviewer.goto(f"{site['base']}/campaigns/{cid}/items/4")  # a form left open while the admin closes
    admin = as_user("admin", viewport=(1280, 1000))
    admin.goto(f"{site['base']}/campaigns/{cid}/agreement")
    assert "1 item graded by more than one reviewer" in admin.inner_text("main")
    shot(admin, "agreement")
    admin.goto(site["base"] + "/admin")
    shot(admin, "admin")
    admin.once("dialog", lambda d: d.accept())
    admin.click(f"#close-{cid}")
    admin.wait_for_url(f"{site['base']}/campaigns/{cid}?closed=1")
    assert admin.inner_text("#status").lower() == "closed" and admin.is_visible("#win-rate")
    assert "2 of 6 items graded by 2 reviewers" in admin.inner_text("#summary")
    shot(admin, "results")

    before = len(_grades(site))
    reviewer.click("#grade_a-correct")
    reviewer.click("#grade_b-correct")
    reviewer.click("#preference-tie")
    reviewer.click("#submit")
    reviewer.wait_for_load_state()
    assert "is closed: grades are no longer accepted" in reviewer.inner_text("main")
    assert len(_grades(site)) == before
    reviewer.goto(f"{site['base']}/campaigns/{cid}/items/5")
    assert reviewer.is_visible("#closed") and reviewer.is_disabled("#submit")
