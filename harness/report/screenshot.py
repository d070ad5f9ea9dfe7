"""Screenshot of an HTML report with Playwright and the system Chromium (for docs and visual checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def _shoot(browser: Any, html_path: Path, png_path: Path, width: int, full_page: bool, height: int = 900) -> None:
    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
    try:
        # Block everything but the file itself: the report must not need the network.
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                   else route.abort())
        page.goto(Path(html_path).resolve().as_uri())
        page.screenshot(path=str(png_path), full_page=full_page)
    finally:
        page.close()


def render_screenshot(html_path: Path, png_path: Path, *, width: int = 1280, height: int = 900, full_page: bool = True,
                      browser: Any = None) -> Path:
    """Open the report from disk (network blocked) and save a PNG; reuses `browser` when one is given."""
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if browser is not None:
        _shoot(browser, Path(html_path), png_path, width, full_page, height)
        return png_path
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        own = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            _shoot(own, Path(html_path), png_path, width, full_page, height)
        finally:
            own.close()
    return png_path
