"""Shared by the tests of a Python module and its JavaScript twin (decode.py / spell.js, motion.py / motion.js, the
features / features.js): Node and its test runner, and the fixture folders both languages read."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, skip_or_fail


def node(untested: str) -> str:
    """The `node` on PATH; without one, skip_or_fail saying what goes untested (e.g. "the JavaScript decoder
    (handsign/web/spell.js)")."""
    found = shutil.which("node")
    if found is None:
        skip_or_fail(f"node is not on PATH: {untested} is not tested")
    return found


def node_test(test_file: str, untested: str, **kw) -> subprocess.CompletedProcess:
    """`node --test TEST_FILE` (a path from the repository root), run there; text output captured. kw: more
    subprocess.run arguments (env)."""
    return subprocess.run([node(untested), "--test", test_file], cwd=REPO, capture_output=True, text=True,
                          timeout=120, **kw)


# Heads every node_json script: fs, and load(path), which imports a JavaScript module from a data: URL when this Node
# is too old to see ES module syntax in a .js file (before 20.19 / 22.7).
JS_LOAD = """
import fs from "node:fs";
import { pathToFileURL } from "node:url";
const load = (f) => import(pathToFileURL(f)).catch(() =>
  import("data:text/javascript;base64," + fs.readFileSync(f).toString("base64")));
"""


def node_json(script: str, args, untested: str):
    """SCRIPT (an ES module, after JS_LOAD; ARGS in process.argv.slice(1)) run by node: what it prints, as JSON."""
    r = subprocess.run([node(untested), "--input-type=module", "-e", JS_LOAD + script, "--", *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check_fixtures_regenerate(folder: Path, names: list[str], tmp_path: Path) -> None:
    """FOLDER/make_fixtures.py, run into tmp_path, makes exactly the committed FOLDER/NAME.json, byte for byte."""
    gen = folder / "make_fixtures.py"
    subprocess.run([sys.executable, str(gen), str(tmp_path)], check=True, timeout=120)
    made = sorted(p.name for p in tmp_path.glob("*.json"))
    assert made == [f"{n}.json" for n in names]
    for n in made:  # (a new numpy may draw other numbers: then regenerate, check and commit)
        assert (tmp_path / n).read_bytes() == (folder / n).read_bytes(), f"{n}: rerun {gen.relative_to(REPO)}"
