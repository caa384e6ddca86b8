"""The real env parser Dokploy uses: npm `dotenv` 16.4.5, driven through `node`.

`.ci/run` installs the package into a temporary folder outside the repository and exports
that folder as SETPOINT_TEST_DOTENV_DIR (the `--prefix` given to `npm install`). Without it,
a local run installs the package the same way into a temporary folder, if npm can reach its
registry; otherwise the tests that need it skip, except under CI (`CI` set), where a missing
parser fails them.

One `node` process serves a test module: each batch of texts is one line of JSON in and one
line of JSON out, awaited with a timeout.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

VERSION = "16.4.5"
DIR_VARIABLE = "SETPOINT_TEST_DOTENV_DIR"
NODE_TIMEOUT_SECONDS = 60.0
INSTALL_TIMEOUT_SECONDS = 180.0

_SCRIPT = """
const dotenv = require(process.argv[1]);
const lines = require('readline').createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const texts = JSON.parse(line);
  process.stdout.write(JSON.stringify(texts.map((text) => dotenv.parse(text))) + '\\n');
});
"""

_installed: list[Path] = []


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _package_in(prefix: Path) -> Path | None:
    package = prefix / "node_modules" / "dotenv"
    try:
        version = json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return package if version == VERSION else None


def _install() -> Path | None:
    npm = shutil.which("npm")
    if npm is None:
        return None
    prefix = Path(tempfile.mkdtemp(prefix="setpoint-dotenv-"))
    atexit.register(shutil.rmtree, prefix, ignore_errors=True)
    try:
        subprocess.run(  # noqa: S603 -- npm found on PATH, fixed argv
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                f"dotenv@{VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return _package_in(prefix)


def dotenv_package() -> Path:
    """The folder of the real `dotenv` package; skips (fails under CI) when there is none."""
    if shutil.which("node") is None:
        _unavailable("node is not installed: the real dotenv parser cannot run")
    configured = os.environ.get(DIR_VARIABLE)
    if configured:
        package = _package_in(Path(configured))
        if package is None:
            _unavailable(f"{DIR_VARIABLE}={configured} holds no dotenv {VERSION}")
        assert package is not None
        return package
    if not _installed:
        package = _install()
        if package is None:
            _unavailable(
                f"npm dotenv@{VERSION} is not installed ({DIR_VARIABLE} unset) and npm "
                "could not install it"
            )
        assert package is not None
        _installed.append(package)
    return _installed[0]


class RealDotenv:
    """A running `node` with the real package: `parse(texts)` answers a batch at a time."""

    def __init__(self, package: Path) -> None:
        node = shutil.which("node")
        assert node is not None
        self._process = subprocess.Popen(  # noqa: S603 -- node found on PATH, fixed argv
            [node, "-e", _SCRIPT, str(package)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def parse(self, texts: list[str]) -> list[dict[str, str]]:
        """`require('dotenv').parse(text)` for each text."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        # JSON escapes every line break, U+2028 and U+2029 included: one request, one line.
        stdin.write(json.dumps(texts).encode() + b"\n")
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], NODE_TIMEOUT_SECONDS)
        if not ready:
            raise TimeoutError(f"node answered nothing in {NODE_TIMEOUT_SECONDS} s")
        parsed: list[dict[str, str]] = json.loads(stdout.readline())
        return parsed

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=NODE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
