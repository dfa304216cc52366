"""The bank domain: the SQL store, demo data, authentication and the banking tools.

Importing any ``bank`` module registers every table (``bank.store`` and ``bank.models_extra``)
on ``bank.store.Base.metadata``, so ``create_schema`` creates all of them.
"""

from bank import models_extra as _models_extra  # noqa: F401  (registers the issue-16 tables)
from bank import transcript as _transcript  # noqa: F401  (registers the conversation transcript table)
