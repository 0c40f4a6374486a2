"""The API keeps its own contract: `schemathesis run /openapi.json --checks all` against the served app
(bundled models) finds nothing: every status code, content type, body and parameter range the server
answers with is the one /openapi.json documents, and schema-valid requests are accepted (see
schemathesis.toml for the one documented exception: content JSON Schema cannot describe).

Bounded and deterministic: the same few hundred cases each run (schemathesis' deterministic mode,
--max-examples 10 per operation), on a uvicorn bound to port 0 in this process."""

import re
import subprocess
import sys

import pytest

from _serve_helpers import LiveServer
from conftest import REPO, import_or_skip_or_fail
from handsign.serve import create_app

import_or_skip_or_fail("schemathesis", "pip install schemathesis (in the dev extra)")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_schemathesis_finds_no_contract_failure(tmp_path):
    with LiveServer(create_app()) as server:
        r = subprocess.run([sys.executable, "-m", "schemathesis.cli", "--config-file", str(REPO / "schemathesis.toml"),
                            "run", f"{server.url}/openapi.json", "--checks", "all", "--max-examples", "10",
                            "--generation-deterministic", "--workers", "1", "--no-color"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=280)
    tail = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", r.stdout).groups())
    assert generated == passed >= 300, tail  # a few hundred cases, all passing
    assert "Tested: 11" in r.stdout, tail  # every documented operation was exercised (GET /models/{name}/weights: 11)


def test_openapi_documents_what_the_server_answers():
    """The fixes schemathesis asked for, pinned: 404 on the model routes, top_k's range, JSON health."""
    spec = create_app().openapi()
    paths = spec["paths"]
    for path, method in (("/predict", "post"), ("/v2/models/{name}", "get"), ("/v2/models/{name}/ready", "get"),
                         ("/v2/models/{name}/infer", "post"), ("/v2/models/{name}/versions/{version}", "get")):
        responses = paths[path][method]["responses"]
        assert responses["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    (top_k,) = [p for p in paths["/predict"]["post"]["parameters"] if p["name"] == "top_k"]
    assert top_k["schema"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 100}
    form = paths["/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["top_k"] == {"type": "integer", "minimum": 1, "maximum": 100}
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert "application/json" in paths[path]["get"]["responses"]["200"]["content"]
    infer = paths["/v2/models/{name}/infer"]["post"]
    assert set(infer["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}
