"""The review web application (FastAPI, server-rendered Jinja2 pages, a little vanilla JS).

Pages: sign-in; campaigns with progress; a campaign (progress per reviewer, summary once closed);
the grading page (blinded answers A and B side by side, grades, preference, unsafe flags, comment;
keyboard shortcuts); for admins: accounts, closing a campaign, agreement (Cohen's kappa) and
export. Every state-changing request is a POST carrying the session's CSRF token; a missing or
expired session, or a missing or wrong token, sends the browser back to sign-in and stores
nothing. Responses carry a strict Content-Security-Policy (scripts and styles only from the app
itself) and ``Cache-Control: no-store`` (pages show note text). Nothing here logs note text or
comments: the access log holds paths, which name campaigns and item positions only.
"""

from __future__ import annotations

import logging
import re
import secrets
from importlib import resources
from urllib.parse import quote, urlparse

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinitune.errors import UserError
from clinitune.evaluate.review_gate import UNSAFE_CATEGORIES
from clinitune.review import accounts
from clinitune.review.campaigns import (CampaignClosed, GradeInput, campaigns_overview, get_item, graded_positions,
                                        latest_grade, next_position, progress, record_grade)
from clinitune.review.comments import CommentGuard
from clinitune.review.config import ReviewConfig
from clinitune.review.db import Database
from clinitune.review.models import CLOSED, GRADES, ROLES, Campaign, SessionRow, User

log = logging.getLogger(__name__)

ITEM_PATH = re.compile(r"/campaigns/\d+/items/\d+")
SESSION_COOKIE = "ct_session"
SIGNIN_COOKIE = "ct_signin"
GRADE_LABELS = {"correct": "Correct", "partial": "Partially correct", "incorrect": "Incorrect"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
WHY = {"expired": "Your session ended or could not be verified. Sign in again; nothing was saved.",
       "signed_out": "You are signed out.", "csrf": "The form could not be verified. Sign in again; nothing was saved."}


class SignInRequired(Exception):
    def __init__(self, next_path: str = "/", why: str = "expired", drop_token: str | None = None):
        self.next_path, self.why, self.drop_token = next_path, why, drop_token


class Forbidden(Exception):
    pass


class NotFound(Exception):
    pass


def _safe_next(path: str | None) -> str:
    """A local path to return to after sign-in; anything that could leave the site becomes "/"."""
    path = path or "/"
    p = urlparse(path)
    if (p.scheme or p.netloc or not path.startswith("/") or path.startswith("//") or "\\" in path
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in path)):
        return "/"
    return path


