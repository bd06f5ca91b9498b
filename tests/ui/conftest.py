"""Browser tests: a real JupyterLab server, system Chromium, Python Playwright.

Fixtures: `jupyter` (one server per session), `browser` (one Chromium per session),
`page` (a fresh browser context per test, 1280x900, collecting console errors in
`page.errors`) and `screenshot` (saves PNGs; see README.md in this folder).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from .labserver import CHROMIUM, CHROMIUM_ARGS, REPO, LabServer

BUNDLE = REPO / "featurelab" / "static" / "widget.js"
EXTENSION = REPO / "featurelab" / "labextension" / "package.json"
SCREENSHOTS = Path(os.environ.get("FEATURELAB_SCREENSHOTS", "/tmp/featurelab-screenshots"))


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return (f"{CHROMIUM} is missing (apt-get install -y --no-install-recommends chromium "
                "fonts-liberation; .ci/run does this)")
    if not BUNDLE.exists() or not EXTENSION.exists():
        return ("the panel bundle or the labextension is not built "
                "(npm ci --prefix js && npm run build:all --prefix js; scripts/test does this)")
    try:
        import jupyterlab  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session", autouse=True)
def _ui_prerequisites():
    """Skips the folder when Chromium or the panel bundle is missing; in CI
    (FEATURELAB_REQUIRE_UI=1, set by .ci/run) that is a failure instead."""
    reason = _missing()
    if reason and os.environ.get("FEATURELAB_REQUIRE_UI") == "1":
        pytest.fail(f"browser tests cannot run: {reason}", pytrace=False)
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="session")
def jupyter(tmp_path_factory):
    """A JupyterLab server whose root is an empty temporary folder (tests write notebooks there)."""
    server = LabServer(tmp_path_factory.mktemp("jupyter-root")).start()
    print(f"\n[ui] jupyter lab answered after {server.startup_s:.1f} s")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory):
    """A Notebook 7 server (`jupyter notebook`) with featurelab's labextension."""
    server = LabServer(tmp_path_factory.mktemp("notebook7-root"), app="notebook").start()
    print(f"\n[ui] jupyter notebook answered after {server.startup_s:.1f} s")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def jupyter_without_extension(tmp_path_factory):
    """A JupyterLab where featurelab's labextension is not active (the fallback)."""
    server = LabServer(tmp_path_factory.mktemp("jupyter-plain"), extension=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, jupyter):
    """A fresh page; `page.errors` collects console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.errors = []
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    yield pg
    context.close()
    jupyter.shutdown_kernels()


@pytest.fixture
def screenshot(page, tmp_path, request):
    """screenshot(name) saves the page as <test>-<name>.png under the test's tmp folder and
    copies it to $FEATURELAB_SCREENSHOTS (default /tmp/featurelab-screenshots) for people."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shoot(name: str, locator=None) -> Path:
        path = tmp_path / f"{request.node.name}-{name}.png"
        (locator or page).screenshot(path=str(path))
        shutil.copy(path, SCREENSHOTS / path.name)
        return path

    return shoot


@pytest.fixture
def stopwatch():
    """stopwatch("label") prints the seconds since the test started (timings in -s output)."""
    t0 = time.monotonic()

    def lap(label: str) -> float:
        elapsed = time.monotonic() - t0
        print(f"[ui] {label}: {elapsed:.1f} s")
        return elapsed

    return lap
