"""Go-built systems: the cache outside the repository, one-line failures, no build when cached (a fake ``go``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.testbed import gobuild
from harness.testbed.gobuild import GoBuildError, GoTool, ensure_built, installed

TOOL = GoTool(name="demo", module="example.org/demo", package="example.org/demo/cmd/demo", version="v1.2.3")


def _fake_go(tmp_path: Path, script: str) -> Path:
    go = tmp_path / "go"
    go.write_text("#!/bin/sh\n" + script)
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    return go


@pytest.fixture(autouse=True)
def _fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gobuild.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(gobuild, "_failures", {})


def test_a_refused_module_is_one_line_and_asked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tmp_path / "calls"
    go = _fake_go(tmp_path, f"""echo "$@" >> {calls}
echo 'go: downloading example.org/demo v1.2.3' >&2
echo 'go: example.org/demo/cmd/demo@v1.2.3: reading https://proxy/x/@v/v1.2.3.info: 403 Forbidden' >&2
echo '\tserver response: This module version is not available.' >&2
exit 1
""")
    monkeypatch.setenv(gobuild.GO_ENV, str(go))
    for _ in range(2):
        with pytest.raises(GoBuildError) as failed:
            ensure_built(TOOL, quiet=True)
        message = str(failed.value)
        assert "\n" not in message and "403 Forbidden" in message and "not available" in message
        assert message.startswith("building demo v1.2.3 failed: ")
    assert calls.read_text().splitlines() == ["install example.org/demo/cmd/demo@v1.2.3"]


def test_builds_into_the_cache_with_go_caches_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_seen = tmp_path / "env"
    go = _fake_go(tmp_path, f"""env > {env_seen}
printf '#!/bin/sh\\necho demo\\n' > "$GOBIN/demo"; chmod +x "$GOBIN/demo"
""")
    monkeypatch.setenv(gobuild.GO_ENV, str(go))
    assert installed(TOOL) is None
    path = ensure_built(TOOL, quiet=True)
    cache = tmp_path / "cache"
    assert path == cache / "bin" / "demo-v1.2.3" / "demo" and os.access(path, os.X_OK)
    env = dict(line.split("=", 1) for line in env_seen.read_text().splitlines() if "=" in line)
    assert env["GOMODCACHE"] == str(cache / "mod") and env["GOCACHE"] == str(cache / "cache")
    assert env["GOTOOLCHAIN"] == "local"
    env_seen.unlink()
    assert ensure_built(TOOL, quiet=True) == path and not env_seen.exists()  # cached: go is not run again


def test_no_toolchain_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gobuild.GO_ENV, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(gobuild, "_FALLBACK_GO", Path("/nonexistent/go"))
    with pytest.raises(GoBuildError, match="no Go toolchain found"):
        ensure_built(TOOL, quiet=True)


def test_versions_are_pinned_module_versions() -> None:
    with pytest.raises(ValueError, match="starts with 'v'"):
        GoTool(name="x", module="m", package="m/cmd", version="1.0")
    with pytest.raises(ValueError, match="not inside module"):
        GoTool(name="x", module="m", package="other/cmd", version="v1.0.0")


def test_a_module_with_replace_directives_is_built_inside_a_copy_of_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "module"
    (source / "cmd" / "demo").mkdir(parents=True)
    (source / "go.mod").write_text("module example.org/demo\n")
    calls = tmp_path / "calls"
    go = _fake_go(tmp_path, f"""echo "$* in $PWD" >> {calls}
case "$1" in
  install) echo 'go: example.org/demo/cmd/demo@v1.2.3 (in example.org/demo@v1.2.3):' >&2
           echo '	The go.mod file for the module providing named packages contains one or' >&2
           echo '	more replace directives. It must not contain directives that would cause' >&2
           exit 1 ;;
  mod) echo '{{"Dir": "{source}"}}' ;;
  build) printf '#!/bin/sh\\n' > "$3"; chmod +x "$3" ;;
esac
""")
    monkeypatch.setenv(gobuild.GO_ENV, str(go))
    path = ensure_built(TOOL, quiet=True)
    assert os.access(path, os.X_OK) and path.name == "demo"
    lines = calls.read_text().splitlines()
    assert lines[1].startswith("mod download -json example.org/demo@v1.2.3")
    assert lines[2].startswith("build -o ") and lines[2].split(" in ")[0].endswith(" ./cmd/demo")
    assert not lines[2].split(" in ")[1].startswith(str(source))  # built in a copy: the module cache stays as it is


def test_a_refusal_names_no_registry_host() -> None:
    from harness.testbed.gobuild import _last_line

    stderr = ("go: downloading example.com/m v1.0.0\n"
              "go: example.com/m/cmd/x@v1.0.0: reading https://registry.invalid/example.com/m/cmd/x/@v/v1.0.0.info: "
              "403 Forbidden\n\tserver response: This module version is not available.\n")
    line = _last_line(stderr)
    assert "registry.invalid" not in line and "https://" not in line
    assert line.endswith("403 Forbidden (server response: This module version is not available.)")
    assert "the module proxy: example.com/m/cmd/x/@v/v1.0.0.info" in line
