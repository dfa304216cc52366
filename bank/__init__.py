"""The bank domain: store (SQLAlchemy), auth, demo seed, banking tools, transcript."""

from bank import transcript  # noqa: F401 - registers the transcript table with the schema
