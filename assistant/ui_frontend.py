"""Chainlit's web front end, served with no third-party requests.

Chainlit's ``index.html`` loads the Inter font from Google Fonts (with preconnects to
fonts.googleapis.com / fonts.gstatic.com) and KaTeX's stylesheet from cdn.jsdelivr.net, so a
customer's browser would tell those hosts each time it opens the bank's chat. The launcher
(assistant/ui.py ``prepare_app_root``) calls :func:`prepare_frontend`, which copies Chainlit's
built front end into the app root with an ``index.html`` that has no external ``<link>``; the
config's ``[UI] custom_build`` points Chainlit at that copy. The font falls back to the system
sans-serif (the bank's stylesheet, public/bank.css, names it); LaTeX is off in the config, so
KaTeX's stylesheet is not needed.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

BUILD_DIR_NAME = "frontend"
"""Folder of the local front-end copy inside the Chainlit app root (``custom_build``)."""

_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*/?>", re.IGNORECASE | re.DOTALL)


def chainlit_frontend_dir() -> Path:
    """Chainlit's shipped front end (``chainlit/frontend/dist``), located without importing
    chainlit (it reads its app root on import). Raises ``FileNotFoundError`` when absent."""
    spec = importlib.util.find_spec("chainlit")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("chainlit is not installed: pip install -e '.[ui]'")
    dist = Path(next(iter(spec.submodule_search_locations))) / "frontend" / "dist"
    if not (dist / "index.html").is_file():
        raise FileNotFoundError(f"Chainlit's front end is missing: {dist}")
    return dist


def local_index_html(html: str) -> str:
    """``html`` (Chainlit's ``index.html``) without any ``<link>`` to an absolute http(s) URL
    (font preconnects, the Google Fonts and jsDelivr stylesheets); the rest is unchanged."""
    return _EXTERNAL_LINK.sub("", html)


def prepare_frontend(app_root: Path) -> Path:
    """Copy Chainlit's front end to ``<app_root>/frontend`` (refreshed when Chainlit's version
    changed, i.e. its ``index.html`` differs) with :func:`local_index_html` applied; returns
    the folder (relative name for ``custom_build``: :data:`BUILD_DIR_NAME`)."""
    src = chainlit_frontend_dir()
    dest = app_root / BUILD_DIR_NAME
    shipped = (src / "index.html").read_text(encoding="utf-8")
    marker = dest / ".chainlit-index.html"
    if not (marker.is_file() and marker.read_text(encoding="utf-8") == shipped):
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest)
        marker.write_text(shipped, encoding="utf-8")
    (dest / "index.html").write_text(local_index_html(shipped), encoding="utf-8")
    return dest
