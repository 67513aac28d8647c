"""Alembic migrations of the review database (run by ``clinitune.review.db.migrate``)."""
