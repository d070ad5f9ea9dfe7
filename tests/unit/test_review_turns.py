"""The review app and the preference export show a chat prompt's turns, not its template's tokens (issue 28)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harness.cli import main
from harness.data.chat import chat_turns, plain_prompt, turns_text
from harness.review.app import Session, create_app
from harness.review.queue import build_queue
from harness.storage.review import ReviewDB
from tests.unit.runfixtures import build_run

CHATML = ("<|im_start|>system\nYou are a careful clinician.<|im_end|>\n<|im_start|>user\nIs aspirin an NSAID?"
          "<|im_end|>\n<|im_start|>assistant\n")
LLAMA3 = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nName a vowel.<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n")
GEMMA = "<bos><start_of_turn>user\nSay hi.<end_of_turn>\n<start_of_turn>model\n"


def test_turns_of_the_three_template_families_and_plain_text_unchanged():
    assert chat_turns(CHATML) == [("system", "You are a careful clinician."), ("user", "Is aspirin an NSAID?")]
    assert chat_turns(LLAMA3) == [("user", "Name a vowel.")]
    assert chat_turns(GEMMA) == [("user", "Say hi.")]
    assert turns_text(CHATML) == "system:\nYou are a careful clinician.\n\nuser:\nIs aspirin an NSAID?"
    assert plain_prompt(CHATML) == "You are a careful clinician.\n\nIs aspirin an NSAID?"
    for text in ("Question: 2+2?", "a <|im_start|> in the middle of prose", ""):
        assert turns_text(text) == text and plain_prompt(text) == text


def _runs(tmp_path: Path) -> list[Path]:
    key = ("medical", "qa")
    return [build_run(tmp_path / (a or "base"), scores={key: {"acc": [1.0, 0.0, 1.0]}}, adapter=a, kind="generate",
                      prompts={key: [CHATML]}, responses={key: [f"{a or 'base'} answer {i}" for i in range(3)]})
            for a in (None, "lora")]


def test_the_review_app_shows_turns(tmp_path: Path):
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(_runs(tmp_path), reviewers_per_item=1, db=db)
    session = Session()
    with TestClient(create_app(db, queue, session, seed=0), base_url="http://127.0.0.1") as client:
        r = client.post("/api/next", json={"reviewer": "ann"},
                        headers={"X-Review-Token": session.token, "X-CSRF-Token": session.csrf})
        assert r.status_code == 200
        prompt = r.json()["item"]["prompt"]
    db.close()
    assert "<|im_start|>" not in prompt and prompt.startswith("system:\nYou are a careful clinician.")


def test_the_preference_export_has_plain_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    store = tmp_path / "store.sqlite"
    db = ReviewDB(store)
    queue = build_queue(_runs(tmp_path), reviewers_per_item=1, db=db)
    rng = random.Random(0)
    while found := db.next_for(queue.queue_id, "ann", rng):
        item, order = found
        db.add_judgment(item.item_id, "ann", choice="A", ratings=None, comment=None)
    db.close()
    out = tmp_path / "prefs.jsonl"
    assert main(["review", "export", str(out), "--store", str(store)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["prompt"] == "You are a careful clinician.\n\nIs aspirin an NSAID?" for r in rows)
