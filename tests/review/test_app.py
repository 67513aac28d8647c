"""The web application over HTTP (in-process ASGI client): sign-in, sessions, CSRF, roles, grading,
closed campaigns, PHI in comments, export. The browser tests drive the same pages in Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from clinitune.review.models import Grade, LoginAttempt, SessionRow

from .conftest import PASSWORDS


@pytest.fixture
def app_for(database, tmp_path):
    from clinitune.review.app import create_app
    from clinitune.review.config import ReviewConfig

    def make(**cfg) -> TestClient:
        conf = ReviewConfig(workdir=str(tmp_path), **cfg)
        return TestClient(create_app(conf, database=database), base_url="http://testserver", follow_redirects=False)

    return make


def _token(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert m, name
    return m.group(1)


def sign_in(client: TestClient, user: str, password: str | None = None):
    page = client.get("/login")
    return client.post("/login", data={"username": user, "password": password or PASSWORDS[user],
                                       "login_token": _token(page.text, "login_token"), "next": "/"})


def _grade_form(client: TestClient, cid: int, pos: int, **extra) -> dict:
    page = client.get(f"/campaigns/{cid}/items/{pos}")
    assert page.status_code == 200
    return {"csrf_token": _token(page.text, "csrf_token"), "grade_a": "correct", "grade_b": "incorrect", "preference": "A", **extra}


def _grades(database) -> list[Grade]:
    with database.session() as s:
        return list(s.scalars(select(Grade)).all())


def test_unauthenticated_requests_go_to_sign_in(app_for, accounts_in, campaign_in):
    accounts_in()
    cid = campaign_in(n=3)
    c = app_for()
    for path in ("/", f"/campaigns/{cid}", f"/campaigns/{cid}/items/1", "/admin", f"/campaigns/{cid}/export.csv"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    r = c.post(f"/campaigns/{cid}/items/1", data={"grade_a": "correct", "grade_b": "correct", "preference": "A"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login?why=expired")


def test_sign_in_generic_error_rate_limit_and_headers(app_for, accounts_in, database):
    accounts_in()
    c = app_for(sign_in={"max_failures": 3, "window_minutes": 15})
    wrong = sign_in(c, "alice", "not-her-password")
    unknown = sign_in(c, "nobody-here", "whatever-password")
    assert wrong.status_code == unknown.status_code == 401
    msg = "Sign-in failed: wrong user name or password."
    assert msg in wrong.text and msg in unknown.text  # the same message: no account enumeration
    sign_in(c, "alice", "not-her-password-2")
    sign_in(c, "alice", "not-her-password-3")
    throttled = sign_in(c, "alice")  # the right password, but after 3 failures
    assert throttled.status_code == 429 and "Too many sign-in attempts" in throttled.text
    assert "ct_session" not in c.cookies
    other = app_for()  # another account from the same address is not locked out by alice's failures
    assert sign_in(other, "bob").status_code == 303
    with database.session() as s:
        attempts = s.scalars(select(LoginAttempt).where(LoginAttempt.username == "alice")).all()
        assert [a.succeeded for a in attempts] == [False, False, False, False]
        assert all("passphrase" not in a.username for a in attempts)
    r = other.get("/")
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
    cookie = other.cookies.jar
    assert any(ck.name == "ct_session" and ck.has_nonstandard_attr("HttpOnly") for ck in cookie)


def test_sign_in_form_without_its_token_is_refused(app_for, accounts_in):
    accounts_in()
    c = app_for()
    r = c.post("/login", data={"username": "alice", "password": PASSWORDS["alice"], "next": "/"})
    assert r.status_code == 400 and "expired or could not be verified" in r.text and "ct_session" not in c.cookies


def test_open_redirect_after_sign_in_is_refused(app_for, accounts_in):
    accounts_in()
    for evil in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil.example"):
        c = app_for()
        page = c.get("/login")
        r = c.post("/login", data={"username": "bob", "password": PASSWORDS["bob"], "login_token": _token(page.text, "login_token"),
                                   "next": evil})
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_grading_progress_and_redacted_comment(app_for, accounts_in, campaign_in, database):
    accounts_in()
    cid = campaign_in(n=3)
    c = app_for()
    assert sign_in(c, "alice").status_code == 303
    r = c.get(f"/campaigns/{cid}")
    assert 'id="progress-mine-text">0/3' in r.text
    form = _grade_form(c, cid, 1, unsafe_b=["phi", "other"], comment="Called 617-555-0123 about MRN 48213377; dose fine.")
    r = c.post(f"/campaigns/{cid}/items/1", data=form)
    assert r.status_code == 303 and r.headers["location"] == f"/campaigns/{cid}/items/2?saved=1"
    page = c.get(r.headers["location"])
    assert 'id="progress-mine-text">1/3' in page.text and "Saved." in page.text
    (g,) = _grades(database)
    assert (g.grade_a, g.grade_b, g.preference, sorted(g.unsafe_b)) == ("correct", "incorrect", "A", ["other", "phi"])
    assert "617-555-0123" not in g.comment and "48213377" not in g.comment and "[PHONE]" in g.comment
    assert g.comment.endswith("dose fine.") and g.comment_phi.get("PHONE") == 1
    # the page never says which side is the candidate
    html = c.get(f"/campaigns/{cid}/items/1").text.lower()
    assert "candidate" not in html and "baseline" not in html
    # incomplete grade: explained, nothing stored
    r = c.post(f"/campaigns/{cid}/items/2", data={"csrf_token": form["csrf_token"], "grade_a": "correct"})
    assert r.status_code == 400 and "Grade answer B" in r.text and "Nothing was saved" in r.text
    r = c.post(f"/campaigns/{cid}/items/2", data={**form, "unsafe_a": ["made-up"]})
    assert r.status_code == 400 and len(_grades(database)) == 1


def test_missing_csrf_or_expired_session_stores_nothing(app_for, accounts_in, campaign_in, database):
    accounts_in()
    cid = campaign_in(n=3)
    c = app_for()
    sign_in(c, "alice")
    form = _grade_form(c, cid, 1)
    r = c.post(f"/campaigns/{cid}/items/1", data={k: v for k, v in form.items() if k != "csrf_token"})
    assert r.status_code == 303 and r.headers["location"] == f"/login?why=csrf&next=/campaigns/{cid}/items/1"
    assert _grades(database) == []
    assert c.get("/").status_code == 303  # the session was ended
    sign_in(c, "alice")
    form = _grade_form(c, cid, 1)
    r = c.post(f"/campaigns/{cid}/items/1", data={**form, "csrf_token": "forged"})
    assert r.headers["location"].startswith("/login?why=csrf") and _grades(database) == []
    sign_in(c, "alice")
    form = _grade_form(c, cid, 1)
    with database.session() as s:  # the session expires (idle too long)
        s.execute(update(SessionRow).values(last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)))
    r = c.post(f"/campaigns/{cid}/items/1", data=form)
    assert r.status_code == 303 and r.headers["location"] == f"/login?why=expired&next=/campaigns/{cid}/items/1"
    assert _grades(database) == []
    assert "Sign in again; nothing was saved" in c.get(r.headers["location"]).text


def test_reviewers_cannot_reach_admin_pages(app_for, accounts_in, campaign_in):
    accounts_in()
    cid = campaign_in(n=3)
    c = app_for()
    sign_in(c, "bob")
    for path in ("/admin", f"/campaigns/{cid}/agreement", f"/campaigns/{cid}/export.csv", f"/campaigns/{cid}/export.json"):
        r = c.get(path)
        assert r.status_code == 403 and "Admins only" in r.text, path
    csrf = _token(c.get("/").text, "csrf_token")
    assert c.post(f"/admin/campaigns/{cid}/close", data={"csrf_token": csrf}).status_code == 403
    assert c.post("/admin/users", data={"csrf_token": csrf, "username": "mallory", "password": "x" * 20, "role": "admin"}).status_code == 403
    assert 'id="nav-admin"' not in c.get("/").text


def test_admin_adds_users_closes_and_exports(app_for, accounts_in, campaign_in, database):
    accounts_in()
    cid = campaign_in(n=3)
    rev = app_for()
    sign_in(rev, "alice")
    rev.post(f"/campaigns/{cid}/items/1", data=_grade_form(rev, cid, 1, comment="=HYPERLINK(\"x\")"))
    adm = app_for()
    sign_in(adm, "admin")
    csrf = _token(adm.get("/admin").text, "csrf_token")
    r = adm.post("/admin/users", data={"csrf_token": csrf, "username": "Carol", "password": "short", "role": "reviewer"})
    assert r.status_code == 400 and "too short" in r.text
    r = adm.post("/admin/users", data={"csrf_token": csrf, "username": "Carol", "password": "carol-passphrase-1", "role": "reviewer"})
    assert r.status_code == 200 and "Account &#39;carol&#39; added" in r.text
    assert sign_in(app_for(), "carol", "carol-passphrase-1").status_code == 303
    r = adm.post(f"/admin/campaigns/{cid}/close", data={"csrf_token": csrf})
    assert r.status_code == 303
    page = adm.get(r.headers["location"]).text
    assert "closed" in page and 'id="win-rate"' in page
    # grading the closed campaign is refused with a message, nothing stored
    r = rev.post(f"/campaigns/{cid}/items/2", data=_grade_form(rev, cid, 2))
    assert r.status_code == 409 and "is closed: grades are no longer accepted" in r.text
    assert len(_grades(database)) == 1
    rows = list(csv.DictReader(io.StringIO(adm.get(f"/campaigns/{cid}/export.csv").text)))
    assert len(rows) == 1 and rows[0]["reviewer"] == "alice" and rows[0]["latest"] == "True"
    assert rows[0]["comment"].startswith("'=")  # no formula injection into the governance spreadsheet
    assert rows[0]["preferred"] in ("candidate", "baseline") and rows[0]["grade_" + rows[0]["a_is"]] == "correct"
    data = json.loads(adm.get(f"/campaigns/{cid}/export.json").text)
    assert data["campaign"]["status"] == "closed" and data["summary"]["graded_items"] == 1 and len(data["items"]) == 3
    assert "messages" not in json.dumps(data["items"])  # no note text in the export


def test_a_reviewer_changes_their_password_and_other_sessions_end(app_for, accounts_in):
    accounts_in()
    here, elsewhere = app_for(), app_for()
    sign_in(here, "alice")
    sign_in(elsewhere, "alice")
    csrf = _token(here.get("/account").text, "csrf_token")
    new = "a-brand-new-passphrase"
    for form, problem in (({"current": "wrong", "new": new, "confirm": new}, "current password is wrong"),
                          ({"current": PASSWORDS["alice"], "new": new, "confirm": new + "x"}, "differ"),
                          ({"current": PASSWORDS["alice"], "new": "short", "confirm": "short"}, "too short")):
        r = here.post("/account/password", data={"csrf_token": csrf, **form})
        assert r.status_code == 400 and problem in r.text
    r = here.post("/account/password", data={"csrf_token": csrf, "current": PASSWORDS["alice"], "new": new, "confirm": new})
    assert r.status_code == 200 and "Password changed." in r.text
    assert here.get("/").status_code == 200  # this browser stays signed in (a fresh session)
    assert elsewhere.get("/").status_code == 303  # every other session ended
    assert sign_in(app_for(), "alice").status_code == 401
    assert sign_in(app_for(), "alice", new).status_code == 303
