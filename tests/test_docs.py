"""The documentation cannot rot: every ganarena command in README.md and docs/*.md composes
with today's options (train commands also pass the config checks), every compare command parses,
and the docs site builds with no broken link (mkdocs --strict)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"\bganarena-(train|eval|generate|compare)\b")


def split_top(value: str) -> list[str]:
    """`a,b,[c,d]` -> ["a", "b", "[c,d]"]: a sweep's values, commas inside brackets kept."""
    out, depth, cur = [], 0, ""
    for ch in value:
        depth += ch in "[{(" and 1 or 0
        depth -= ch in "]})" and 1 or 0
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


def commands() -> list[tuple[str, str, str, list[str]]]:
    """(page, the line, the command, its arguments with shell variables of the block expanded)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            env: dict[str, str] = {}
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip()
                assign = re.fullmatch(r"([A-Z_]+)=(['\"])(.*)\2", line)
                if assign:
                    env[assign[1]] = assign[3]
                    continue
                if line.startswith("#") or not COMMAND.search(line):
                    continue
                for name, value in env.items():
                    line = line.replace(f"${name}", value)
                words = shlex.split(line.split(" #")[0].split(" &&")[-1].rstrip("&"))
                i = next(k for k, w in enumerate(words) if COMMAND.fullmatch(w))
                found.append((page.name, line, COMMAND.fullmatch(words[i])[1], words[i + 1 :]))
    return found


def overrides(args: list[str]) -> list[str] | None:
    """Hydra overrides to compose (a sweep's first value), or None for a line with placeholders."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-p", "--package", "--cfg", "-c", "--info"):
            skip = True
            continue
        if a.startswith("-") or a.startswith("hydra"):
            continue  # -m, --cfg, --resolve; launcher and sweep settings are Hydra's own
        if re.search(r"<[^>]*>|\.\.\.|\$|DIR_[AB]|IN_DIR|OUT_DIR", a):
            return None
        key, _, value = a.partition("=")
        out.append(f"{key}={split_top(value)[0]}" if value and "," in value else a)
    return out


CASES = [c for c in commands() if c[2] != "compare" and overrides(c[3]) is not None]


def test_the_pages_hold_commands():
    assert len(commands()) >= 60 and len(CASES) >= 40  # the parser finds them


@pytest.mark.parametrize(("page", "line", "kind", "args"), CASES, ids=[c[1][:60] for c in CASES])
def test_every_documented_command_composes(page, line, kind, args, tmp_path):
    from ganarena import api
    from ganarena.config import validate_train

    if any(a.startswith("hydra.searchpath") for a in args):
        pytest.skip("an outside extension: tests/test_readme_extending.py runs it")
    name = {"train": "train", "eval": "evaluate", "generate": "generate"}[kind]
    given = overrides(args)
    if kind != "train" and not any(a.startswith(("ckpt_path=", "real=")) for a in given):
        given.append("ckpt_path=unused.ckpt")
    cfg = api.config(given, name)
    if kind == "train":
        validate_train(cfg)


def test_every_documented_compare_command_parses():
    from ganarena.compare import build_parser

    for _page, _line, kind, args in commands():
        if kind == "compare":
            build_parser().parse_args([a for a in args if a != "--"])


def test_the_docs_site_builds_without_broken_links(tmp_path):
    pytest.importorskip("mkdocs")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "index.html").is_file()
