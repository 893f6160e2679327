"""The real `rag` console script on bad input: one `error:` line on stderr, non-zero exit, no traceback.

Every case fails before the embedding model is loaded, so all of them are fast; the
subprocesses are started together and awaited once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"
SCRIPT = Path(sys.executable).parent / "rag"
TIMEOUT_S = 120


def _command() -> list[str]:
    return [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "rag.cli"]


def _corpus(base: Path, kind: str) -> Path:
    folder = base / f"corpus-{kind}"
    if kind == "missing":
        return folder
    folder.mkdir()
    if kind == "good":
        shutil.copy(REVIEW, folder / REVIEW.name)
    elif kind == "pdf":
        shutil.copy(REVIEW, folder / REVIEW.name)
        (folder / "notes.pdf").write_bytes(b"%PDF-1.4\n")
    elif kind == "gbk":
        (folder / "gbk.txt").write_bytes("间充质干细胞治疗中风。".encode("gbk"))
    return folder


# name: (corpus kind, argv after the script)
CASES = {
    "empty_question": ("good", ["ask", ""]),
    "whitespace_question": ("good", ["ask", "   \t  "]),
    "long_question": ("good", ["ask", "问" * 501]),
    "empty_claim": ("good", ["search", ""]),
    "missing_corpus": ("missing", ["ask", "间充质干细胞是什么?"]),
    # serve listens before the model loads, but a corpus it cannot read still fails before that
    "serve_missing_corpus": ("missing", ["serve", "--port", str(free_port())]),
    "unsupported_file": ("pdf", ["ask", "间充质干细胞是什么?"]),
    "non_utf8": ("gbk", ["ask", "间充质干细胞是什么?"]),
    "missing_argument": ("good", ["ask"]),
    "fit_two_onlys": ("good", ["fit", "--only-rule", "--only-chooser"]),
    "bad_backend_setting": ("good", ["ask", "间充质干细胞是什么?"]),
    "bad_number_setting": ("good", ["search", "间充质干细胞"]),
}
# Settings of the wrong kind, per case.
CASE_ENV = {"bad_backend_setting": {"RAG_EMBEDDING_BACKEND": "gpu"}, "bad_number_setting": {"RAG_TOP_K": "six"}}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        HOME=str(base / "home"),
        XDG_CACHE_HOME=str(base / "cache"),
        HF_HUB_OFFLINE="1",
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
        PYTHONIOENCODING="utf-8",
        RAG_INDEX_DIR=str(base / "index"),
    )
    (base / "home").mkdir()
    procs = {}
    for name, (kind, argv) in CASES.items():
        (base / name).mkdir()
        case_env = dict(env, RAG_CORPUS_DIR=str(_corpus(base / name, kind)), **CASE_ENV.get(name, {}))
        procs[name] = subprocess.Popen(
            _command() + argv,
            cwd=base,
            env=case_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
    out = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    out["_cache"] = base / "cache"
    out["_index"] = base / "index"
    return out


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode not in (0, None), result
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error:"), line
    assert "unexpected" not in line, line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert result.stdout == ""
    return line


def test_cli_empty_question_exits_with_error(results):
    assert_one_error_line(results["empty_question"], "empty")


def test_cli_whitespace_question_exits_with_error(results):
    assert_one_error_line(results["whitespace_question"], "empty")


def test_cli_long_question_exits_with_error(results):
    assert_one_error_line(results["long_question"], "too long", "501", "500")


def test_cli_empty_claim_exits_with_error(results):
    assert_one_error_line(results["empty_claim"], "empty")


def test_cli_missing_corpus_exits_with_error(results):
    assert_one_error_line(results["missing_corpus"], "corpus folder not found", "corpus-missing")


def test_cli_serve_with_a_missing_corpus_exits_before_listening(results):
    assert_one_error_line(results["serve_missing_corpus"], "corpus folder not found", "corpus-missing")


def test_cli_unsupported_file_exits_with_error_naming_it(results):
    assert_one_error_line(results["unsupported_file"], "unsupported", "notes.pdf")


def test_cli_non_utf8_file_exits_with_error_naming_it(results):
    assert_one_error_line(results["non_utf8"], "gbk.txt", "UTF-8")


def test_cli_bad_backend_setting_names_the_variable_and_the_choices(results):
    assert_one_error_line(results["bad_backend_setting"], "RAG_EMBEDDING_BACKEND", "'onnx'", "'sentence-transformers'", "'gpu'")


def test_cli_bad_number_setting_names_the_variable(results):
    assert_one_error_line(results["bad_number_setting"], "RAG_TOP_K", "integer", "'six'")


def test_cli_missing_argument_exits_2(results):
    result = results["missing_argument"]
    assert result.returncode == 2, result
    assert "Traceback" not in result.stdout + result.stderr
    assert "question" in result.stderr.lower()


def test_cli_fit_refuses_two_exclusive_onlys_before_fitting(results):
    result = results["fit_two_onlys"]
    assert result.returncode == 2, result
    assert "Traceback" not in result.stdout + result.stderr
    assert "--only-rule" in result.stderr and "--only-chooser" in result.stderr


def test_cli_errors_do_not_load_model_or_build_index(results):
    cache = results["_cache"]
    assert not (cache / "zh-cited-rag" / "models").exists()
    assert not results["_index"].exists()
