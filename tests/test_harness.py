"""The test suite's own rules: a missing prerequisite skips locally but fails in CI; every test has a timeout."""

import pytest

from conftest import REPO, import_or_skip_or_fail, in_ci, skip_or_fail


@pytest.mark.parametrize("value, ci", [("true", True), ("1", True), ("", False), ("false", False), ("0", False)])
def test_missing_prerequisites_fail_in_ci_and_skip_elsewhere(monkeypatch, value, ci):
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci
    with pytest.raises(pytest.fail.Exception if ci else pytest.skip.Exception, match="chromium not found"):
        skip_or_fail("chromium not found")
    with pytest.raises(pytest.fail.Exception if ci else pytest.skip.Exception, match="no_such_module"):
        import_or_skip_or_fail("no_such_module", "no_such_module is not installed")


def test_ci_script_sets_ci_and_pytest_has_a_default_timeout(pytestconfig):
    assert 'export CI="${CI:-true}"' in (REPO / ".ci" / "run").read_text()
    assert pytestconfig.getini("timeout") == "900"  # pytest-timeout: a hung test fails, it does not block CI
