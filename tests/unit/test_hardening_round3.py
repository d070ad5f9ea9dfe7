"""Issue 24 (hardening, round 3), the items that need no endpoint: store credentials, duplicate ids, data
files that are not files, outputs over inputs, control characters, ledger imports, bad numbers. Each case
goes through the CLI and must give exit 2 and one line (never 4, never a traceback)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import MC_ROWS, MC_TASK, write_suite


def one_line(code: int, err: str, *needles: str, expected: int = 2) -> None:
    assert code == expected, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---- 2. store credentials and store references -----------------------------------------------------------

@pytest.mark.parametrize("ref, secret", [
    ("host=db.example password=Pa55wordX user=alice dbname=t", "Pa55wordX"),
    ("dbname=t password='quoted Secret1'", "quoted Secret1"),
    ("mysql://root:Hunter2xx@h/db", "Hunter2xx"),
    ("store.txt", None),
])
def test_a_store_that_is_neither_sqlite_nor_a_url_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch, ref: str,
                                                             secret: str | None) -> None:
    monkeypatch.chdir(tmp_path)  # restored after: later tests read the repository's files by relative path
    code = main(["runs", "list", "--store", ref])
    err = capsys.readouterr().err
    one_line(code, err, "--store")
    if secret:
        assert secret not in err and secret.split()[-1] not in err
    assert list(tmp_path.iterdir()) == []  # no SQLite file was created


@pytest.mark.parametrize("url", ["postgresql://alice@h/db?password=S3cretQ", "postgresql://alice:S3cretQ@h:notaport/db",
                                 "postgresql://alice:S3cretQ@h:99999/db", "postgresql://alice:S3cretQ@h:0/db"])
def test_postgres_credentials_never_print_and_bad_ports_are_exit_2(capsys: pytest.CaptureFixture, url: str) -> None:
    code = main(["runs", "list", "--store", url])
    err = capsys.readouterr().err
    assert code == 2 and "S3cretQ" not in err and "Traceback" not in err, err


def test_redaction_covers_every_credential_form() -> None:
    from harness.core.redact import add_secret, redact

    add_secret("kX9-registered-key")
    text = ("Incorrect API key provided: kX9-registered-key; Authorization: Bearer abc.def; api-key: zz9; "
            "postgresql://u:pw1@h/db?password=pw2&sslmode=require host=h password='p w3' "
            "b'Bearer kX9-registered-key\\n' https://bob:pw4@example.org/v1 sk-abcdefghijkl")
    out = redact(text)
    for secret in ("kX9-registered-key", "abc.def", "zz9", "pw1", "pw2", "p w3", "pw4", "sk-abcdefghijkl"):
        assert secret not in out, (secret, out)
    assert "sslmode=require" in out and "the basic test" == redact("the basic test")


# ---- 7. duplicate ids ------------------------------------------------------------------------------------

@pytest.mark.parametrize("ids", [["a", "a"], [1, "1"], ["1", 1], ["x", "y", "x"]])
def test_duplicate_ids_in_a_split_name_both_rows(tmp_path: Path, capsys: pytest.CaptureFixture, ids: list) -> None:
    rows = [{**MC_ROWS[i], "id": v} for i, v in enumerate(ids)]
    root = write_suite(tmp_path / "s", MC_TASK + "    id_field: id\n", {"data/mc.jsonl": rows})
    code = main(["suites", "validate", str(root)])
    err = capsys.readouterr().err
    first = [str(i) for i in ids].index(str(ids[-1])) + 1
    one_line(code, err, "id_field", "same id")
    assert f"rows {first} and" in err and f"and {len(ids)}" in err, err


def test_an_id_over_the_run_file_limit_is_refused_at_eval_time(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [{**MC_ROWS[0], "id": "x" * 1200}]
    root = write_suite(tmp_path / "s", MC_TASK + "    id_field: id\n", {"data/mc.jsonl": rows})
    code = main(["eval", "-m", "fake:echo", "-s", str(root), "--out", str(tmp_path / "run"), "--store",
                 str(tmp_path / "s.sqlite"), "-q"])
    one_line(code, capsys.readouterr().err, "1000")
    assert not (tmp_path / "run").exists()


# ---- 13. data files that are not files -------------------------------------------------------------------

@pytest.mark.parametrize("kind, words", [("loop", "symlink loop"), ("dir", "directory"), ("fifo", "FIFO"),
                                         ("missing", "does not exist")])
def test_a_data_file_that_is_not_a_file_says_what_it_is(tmp_path: Path, capsys: pytest.CaptureFixture, kind: str,
                                                        words: str) -> None:
    root = write_suite(tmp_path / "s", MC_TASK, {})
    data = root / "data" / "mc.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    if kind == "loop":
        (root / "data" / "other").symlink_to(data)
        data.symlink_to(root / "data" / "other")
    elif kind == "dir":
        data.mkdir()
    elif kind == "fifo":
        os.mkfifo(data)
    code = main(["suites", "validate", str(root)])
    one_line(code, capsys.readouterr().err, words)


def test_store_import_of_deep_or_wrong_json_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = str(tmp_path / "s.sqlite")
    for name, text in (("deep", "[" * 100_000 + "]" * 100_000 + "\n"),
                       ("wrongschema", json.dumps({"format": "nope"}) + "\n"),
                       ("types", json.dumps({"table": 5, "row": "x"}) + "\n"),
                       ("notjson", "{\n")):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(text)
        code = main(["store", "import", str(path), "--store", store])
        one_line(code, capsys.readouterr().err, str(path))


# ---- 11. the ledger trusts only what it derived ----------------------------------------------------------

def _ledger_export(tmp_path: Path, capsys: pytest.CaptureFixture, right: int) -> tuple[Path, Path, list[dict]]:
    """A store with channel `approved` (release 1: 30/40 right) and one gated candidate; its export's lines."""
    from tests.unit.test_ledger import GATE, make_run

    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    runs, first = tmp_path / "runs", str(tmp_path / "first.sqlite")
    make_run(runs, None, 30)
    cand = make_run(runs, "v2cand", right)
    assert main(["channel", "create", "approved", "--gate", str(gate), "--release", str(runs / "base"),
                 "--store", first]) == 0
    main(["gate", str(gate), "--baseline", "approved", "--candidate", str(cand), "--store", first,
          "--verdict", str(tmp_path / "v.json")])
    dump = tmp_path / "export.jsonl"
    assert main(["store", "export", str(dump), "--store", first]) == 0
    capsys.readouterr()
    return gate, dump, [json.loads(line) for line in dump.read_text().splitlines()]


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_forged_imported_pass_does_not_authorise_a_promote(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gate, dump, lines = _ledger_export(tmp_path, capsys, right=10)  # the gate FAILs this candidate
    for line in lines:
        if line.get("table") == "ledger_verdicts":
            line["row"][7] = "PASS"  # verdict
            verdict = json.loads(line["row"][-1])
            verdict["verdict"] = "PASS"
            line["row"][-1] = json.dumps(verdict)
    forged = _write(tmp_path / "forged.jsonl", lines)
    second = str(tmp_path / "second.sqlite")
    assert main(["store", "import", str(forged), "--store", second]) == 0
    capsys.readouterr()
    one_line(main(["promote", "run-v2cand", "--to", "approved", "--store", second]), capsys.readouterr().err, "imported")
    # re-derived here, from the imported runs and the gate file: the gate fails, and promote stays refused
    assert main(["gate", str(gate), "--baseline", "approved", "--candidate", "run-v2cand", "--store", second,
                 "--verdict", str(tmp_path / "v2.json")]) == 1
    capsys.readouterr()
    one_line(main(["promote", "run-v2cand", "--to", "approved", "--store", second]), capsys.readouterr().err, "FAIL")


def test_an_imported_pass_counts_once_re_derived(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gate, dump, _ = _ledger_export(tmp_path, capsys, right=31)
    second = str(tmp_path / "second.sqlite")
    assert main(["store", "import", str(dump), "--store", second]) == 0
    capsys.readouterr()
    assert main(["promote", "run-v2cand", "--to", "approved", "--store", second]) == 2
    assert main(["gate", str(gate), "--baseline", "approved", "--candidate", "run-v2cand", "--store", second,
                 "--verdict", str(tmp_path / "v2.json")]) == 0
    assert main(["promote", "run-v2cand", "--to", "approved", "--store", second]) == 0


@pytest.mark.parametrize("forgery", ["gap", "phantom_next", "wrong_previous", "unknown_run"])
def test_imported_releases_must_continue_the_channel(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     forgery: str) -> None:
    _, dump, lines = _ledger_export(tmp_path, capsys, right=31)
    release = next(line for line in lines if line.get("table") == "ledger_releases")
    extra = json.loads(json.dumps(release))
    # release row: channel, number, run_id, previous_run, created, creator, verdict_id, forced, reason
    extra["row"][1], extra["row"][2], extra["row"][3] = 2, "run-v2cand", release["row"][2]
    if forgery == "gap":
        extra["row"][1] = 3
    elif forgery == "wrong_previous":
        extra["row"][3] = "run-nope"
    elif forgery == "unknown_run":
        extra["row"][2] = "run-nowhere"
    forged = _write(tmp_path / "forged.jsonl", [*lines, extra])
    second = str(tmp_path / "second.sqlite")
    one_line(main(["store", "import", str(forged), "--store", second]), capsys.readouterr().err, "ledger_")
    # nothing of the refused import was kept: the channel does not exist in the second store
    assert main(["channel", "list", "--store", second]) == 0
    assert "approved" not in capsys.readouterr().out


def test_an_imported_release_past_the_channel_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A store at release 1 and an export with release 2 of the same channel (channel row still at 1)."""
    _, dump, lines = _ledger_export(tmp_path, capsys, right=31)
    second = str(tmp_path / "second.sqlite")
    assert main(["store", "import", str(dump), "--store", second]) == 0
    release = next(line for line in lines if line.get("table") == "ledger_releases")
    extra = json.loads(json.dumps(release))
    extra["row"][1], extra["row"][2], extra["row"][3] = 2, "run-v2cand", release["row"][2]
    capsys.readouterr()
    one_line(main(["store", "import", str(_write(tmp_path / "f.jsonl", [*lines, extra])), "--store", second]),
             capsys.readouterr().err, "ledger_releases")
    assert main(["promote", "run-v2cand", "--to", "approved", "--force", "--reason", "ok", "--store", second]) == 0


@pytest.mark.parametrize("column, value", [(4, "yesterday"), (1, 1.5), (2, None), (7, True), (2, {"a": 1})])
def test_imported_rows_of_the_wrong_type_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, column: int,
                                                    value: object) -> None:
    _, dump, lines = _ledger_export(tmp_path, capsys, right=31)
    release = next(line for line in lines if line.get("table") == "ledger_releases")
    release["row"][column] = value
    one_line(main(["store", "import", str(_write(tmp_path / "f.jsonl", lines)), "--store",
                   str(tmp_path / "second.sqlite")]), capsys.readouterr().err, "ledger_releases.")


# ---- 9. eval writes only what its readers accept ---------------------------------------------------------

def test_eval_refuses_to_write_a_sample_its_reader_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.data import runfile

    # the reader's limit, lowered so that a small run crosses it: the writer must apply the same one
    monkeypatch.setattr(runfile, "MAX_SAMPLE_BYTES", 300)
    root = write_suite(tmp_path / "s", MC_TASK, {"data/mc.jsonl": MC_ROWS[:2]})
    code = main(["eval", "-m", "fake:echo", "-s", str(root), "--out", str(tmp_path / "run"), "--store",
                 str(tmp_path / "s.sqlite"), "-q"])
    one_line(code, capsys.readouterr().err, "300 bytes", "cannot read back")
    assert not (tmp_path / "run" / "results.json").exists()


# ---- 10. outputs never destroy inputs --------------------------------------------------------------------

@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    from tests.unit.runfixtures import demo_pair

    base, cand = demo_pair(tmp_path / "runs", n=20)
    gate = tmp_path / "gate.yaml"
    gate.write_text("rules:\n  - name: medical holds\n    suite: medical\n    non_inferiority: 0.5\n")
    return base, cand, gate


def _unchanged(paths: list[Path]) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


def test_eval_out_and_store_on_one_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_suite(tmp_path / "s", MC_TASK, {"data/mc.jsonl": MC_ROWS[:2]})
    out = tmp_path / "D"
    code = main(["eval", "-m", "fake:echo", "-s", str(root), "--out", str(out), "--store", str(out / "results.json")])
    err = capsys.readouterr().err
    assert code == 2 and "results.json" in err, err
    assert not out.exists()


@pytest.mark.parametrize("case", ["verdict_is_results", "verdict_is_samples", "junit_is_gate", "junit_is_verdict",
                                  "verdict_is_baseline_results", "verdict_is_store", "junit_is_dir"])
def test_gate_outputs_never_replace_inputs(pair: tuple[Path, Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture, case: str) -> None:
    base, cand, gate = pair
    store = tmp_path / "s.sqlite"
    junit, verdict = str(tmp_path / "j.xml"), str(tmp_path / "v.json")
    if case == "verdict_is_results":
        verdict = str(cand / "results.json")
    elif case == "verdict_is_samples":
        verdict = str(cand / "samples.jsonl")
    elif case == "junit_is_gate":
        junit = str(gate)
    elif case == "junit_is_verdict":
        junit = verdict
    elif case == "verdict_is_baseline_results":
        (tmp_path / "link.json").symlink_to(base / "results.json")
        verdict = str(tmp_path / "link.json")
    elif case == "verdict_is_store":
        verdict = str(store) + "-wal"
    elif case == "junit_is_dir":
        junit = str(tmp_path)
    before = _unchanged([cand / "results.json", cand / "samples.jsonl", base / "results.json", gate])
    code = main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--junit", junit,
                 "--verdict", verdict, "--store", str(store)])
    one_line(code, capsys.readouterr().err)
    assert _unchanged(list(before)) == before


@pytest.mark.parametrize("case", ["md_is_results", "html_is_md", "html_is_dir", "md_is_gate", "html_hardlink"])
def test_report_outputs_never_replace_inputs(pair: tuple[Path, Path, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture, case: str) -> None:
    base, cand, gate = pair
    html, md = str(tmp_path / "r.html"), str(tmp_path / "r.md")
    if case == "md_is_results":
        md = str(cand / "results.json")
    elif case == "html_is_md":
        html = md
    elif case == "html_is_dir":
        html = str(tmp_path)
    elif case == "md_is_gate":
        md = str(gate)
    elif case == "html_hardlink":
        os.link(base / "samples.jsonl", tmp_path / "hard.html")
        html = str(tmp_path / "hard.html")
    before = _unchanged([cand / "results.json", base / "samples.jsonl", gate])
    code = main(["report", str(base), str(cand), "--gate", str(gate), "--html", html, "--md", md])
    one_line(code, capsys.readouterr().err)
    assert _unchanged(list(before)) == before


def test_a_verdict_of_another_gate_is_kept_without_force(pair: tuple[Path, Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    base, cand, gate = pair
    other = tmp_path / "other.yaml"
    other.write_text(gate.read_text().replace("0.5", "0.4"))
    store = str(tmp_path / "s.sqlite")
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--store", store]) in (0, 1, 3)
    first = (cand / "verdict.json").read_text()
    capsys.readouterr()
    one_line(main(["gate", str(other), "--baseline", str(base), "--candidate", str(cand), "--store", store]),
             capsys.readouterr().err, "another gate", "--force")
    assert (cand / "verdict.json").read_text() == first
    # the same gate again replaces its own verdict; --force replaces another's
    assert main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--store", store]) in (0, 1, 3)
    assert main(["gate", str(other), "--baseline", str(base), "--candidate", str(cand), "--store", store,
                 "--force"]) in (0, 1, 3)
    assert str(other) in (cand / "verdict.json").read_text()


def test_store_export_over_its_own_store(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "s.sqlite"
    assert main(["runs", "list", "--store", str(store)]) == 0
    before = store.read_bytes()
    one_line(main(["store", "export", str(store), "--store", str(store)]), capsys.readouterr().err, "--store")
    assert store.read_bytes() == before


def test_a_full_disk_is_one_line(pair: tuple[Path, Path, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    """A real full filesystem (a 16 kB tmpfs; needs the right to mount, else skipped): ENOSPC is exit 2."""
    import subprocess

    base, cand, _ = pair
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        code = main(["report", str(base), str(cand), "--html", str(mnt / "r.html")])
        one_line(code, capsys.readouterr().err, "cannot write", "No space left")
        assert list(mnt.iterdir()) == []  # nothing half-written
        # eval --out on the full filesystem: the samples file does not fit
        (mnt / "filler").write_bytes(b"x" * 12_000)
        root = write_suite(tmp_path / "s", MC_TASK, {"data/mc.jsonl": MC_ROWS})
        code = main(["eval", "-m", "fake:echo", "-s", str(root), "--out", str(mnt / "run" / "deeper"), "--store",
                     str(tmp_path / "s.sqlite"), "-q"])
        one_line(code, capsys.readouterr().err, "cannot write")
        assert not (mnt / "run" / "deeper" / "results.json").exists()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# ---- 12. control characters never reach a terminal, a report or a JUnit file raw ---------------------------

HOSTILE = "\x1b]0;pwned\x07\x1b[31mred\x01\u202e"


def test_control_characters_are_escaped_in_every_output(pair: tuple[Path, Path, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    import xml.etree.ElementTree as ET

    base, cand, _ = pair
    results = json.loads((cand / "results.json").read_text())
    results["model"]["adapters"] = [{"name": "cand" + HOSTILE, "path": "x" + HOSTILE}] \
        if isinstance(results["model"].get("adapters"), list) else results["model"].get("adapters")
    (cand / "results.json").write_text(json.dumps(results))
    gate = tmp_path / "hostile.yaml"
    gate.write_text('rules:\n  - name: "medical \\x01 \\e]0;pwned\\a holds \\u202e"\n    suite: medical\n'
                    "    non_inferiority: 0.5\n")
    junit, md, html = tmp_path / "j.xml", tmp_path / "r.md", tmp_path / "r.html"
    code = main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--junit", str(junit),
                 "--verdict", str(tmp_path / "v.json"), "--store", str(tmp_path / "s.sqlite")])
    out = capsys.readouterr()
    assert code in (0, 1, 3), out.err
    ET.parse(junit)  # valid XML
    assert "\\x01" in junit.read_text()
    assert main(["report", str(base), str(cand), "--gate", str(gate), "--md", str(md), "--html", str(html)]) == 0
    out2 = capsys.readouterr()
    for text in (out.out, out.err, out2.out, out2.err, md.read_text(), html.read_text(), junit.read_text()):
        assert not any(ch in text for ch in "\x1b\x07\x01\u202e"), repr(text[:200])
    # an error line quoting a hostile name is escaped too
    bad = tmp_path / "bad.yaml"
    bad.write_text('rules:\n  - name: "x"\n    suite: "med\\e]0;pwned\\a"\n    non_inferiority: 0.5\n')
    main(["gate", str(bad), "--baseline", str(base), "--candidate", str(cand), "--store", str(tmp_path / "s.sqlite"),
          "--verdict", str(tmp_path / "v2.json")])
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err


def test_the_cli_stdout_filter_keeps_newlines_and_tabs() -> None:
    from harness.core.untrusted import strip_controls, xml_safe

    assert strip_controls("a\tb\nc") == "a\tb\nc"
    assert strip_controls("\x1b[2J\r\x9b") == "\\x1b[2J\\r\\x9b"
    assert xml_safe("ok\x00\x0b\ud800") == "ok\\x00\\x0b\\ud800"


# ---- 4. templates are bounded in time and size -----------------------------------------------------------

BOMBS = {
    "nested_range": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ q }}",
    "lipsum": "{{ lipsum(1000000000) }}{{ q }}",
    "printf_width": "{{ '%01000000000d' % 1 }}{{ q }}",
    "printf_star": "{{ '%*d' % (1000000000, 1) }}{{ q }}",
    "center_filter": "{{ q|center(2000000000) }}",
    "center_method": "{{ q.center(2000000000) }}",
    "format_filter": "{{ '%01000000000d'|format(1) }}{{ q }}",
    "format_method": "{{ '{:>2000000000}'.format(q) }}",
    "replace": "{% set s = 'x' * 1000000 %}{{ s|replace('x', s) }}{{ q }}",
    "replace_method": "{% set s = 'x' * 1000000 %}{{ s.replace('x', s) }}{{ q }}",
    "batch": "{{ [q]|batch(1000000000, 'x')|list|length }}",
    "namespace_concat": "{% set ns = namespace(x=q) %}{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}"
                        "{% endfor %}{{ ns.x|length }}",
    "namespace_plus": "{% set ns = namespace(x=[q]) %}{% for i in range(64) %}{% set ns.x = ns.x + ns.x %}"
                      "{% endfor %}{{ ns.x|length }}",
    "output": "{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}{{ q }}",
    "set_block": "{% set x %}{% for i in range(100000) %}{{ 'y' * 1000000 }}{% endfor %}{% endset %}{{ q }}",
    "list_growth": "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ['y' * 1000000] %}"
                   "{% endfor %}{{ q }}",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_template_bombs_are_one_line_naming_suite_task_split_row(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                 monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    import time

    monkeypatch.setenv("TUNEGATE_TEMPLATE_SECONDS", "0.5")
    task = MC_TASK.replace('prompt: "Question: {{ q }}\\nAnswer:"', "prompt: " + json.dumps(BOMBS[name]))
    assert BOMBS[name] in json.loads(task.split("prompt: ", 1)[1].split("\n", 1)[0])
    root = write_suite(tmp_path / "s", task, {"data/mc.jsonl": MC_ROWS[:2]})
    start = time.monotonic()
    code = main(["suites", "validate", str(root)])
    took = time.monotonic() - start
    one_line(code, capsys.readouterr().err, "suite t", "task mc", "split 'test'", "row 1")
    assert took < 10, took


def test_template_limits_are_configurable(tmp_path: Path, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    task = MC_TASK.replace('prompt: "Question: {{ q }}\\nAnswer:"', "prompt: \"{{ 'y' * 5000 }}{{ q }}\"")
    root = write_suite(tmp_path / "s", task, {"data/mc.jsonl": MC_ROWS[:2]})
    assert main(["suites", "validate", str(root)]) == 0
    monkeypatch.setenv("TUNEGATE_TEMPLATE_CHARS", "1000")
    one_line(main(["suites", "validate", str(root)]), capsys.readouterr().err, "1000 characters", "row 1")
    monkeypatch.setenv("TUNEGATE_TEMPLATE_CHARS", "lots")
    one_line(main(["suites", "validate", str(root)]), capsys.readouterr().err, "TUNEGATE_TEMPLATE_CHARS")


def test_ordinary_templates_render_as_before() -> None:
    from harness.core.untrusted import render_bounded, template_env

    env = template_env()
    text = ("{{ '%03d'|format(7) }} {{ '{:>4}'.format(q) }} {{ q ~ '!' }} {{ [1] + [2] }} {{ 'a b'|replace(' ', '_') }} "
            "{{ [1, 2, 3]|batch(2)|list }} {{ 'x'|center(5) }}|{{ 'a\nb'|indent(2) }} {{ 2 ** 10 }} {{ 'ab' * 2 }}")
    assert render_bounded(env.from_string(text), {"q": "Q"}) == \
        "007    Q Q! [1, 2] a_b [[1, 2], [3]]   x  |a\n  b 1024 abab"


# ---- 5. YAML that expands without bound --------------------------------------------------------------------

def _alias_bomb(levels: int = 12) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["lmeval_doc_to_choice", "suite", "gate"])
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture, where: str) -> None:
    import time

    (tmp_path / "data.json").write_text(json.dumps([{"q": "x", "choices": ["a", "b"], "answer": 0}]))
    bomb = _alias_bomb().replace("\n", "\n  ")
    start = time.monotonic()
    if where == "lmeval_doc_to_choice":
        task = tmp_path / "task.yaml"
        task.write_text(f"bombs:\n  {bomb}\ntask: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                        f"    test: data.json\noutput_type: multiple_choice\ndoc_to_text: q\n"
                        f"doc_to_choice: *a11\ndoc_to_target: answer\n")
        code = main(["suites", "validate", str(task)])
    elif where == "suite":
        (tmp_path / "suite.yaml").write_text(f"name: t\nbombs:\n  {bomb}\ntasks: []\n")
        code = main(["suites", "validate", str(tmp_path)])
    else:
        from tests.unit.runfixtures import demo_pair

        base, cand = demo_pair(tmp_path / "runs", n=8)
        (tmp_path / "gate.yaml").write_text(f"bombs:\n  {bomb}\nrules: *a11\n")
        code = main(["gate", str(tmp_path / "gate.yaml"), "--baseline", str(base), "--candidate", str(cand),
                     "--verdict", str(tmp_path / "v.json"), "--store", str(tmp_path / "s.sqlite")])
    one_line(code, capsys.readouterr().err, "expands to more than")
    assert time.monotonic() - start < 5


def test_ordinary_aliases_still_load(tmp_path: Path) -> None:
    from harness.core.config import parse_yaml

    data, _ = parse_yaml("base: &b {x: 1}\none: *b\ntwo: [*b, *b]\n", "t")
    assert data["two"][1] == {"x": 1}


# ---- 6. idle sockets cannot lock reviewers out of the review app ------------------------------------------

@pytest.fixture
def review_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from harness.review import app as review_app
    from harness.review.queue import build_queue
    from harness.storage.review import ReviewDB
    from tests.unit.test_review_queue import make_runs

    monkeypatch.setattr(review_app, "HEADER_TIMEOUT", 1.0)
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path), reviewers_per_item=1, db=db)
    session = review_app.Session()
    app = review_app.create_app(db, queue, session, seed=1)
    with review_app.serve_in_thread(app) as url:
        yield url, session
    db.close()


def _idle_sockets(url: str, count: int, partial: bytes = b"") -> list:
    import socket

    host, port = url.removeprefix("http://").split(":")
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)), timeout=5)
        if partial:
            s.sendall(partial)
        socks.append(s)
    return socks


@pytest.mark.parametrize("partial", [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
def test_three_hundred_idle_connections_do_not_lock_reviewers_out(review_server: tuple, partial: bytes) -> None:
    import httpx

    url, session = review_server
    socks = _idle_sockets(url, 300, partial)
    try:
        reply = httpx.get(url + "/", headers={"X-Review-Token": session.token}, timeout=10)
        assert reply.status_code == 200, reply.status_code  # not 503
    finally:
        for s in socks:
            s.close()


def test_a_connection_without_a_complete_request_is_closed(review_server: tuple) -> None:
    import time

    (sock,) = _idle_sockets(review_server[0], 1, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
    sock.settimeout(10)
    start = time.monotonic()
    try:
        assert sock.recv(1024) == b""  # closed by the server, without an answer
    finally:
        sock.close()
    assert time.monotonic() - start < 5


# ---- 13 (siblings). a FIFO or a folder where any input file goes never blocks or crashes --------------------

@pytest.mark.parametrize("target", ["gate", "results", "samples", "import", "libpq_like_name_ok"])
def test_a_fifo_or_folder_as_any_input_is_one_line(pair: tuple[Path, Path, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture, target: str) -> None:
    base, cand, gate = pair
    store = str(tmp_path / "s.sqlite")
    if target == "gate":
        fifo = tmp_path / "g.yaml"
        os.mkfifo(fifo)
        code = main(["gate", str(fifo), "--baseline", str(base), "--candidate", str(cand), "--store", store,
                     "--verdict", str(tmp_path / "v.json")])
        one_line(code, capsys.readouterr().err, "FIFO")
    elif target in ("results", "samples"):
        name = "results.json" if target == "results" else "samples.jsonl"
        (cand / name).unlink()
        os.mkfifo(cand / name)
        code = main(["compare", str(base), str(cand)])
        one_line(code, capsys.readouterr().err, "FIFO")
    elif target == "import":
        (tmp_path / "dir.jsonl").mkdir()
        one_line(main(["store", "import", str(tmp_path / "dir.jsonl"), "--store", store]), capsys.readouterr().err,
                 "directory")
    else:  # an ordinary file name with "=" in it is still a store
        assert main(["runs", "list", "--store", str(tmp_path / "team=a.sqlite")]) == 0


def test_code_check_out_never_replaces_its_samples(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    samples = out / "results.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return 1\n"}) + "\n")
    before = samples.read_bytes()
    one_line(main(["code", "check", str(samples), "--out", str(out)]), capsys.readouterr().err, "SAMPLES")
    assert samples.read_bytes() == before


def test_stdout_is_redacted_too(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import io

    from harness.core.untrusted import SafeTextStream
    buf = io.StringIO()
    SafeTextStream(buf).write("url postgresql://u:pw9secret@h/db Authorization: Bearer abc\x1b[2J\n")
    assert "pw9secret" not in buf.getvalue() and "abc" not in buf.getvalue() and "\x1b" not in buf.getvalue()


def test_two_different_suites_with_one_name_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Results are keyed by suite name: the second would silently replace the first (evidence lost)."""
    one = write_suite(tmp_path / "one", MC_TASK, {"data/mc.jsonl": MC_ROWS[:3]})
    two = write_suite(tmp_path / "two", MC_TASK, {"data/mc.jsonl": MC_ROWS[3:8]})
    args = ["eval", "-m", "fake:echo", "--store", str(tmp_path / "s.sqlite"), "-q"]
    one_line(main([*args, "-s", str(one), "-s", str(two), "--out", str(tmp_path / "r")]), capsys.readouterr().err,
             "two different suites")
    assert main([*args, "-s", str(one), "-s", str(one / "suite.yaml"), "--out", str(tmp_path / "r2")]) == 0
    results = json.loads((tmp_path / "r2" / "results.json").read_text())
    assert results["suites"]["t"]["tasks"]["mc"]["n"] == 3
