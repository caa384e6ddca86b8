"""`desired apply` of one file is checked against everything already stored (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import EXAMPLES
from tests.support.cli import Invoke

NEWCOMER = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata:
  name: {name}
spec:
  repository: acme/newcomer
  dokploy:
    project: newcomer
  runtime:
    port: 8080
  lanes:
    - name: {lane}
      image: ghcr.io/acme/newcomer:main
      domains:
        - host: {host}
"""


def stored(setpoint: Invoke) -> list[tuple[str, int]]:
    listed = json.loads(setpoint("desired", "list", "--output", "json").stdout)
    return sorted((f"{o['kind']}/{o['name']}", o["generation"]) for o in listed)


def test_a_single_file_apply_taking_a_stored_lanes_host_is_refused(
    setpoint: Invoke, tmp_path: Path
) -> None:
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    before = stored(setpoint)
    newcomer = tmp_path / "newcomer.yaml"
    newcomer.write_text(NEWCOMER.format(name="docs-v2", lane="live", host="docs.example.com"))
    result = setpoint("desired", "apply", str(newcomer))
    assert result.exit_code == 1
    located = "spec.lanes[0].domains[0].host: docs.example.com/ is already routed by "
    assert f"{newcomer}:" in result.stderr and located in result.stderr
    assert "lane docs-site/prod" in result.stderr and "nothing stored" in result.stderr
    assert stored(setpoint) == before  # the refused store changed nothing


def test_a_single_file_apply_taking_a_stored_lanes_service_name_is_refused(
    setpoint: Invoke, tmp_path: Path
) -> None:
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    before = stored(setpoint)
    newcomer = tmp_path / "docs.yaml"
    newcomer.write_text(NEWCOMER.format(name="docs", lane="site-prod", host="new.example.com"))
    result = setpoint("desired", "apply", str(newcomer))
    assert result.exit_code == 1
    assert "maps to the Dokploy service name 'docs-site-prod', which lane docs-site/prod" in (
        result.stderr
    )
    assert stored(setpoint) == before


def test_reapplying_a_stored_object_with_its_own_hosts_is_allowed(
    setpoint: Invoke, tmp_path: Path
) -> None:
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    docs = (EXAMPLES / "fleet" / "docs-site.yaml").read_text()
    edited = tmp_path / "docs-site.yaml"
    edited.write_text(docs.replace("docs.testing.example.com", "docs-next.example.com"))
    result = setpoint("desired", "apply", str(edited))
    assert result.exit_code == 0, result.output
    assert ("Product/docs-site", 2) in stored(setpoint)
