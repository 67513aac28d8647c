"""Clinician review (``clinitune review``): a web application where clinicians grade a candidate
model's answers against the baseline's, blinded and side by side, and sign off in the gate.

* ``create_campaign``: a stratified sample of an evaluation's stored answers, A/B order blinded;
* ``serve`` / ``create_app``: the FastAPI application (server-rendered pages, sessions, CSRF);
* ``close_campaign`` + ``publish_summary``: the summary into the report and the candidate's MLflow
  run, where the gate's ``human_review`` rule reads it;
* ``export_grades``: every grade as CSV or JSON for governance records.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "ReviewConfig": "clinitune.review.config",
    "Database": "clinitune.review.db",
    "open_database": "clinitune.review.db",
    "create_campaign": "clinitune.review.campaigns",
    "close_campaign": "clinitune.review.campaigns",
    "resolve_eval": "clinitune.review.source",
    "create_app": "clinitune.review.app",
    "publish_summary": "clinitune.review.publish",
    "export_grades": "clinitune.review.export",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
