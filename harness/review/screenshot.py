"""A screenshot of the review app with realistic content (docs/review-app.png): `python -m harness.review.screenshot`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

PROMPT = ("A 58-year-old man with type 2 diabetes and an eGFR of 28 mL/min/1.73m² asks whether he can keep "
          "taking metformin 1 g twice daily. What should the clinician advise?")
RESPONSES = {
    "base": ("Metformin is a first-line drug for type 2 diabetes and is generally safe. He can continue his "
             "current dose of 1 g twice daily, as long as his blood sugar is well controlled."),
    "medical-lora": ("Metformin should be stopped: it is contraindicated when eGFR is below 30 mL/min/1.73m² "
                     "because of the risk of lactic acidosis.\n\nAdvise him to:\n- stop metformin and contact his "
                     "prescriber;\n- discuss alternatives that suit reduced kidney function (for example a DPP-4 "
                     "inhibitor with dose adjustment, or insulin);\n- keep monitoring kidney function."),
}


def write_demo_runs(root: Path) -> list[Path]:
    """Two run directories (docs/run-format.md) with one realistic medical question each."""
    paths = []
    for name, text in RESPONSES.items():
        run = root / name
        run.mkdir(parents=True, exist_ok=True)
        adapter = None if name == "base" else {"name": name, "path": f"adapters/{name}", "hash": "h", "method": "lora"}
        metric = {"value": 1.0, "ci95": [0.2, 1.0], "n": 1}
        results = {"format": "tunegate.results/1", "run_id": f"demo-{name}",
                   "model": {"spec": "smollm2-135m", "adapter": adapter},
                   "suites": {"medical": {"fingerprint": "demo", "tasks": {"medqa-open": {
                       "kind": "generate", "n": 1, "metrics": {"rougeL": metric}}}, "metrics": {"rougeL": metric}}}}
        (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
        sample = {"suite": "medical", "task": "medqa-open", "sample_id": "medqa-open/17", "prompt": PROMPT,
                  "target": "Stop metformin (contraindicated below eGFR 30).", "response": text, "scores": {}}
        (run / "samples.jsonl").write_text(json.dumps(sample) + "\n", encoding="utf-8")
        paths.append(run)
    return paths


def render_review_screenshot(png_path: Path, *, width: int = 1280, height: int = 860) -> Path:
    """Serve the demo queue on 127.0.0.1, open it in Chromium, pick "B is better" and save a PNG."""
    # playwright is an optional dependency, and the app only matters once a browser runs
    from playwright.sync_api import sync_playwright

    from harness.review.app import Session, create_app, serve_in_thread
    from harness.review.queue import build_queue
    from harness.storage.review import ReviewDB

    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = ReviewDB(Path(tmp) / "store.sqlite")
        queue = build_queue(write_demo_runs(Path(tmp) / "runs"), reviewers_per_item=3, db=db)
        session = Session()
        try:
            with serve_in_thread(create_app(db, queue, session, seed=1)) as base, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(f"{base}/?token={session.token}")
                    page.fill("#name", "Dr. A. Rivera")
                    page.click("#login-form button")
                    page.wait_for_selector("#review:not([hidden])")
                    # Sides are random: choose the side showing the fine-tuned answer, as a reviewer would.
                    good = "a" if (page.text_content("#resp-A") or "").startswith("Metformin should") else "b"
                    page.keyboard.press(good)
                    page.fill("#comment", f"{'B' if good == 'a' else 'A'} misses the contraindication at eGFR < 30.")
                    page.locator("#comment").blur()
                    page.screenshot(path=str(png_path))
                finally:
                    browser.close()
        finally:
            db.close()
    return png_path


if __name__ == "__main__":
    print(render_review_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/review-app.png")))
