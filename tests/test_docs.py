"""The documentation cannot rot: every ganarena command in README.md and docs/**/*.md composes
with today's options (train commands also pass the config checks), every compare command parses,
the generated reference pages match conf/, --help and the API's docstrings, and the docs site
builds with no broken link, missing anchor or page left out of the nav (mkdocs --strict)."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
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
                name = page.relative_to(REPO).as_posix()
                found.append((name, line, COMMAND.fullmatch(words[i])[1], words[i + 1 :]))
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


def unique(found):
    """One case per distinct command: the README's tour repeats commands the pages explain."""
    seen, out = set(), []
    for case in found:
        key = (case[2], tuple(overrides(case[3]) or ()))
        if key not in seen:
            seen.add(key)
            out.append(case)
    return out


CASES = unique(c for c in commands() if c[2] != "compare" and overrides(c[3]) is not None)


def test_the_pages_hold_commands():
    found = commands()
    pages = {page for page, *_ in found}
    assert len(found) >= 100 and len(CASES) >= 60  # the parser finds them
    assert sum(page == "README.md" for page in pages) == 1
    assert sum(page == "README.md" for page, *_ in found) >= 10  # the 30-second tour
    assert {p for p in pages if p.startswith("docs/tutorials/")} >= {
        f"docs/tutorials/{name}.md"
        for name in ("first_gan", "watching_mode_collapse", "sweep_and_compare", "paper_table",
                     "cyclegan", "stylegan2")
    }  # fmt: skip


def test_the_readme_is_short_and_starts_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S)[1].splitlines()
    assert block[0].startswith('pip install -e ".[dev]" && ganarena-train ')
    test_command = block[1].split("#")[0].strip()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command == "python -m pytest -q -n 2 --dist worksteal"
    assert ci[-1].strip() == test_command  # CI runs exactly the README's test command


@pytest.mark.parametrize(("page", "line", "kind", "args"), CASES, ids=[c[1][:60] for c in CASES])
def test_every_documented_command_composes(page, line, kind, args, tmp_path):
    from ganarena import api
    from ganarena.run.config import validate_train

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
    from ganarena.report.compare import build_parser

    for _page, _line, kind, args in commands():
        if kind == "compare":
            build_parser().parse_args([a for a in args if a != "--"])


def docs_reference():
    spec = importlib.util.spec_from_file_location(
        "docs_reference", REPO / "scripts" / "docs_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_reference_pages_are_up_to_date():
    """docs/reference/{config,commands,api}.md are what scripts/docs_reference.py writes today:
    a removed or renamed option, flag or API name fails here until the pages are regenerated."""
    ref = docs_reference()
    generated = ref.pages()
    stale = [p.relative_to(REPO).as_posix() for p in ref.stale(generated)]
    assert not stale, (
        f"{stale} differ from conf/, --help or docstrings: rerun python scripts/docs_reference.py"
    )
    config = generated[ref.OUT / "config.md"]
    for group in ref.groups():  # every group and option file of conf/ has its section
        assert f"## {group} " in config
    assert "`model.width`" in config and "`trainer.max_steps`" in config


def test_the_docs_site_builds_without_broken_links(tmp_path):
    pytest.importorskip("mkdocs")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "index.html").is_file()
