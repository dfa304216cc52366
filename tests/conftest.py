"""Shared fixtures: an isolated BANKING_HOME per test session, the real BANKING77 data, and one
short real training run of the custom transformer shared by every test that needs a model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "banking77"


def pytest_configure(config: pytest.Config) -> None:
    # Real data only: CI points BANKING_DATA_DIR at ../shared/data/banking77.
    os.environ.setdefault("BANKING_DATA_DIR", str(DEFAULT_DATA))
    os.environ.setdefault("LANGSMITH_TEST_TRACKING", "false")
    os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
    os.environ.pop("GOOGLE_API_KEY", None)
    os.environ.pop("LANGSMITH_API_KEY", None)


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BANKING_HOME for the whole session (database, models, logs)."""
    home = tmp_path_factory.mktemp("banking_home")
    os.environ["BANKING_HOME"] = str(home)
    os.environ["BANKING_BENCH_EVERY"] = "0"
    from config.settings import get_settings

    get_settings.cache_clear()
    return home


@pytest.fixture(scope="session")
def banking77(session_home: Path):
    """The real BANKING77 dataset with the seeded validation split."""
    from training.data import load_banking77

    return load_banking77()


@pytest.fixture(scope="session")
def trained_custom_model_dir(session_home: Path, banking77) -> Path:
    """A short real training run of the custom transformer (the ``--no-teacher`` path: gold
    labels only, no augmented copies) on the full BANKING77 training split plus the CLINC150
    extras (small talk, balance/transactions, 2,000 outliers), saved as a model version under
    BANKING_HOME (so the custom backend picks it up). About 1-2 minutes."""
    from chains.backends import reset_backends
    from models.transformer import TransformerConfig
    from training.custom import TrainConfig, train_custom

    cfg = TrainConfig(
        epochs=6, batch_size=64, lr=3e-3, patience=6, max_minutes=4.0, aug_copies=0, outlier_rows=2000,
        outlier_aug_copies=0,
        model=TransformerConfig(max_len=64, d_model=64, n_heads=2, n_layers=1, d_ff=128, ngram_buckets=32768, ngram_dim=64),
    )
    path = train_custom(cfg=cfg, data=banking77, progress=False, evaluate_test=False, use_teacher=False)
    reset_backends()
    return path