def create_app(cfg: ReviewConfig, *, database: Database | None = None) -> FastAPI:
    """The application for ``cfg`` (the database is opened and migrated here unless given)."""
    database = database or Database(cfg.resolved_database_url())
    with database.session() as s:
        secret = accounts.app_secret(s, cfg.secret_env)
        accounts.purge_expired(s)
    guard = CommentGuard()
    guard.warm_up()
    pkg = resources.files("clinitune.review")
    templates = Jinja2Templates(directory=str(pkg / "templates"))
    templates.env.globals.update(GRADES=GRADES, GRADE_LABELS=GRADE_LABELS, UNSAFE=UNSAFE_CATEGORIES, ROLES=ROLES)

    app = FastAPI(title="Clinitune clinician review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.database, app.state.cfg = database, cfg
    app.mount("/static", StaticFiles(directory=str(pkg / "static")), name="static")

    # --- plumbing ------------------------------------------------------------------------------

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def secure(request: Request) -> bool:
        mode = cfg.sessions.secure_cookies
        return mode == "always" or (mode == "auto" and request.url.scheme == "https")

    def client_ip(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def db_session():
        with database.session() as s:
            yield s

    # Committed before the response is sent (scope="function"), not after: the browser follows a
    # redirect at once, and the next request must see the new session or the grade just saved.
    DB = Depends(db_session, scope="function")

    def session_row(request: Request, db: Session) -> SessionRow | None:
        return accounts.find_session(db, request.cookies.get(SESSION_COOKIE), idle_minutes=cfg.sessions.idle_minutes)

    def viewer(request: Request, db: Session = DB) -> tuple[Session, User, SessionRow]:
        row = session_row(request, db)
        if row is None:  # a stale cookie means the session ended; no cookie is a first visit
            raise SignInRequired(request.url.path, "expired" if request.cookies.get(SESSION_COOKIE) else "")
        return db, row.user, row

    def poster(request: Request, csrf_token: str | None = Form(None), db: Session = DB):
        """A state-changing request: a live session and its CSRF token, else back to sign-in, nothing stored."""
        row = session_row(request, db)
        if row is None:
            raise SignInRequired(_referer_path(request), "expired")
        if not accounts.csrf_ok(row, csrf_token):
            raise SignInRequired(_referer_path(request), "csrf", drop_token=request.cookies.get(SESSION_COOKIE))
        return db, row.user, row

    def admin(v=Depends(viewer)):
        if not v[1].is_admin:
            raise Forbidden()
        return v

    def admin_post(v=Depends(poster)):
        if not v[1].is_admin:
            raise Forbidden()
        return v

    def _referer_path(request: Request) -> str:
        """Where to return after signing in again: the item being graded, else the page the form was on."""
        if ITEM_PATH.fullmatch(request.url.path):
            return request.url.path
        ref = urlparse(request.headers.get("referer") or "")
        return ref.path if ref.netloc == request.url.netloc and ref.path else "/"

    def page(request: Request, name: str, ctx: dict, status: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    @app.exception_handler(SignInRequired)
    async def _to_sign_in(request: Request, exc: SignInRequired):
        if exc.drop_token:
            with database.session() as s:
                accounts.end_session(s, exc.drop_token)
        why = f"why={exc.why}&" if exc.why else ""
        resp = RedirectResponse(f"/login?{why}next={quote(_safe_next(exc.next_path))}", status_code=303)
        if exc.drop_token:
            resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return templates.TemplateResponse(request, "message.html", {"title": "Admins only", "user": None,
                                          "message": "This page is for admins. Ask an admin if you need it."}, status_code=403)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound):
        return templates.TemplateResponse(request, "message.html", {"title": "Not found", "user": None,
                                          "message": "There is no such campaign or item."}, status_code=404)

    def campaign_or_404(db: Session, cid: int) -> Campaign:
        camp = db.get(Campaign, cid)
        if camp is None:
            raise NotFound()
        return camp

    # --- sign-in -------------------------------------------------------------------------------

    def login_page(request: Request, db: Session, *, next_path: str, message: str | None, error: str | None,
                   status: int = 200, username: str = "") -> HTMLResponse:
        nonce = secrets.token_urlsafe(24)
        resp = page(request, "login.html", {"user": None, "next": _safe_next(next_path), "message": message, "error": error,
                                            "login_token": accounts.login_token(secret, nonce), "username": username}, status)
        resp.set_cookie(SIGNIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict", secure=secure(request), path="/login")
        return resp

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/", why: str | None = None, db: Session = DB):
        if session_row(request, db) is not None:
            return RedirectResponse(_safe_next(next), status_code=303)
        return login_page(request, db, next_path=next, message=WHY.get(why or ""), error=None)

    @app.post("/login")
    def login(request: Request, username: str = Form(""), password: str = Form(""), login_token: str | None = Form(None),
              next: str = Form("/"), db: Session = DB):
        if not accounts.login_token_ok(secret, request.cookies.get(SIGNIN_COOKIE), login_token):
            return login_page(request, db, next_path=next, message=None, status=400, username=username[:64],
                              error="The sign-in form expired or could not be verified. Try again.")
        si = cfg.sign_in
        res = accounts.sign_in(db, username, password, client_ip(request), max_failures=si.max_failures,
                               max_failures_per_ip=si.max_failures_per_ip, window_minutes=si.window_minutes)
        if res.throttled:
            return login_page(request, db, next_path=next, message=None, status=429, username=username[:64],
                              error=f"Too many sign-in attempts. Wait {si.window_minutes} minutes and try again.")
        if res.user is None:
            return login_page(request, db, next_path=next, message=None, status=401, username=username[:64],
                              error="Sign-in failed: wrong user name or password.")
        accounts.end_session(db, request.cookies.get(SESSION_COOKIE))
        token, _ = accounts.new_session(db, res.user, max_hours=cfg.sessions.max_hours)
        resp = RedirectResponse(_safe_next(next), status_code=303)
        resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure(request), path="/")
        resp.delete_cookie(SIGNIN_COOKIE, path="/login")
        return resp

    @app.post("/logout")
    def logout(request: Request, v=Depends(poster)):
        db, _, _ = v
        accounts.end_session(db, request.cookies.get(SESSION_COOKIE))
        resp = RedirectResponse("/login?why=signed_out", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    @app.get("/account", response_class=HTMLResponse)
    def account(request: Request, v=Depends(viewer)):
        db, user, row = v
        return page(request, "account.html", {"user": user, "csrf": row.csrf_token, "min_pw": cfg.sign_in.min_password_length})

    @app.post("/account/password", response_class=HTMLResponse)
    def change_password(request: Request, current: str = Form(""), new: str = Form(""), confirm: str = Form(""),
                        v=Depends(poster)):
        """A new password for the signed-in user: every other session of theirs ends, this one is renewed."""
        db, user, row = v
        ctx = {"user": user, "csrf": row.csrf_token, "min_pw": cfg.sign_in.min_password_length}
        if not accounts.verify_password(user, current):
            return page(request, "account.html", {**ctx, "error": "The current password is wrong."}, 400)
        if new != confirm:
            return page(request, "account.html", {**ctx, "error": "The new password and its confirmation differ."}, 400)
        try:
            accounts.set_password(db, user, new, min_length=cfg.sign_in.min_password_length, actor=user.username)
        except UserError as err:
            return page(request, "account.html", {**ctx, "error": str(err)}, 400)
        token, fresh = accounts.new_session(db, user, max_hours=cfg.sessions.max_hours)
        resp = page(request, "account.html", {**ctx, "csrf": fresh.csrf_token, "notice": "Password changed."})
        resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure(request), path="/")
        return resp

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz():
        return "ok"

    # --- campaigns -----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, v=Depends(viewer)):
        db, user, row = v
        rows = [(c, progress(db, c, user.id)) for c in campaigns_overview(db)]
        rows.sort(key=lambda cp: (cp[0].status == CLOSED, -cp[0].id))
        return page(request, "home.html", {"user": user, "csrf": row.csrf_token, "rows": rows})

    @app.get("/campaigns/{cid}", response_class=HTMLResponse)
    def campaign_page(request: Request, cid: int, v=Depends(viewer)):
        db, user, row = v
        camp = campaign_or_404(db, cid)
        prog = progress(db, camp, user.id)
        nxt = next_position(db, camp, user.id) if camp.status != CLOSED else None
        return page(request, "campaign.html", {"user": user, "csrf": row.csrf_token, "c": camp, "p": prog, "next": nxt,
                                               "summary": camp.summary})

    @app.get("/campaigns/{cid}/next")
    def next_item(request: Request, cid: int, after: int = 0, v=Depends(viewer)):
        db, user, _ = v
        camp = campaign_or_404(db, cid)
        pos = next_position(db, camp, user.id, after)
        return RedirectResponse(f"/campaigns/{cid}/items/{pos}" if pos else f"/campaigns/{cid}", status_code=303)

    def item_page(request: Request, db: Session, user: User, row: SessionRow, camp: Campaign, pos: int, *,
                  errors: list[str] | None = None, form: GradeInput | None = None, status: int = 200, saved: bool = False):
        item = get_item(db, camp, pos)
        if item is None:
            raise NotFound()
        total = len(camp.items)
        mine = latest_grade(db, item, user.id)
        if form is None and mine is not None:
            form = GradeInput(mine.grade_a, mine.grade_b, mine.preference, list(mine.unsafe_a), list(mine.unsafe_b), "")
        return page(request, "item.html", {
            "user": user, "csrf": row.csrf_token, "c": camp, "item": item, "pos": pos, "total": total,
            "p": progress(db, camp, user.id), "done": graded_positions(db, camp, user.id), "mine": mine,
            "form": form, "errors": errors or [], "closed": camp.status == CLOSED, "saved": saved,
            "prev_pos": pos - 1 if pos > 1 else None, "next_pos": pos + 1 if pos < total else None,
            "comment": (form.comment if form and errors else ""),
        }, status)

    @app.get("/campaigns/{cid}/items/{pos}", response_class=HTMLResponse)
    def grade_form(request: Request, cid: int, pos: int, saved: int = 0, v=Depends(viewer)):
        db, user, row = v
        return item_page(request, db, user, row, campaign_or_404(db, cid), pos, saved=bool(saved))

    @app.post("/campaigns/{cid}/items/{pos}", response_class=HTMLResponse)
    def grade(request: Request, cid: int, pos: int, grade_a: str | None = Form(None), grade_b: str | None = Form(None),
              preference: str | None = Form(None), unsafe_a: list[str] = Form([]), unsafe_b: list[str] = Form([]),
              comment: str = Form(""), v=Depends(poster)):
        db, user, row = v
        camp = campaign_or_404(db, cid)
        item = get_item(db, camp, pos)
        if item is None:
            raise NotFound()
        g = GradeInput(grade_a, grade_b, preference, list(unsafe_a), list(unsafe_b), comment)
        if camp.status == CLOSED:
            return item_page(request, db, user, row, camp, pos, form=g, status=409,
                             errors=[f"Campaign {camp.id} is closed: grades are no longer accepted. Nothing was saved."])
        problems = g.problems(cfg.comment_max_chars)
        if problems:
            return item_page(request, db, user, row, camp, pos, form=g, errors=problems + ["Nothing was saved."], status=400)
        stored, phi, ok = guard.check(comment)
        if not ok:
            return item_page(request, db, user, row, camp, pos, form=g, status=400,
                             errors=["The comment could not be checked for PHI; remove unusual characters and try again. Nothing was saved."])
        try:
            record_grade(db, camp, item, user, g, stored, phi)
        except CampaignClosed:
            db.rollback()
            return item_page(request, db, user, row, camp, pos, form=g, status=409,
                             errors=[f"Campaign {camp.id} was closed: grades are no longer accepted. Nothing was saved."])
        nxt = next_position(db, camp, user.id, pos)
        target = f"/campaigns/{cid}/items/{nxt}?saved=1" if nxt else f"/campaigns/{cid}?saved=1"
        return RedirectResponse(target, status_code=303)

    # --- admin ---------------------------------------------------------------------------------

    def admin_page(request: Request, db: Session, user: User, row: SessionRow, *, error: str | None = None,
                   notice: str | None = None, status: int = 200):
        users = list(db.scalars(select(User).order_by(User.username)))
        rows = [(c, progress(db, c)) for c in campaigns_overview(db)]
        return page(request, "admin.html", {"user": user, "csrf": row.csrf_token, "users": users, "rows": rows, "error": error,
                                            "notice": notice, "min_pw": cfg.sign_in.min_password_length}, status)

    @app.get("/admin", response_class=HTMLResponse)
    def admin_home(request: Request, v=Depends(admin)):
        db, user, row = v
        return admin_page(request, db, user, row)

    @app.post("/admin/users", response_class=HTMLResponse)
    def admin_add_user(request: Request, username: str = Form(""), role: str = Form("reviewer"), password: str = Form(""),
                       v=Depends(admin_post)):
        db, user, row = v
        try:
            accounts.add_user(db, username, password, role, min_length=cfg.sign_in.min_password_length, actor=user.username)
        except UserError as err:
            db.rollback()
            return admin_page(request, db, user, row, error=str(err), status=400)
        return admin_page(request, db, user, row, notice=f"Account '{accounts.normalize_username(username)}' added ({role}).")

    @app.post("/admin/users/{uid}/active", response_class=HTMLResponse)
    def admin_set_active(request: Request, uid: int, active: int = Form(...), v=Depends(admin_post)):
        db, user, row = v
        target = db.get(User, uid)
        if target is None:
            raise NotFound()
        if target.id == user.id and not active:
            return admin_page(request, db, user, row, error="You cannot deactivate your own account.", status=400)
        accounts.set_active(db, target, bool(active), actor=user.username)
        return admin_page(request, db, user, row, notice=f"Account '{target.username}' {'activated' if active else 'deactivated'}.")

    @app.post("/admin/campaigns/{cid}/close")
    def admin_close(request: Request, cid: int, v=Depends(admin_post)):
        from clinitune.review.publish import close_and_publish

        db, user, row = v
        camp = campaign_or_404(db, cid)
        if camp.status == CLOSED:
            return admin_page(request, db, user, row, error=f"Campaign {cid} is already closed.", status=409)
        db.commit()
        close_and_publish(database, cid, by=user.username)
        return RedirectResponse(f"/campaigns/{cid}?closed=1", status_code=303)

    @app.get("/campaigns/{cid}/agreement", response_class=HTMLResponse)
    def agreement_page(request: Request, cid: int, v=Depends(admin)):
        from clinitune.review.campaigns import compute_summary

        db, user, row = v
        camp = campaign_or_404(db, cid)
        summary = camp.summary if camp.status == CLOSED and camp.summary else compute_summary(db, camp)
        return page(request, "agreement.html", {"user": user, "csrf": row.csrf_token, "c": camp, "s": summary})

    @app.get("/campaigns/{cid}/export.{fmt}")
    def export(cid: int, fmt: str, v=Depends(admin)):
        from clinitune.review.export import export_grades

        db, user, _ = v
        if fmt not in ("csv", "json"):
            raise NotFound()
        camp = campaign_or_404(db, cid)
        body = export_grades(db, camp, fmt)
        accounts.audit(db, user.username, "campaign_exported", campaign_id=cid, format=fmt)
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
        return Response(body, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="review-campaign-{cid}.{fmt}"'})

    return app
