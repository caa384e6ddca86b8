"""Secret sources confined (issue 28 item 1): whoever may edit desired state cannot copy
Setpoint's own credentials, the process environment or a file outside the operator's secret
folder into a service. `fromEnv` reads only names the operator allows and never one of
Setpoint's own settings; `fromFile` reads only regular files inside SETPOINT_SECRET_FILE_DIR.
Refused at `validate` (one line per key, with the reason) and again when a value is read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from desired_state.secret_sources import MAX_SECRET_FILE_BYTES, SecretSources
from desired_state.secrets import SecretRef
from providers.dokploy.emulator import Emulator
from reconciler.cli import context
from reconciler.cli.app import app
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.errors import SecretUnavailable
from reconciler.runtime import Runtime
from reconciler.secret_sources import own_setting_names, secret_sources
from reconciler.secret_values import resolve
from reconciler.settings import Settings
from tests.support.fleets import NEW_PRODUCT, converge, spec_of, store_unchecked

# The probe's five cases: (key, reference, what the refusal says).
PROBE = [
    ("DOKPLOY_KEY", {"fromEnv": "SETPOINT_DOKPLOY_API_KEY"}, "one of Setpoint's own settings"),
    ("STORE_KEY", {"fromEnv": "SETPOINT_SECRET_STORE_KEY"}, "one of Setpoint's own settings"),
    ("AUDIT_KEY", {"fromEnv": "SETPOINT_AUDIT_KEY"}, "one of Setpoint's own settings"),
    ("PROCESS_ENV", {"fromFile": "/proc/self/environ"}, "reads only inside"),
    ("OUTSIDE", {"fromFile": "../outside.txt"}, "may not climb out of its folder"),
]
OWN_VALUES = {
    "SETPOINT_DOKPLOY_API_KEY": "dokploy-api-key-never-copied-1",
    "SETPOINT_SECRET_STORE_KEY": "store-key-never-copied-22",
    "SETPOINT_AUDIT_KEY": "audit-key-never-copied-333",
}
OUTSIDE_VALUE = "a-file-outside-the-secret-folder-4444"


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text(OUTSIDE_VALUE)
    return folder


@pytest.fixture
def validate(secret_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("SETPOINT_SECRET_FILE_DIR", str(secret_dir))
    for name, value in OWN_VALUES.items():
        monkeypatch.setenv(name, value)
    context.settings.cache_clear()
    yield CliRunner()
    context.settings.cache_clear()


def _product_with(secrets: dict[str, dict[str, str]]) -> str:
    lines = [
        f"    {key}: {{{next(iter(ref))}: {next(iter(ref.values()))}}}"
        for key, ref in secrets.items()
    ]
    text = NEW_PRODUCT.format(name="orca", host="orca.example.com")
    return text.replace("  lanes:\n", "  secrets:\n" + "\n".join(lines) + "\n  lanes:\n")


@pytest.mark.parametrize(("key", "ref", "reason"), PROBE, ids=[p[0] for p in PROBE])
def test_validate_refuses_each_probe_source_with_its_key_and_reason(
    validate: CliRunner, tmp_path: Path, key: str, ref: dict[str, str], reason: str
) -> None:
    path = tmp_path / "orca.yaml"
    path.write_text(_product_with({key: ref}))
    result = validate.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    [line, summary] = result.stderr.strip().splitlines()
    field = next(iter(ref))
    assert line.startswith(f"{path}:12:")  # the line of the reference
    assert f"spec.secrets.{key}.{field}: secret {key}: " in line and reason in line
    assert summary == "1 problem(s) found"
    assert not any(value in result.output for value in [*OWN_VALUES.values(), OUTSIDE_VALUE])


def test_validate_accepts_the_operators_sources(validate: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "secrets" / "db").write_text("x")
    path = tmp_path / "orca.yaml"
    allowed = {"DB_URL": {"fromEnv": "SETPOINT_SECRET_ORCA_DB"}, "DB": {"fromFile": "db"}}
    path.write_text(_product_with(allowed))
    result = validate.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_fromfile_is_off_until_a_folder_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SETPOINT_SECRET_FILE_DIR", raising=False)
    context.settings.cache_clear()
    path = tmp_path / "orca.yaml"
    path.write_text(_product_with({"DB": {"fromFile": "/run/secrets/db"}}))
    result = CliRunner().invoke(app, ["validate", str(path)])
    context.settings.cache_clear()
    assert result.exit_code == 1
    assert "secret DB: fromFile is off: set SETPOINT_SECRET_FILE_DIR" in result.stderr


async def test_a_stored_reference_to_setpoints_own_secrets_blocks_its_lane_and_copies_nothing(
    runtime: Runtime, engine: Engine, emulator: Emulator, secret_dir: Path
) -> None:
    """What validate refuses, stored by an older Setpoint or by hand: refused again where the
    value would be read, so the lane is blocked and nothing reaches Dokploy."""
    await converge(runtime)
    runtime.settings = Settings(
        database_url="sqlite://", deploy_poll_seconds=0.02, secret_file_dir=secret_dir
    )
    runtime.environ = {**(runtime.environ or {}), **OWN_VALUES}
    spec = spec_of(NEW_PRODUCT.format(name="orca", host="orca.example.com"))
    spec["secrets"] = {key: ref for key, ref, _ in PROBE}
    store_unchecked(engine, "orca", spec)
    plan = await compute_plan(runtime)
    refused = [b for b in plan.blockers if b.lane == "product:orca/live"]
    assert {b.type for b in refused} == {BlockerType.preflight_failed}
    messages = sorted(b.message for b in refused)
    assert [m.split(":")[0] for m in messages] == sorted(key for key, _, _ in PROBE)
    for key, _, reason in PROBE:
        assert any(m.startswith(f"{key}: ") and reason in m for m in messages)
    assert plan.lane_actions("product:orca/live") == []
    shown = plan.model_dump_json() + repr(emulator.state.applications)
    assert not any(value in shown for value in [*OWN_VALUES.values(), OUTSIDE_VALUE])


def _sources(folder: Path, **kwargs: object) -> SecretSources:
    return SecretSources(reserved=own_setting_names(), file_dir=folder, **kwargs)  # type: ignore[arg-type]


def _read(ref: dict[str, str], sources: SecretSources, **environ: str) -> str:
    return resolve(SecretRef.model_validate(ref), sources=sources, environ=environ).reveal()


def test_a_symlink_out_of_the_folder_is_refused(secret_dir: Path, tmp_path: Path) -> None:
    (secret_dir / "db").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(SecretUnavailable, match="leads out of"):
        _read({"fromFile": "db"}, _sources(secret_dir))
    (secret_dir / "inside").write_text("fine-value")
    (secret_dir / "alias").symlink_to(secret_dir / "inside")
    assert _read({"fromFile": "alias"}, _sources(secret_dir)) == "fine-value"


def test_only_regular_files_of_bounded_size_are_read(secret_dir: Path) -> None:
    (secret_dir / "folder").mkdir()
    with pytest.raises(SecretUnavailable, match="only regular files"):
        _read({"fromFile": "folder"}, _sources(secret_dir))
    os.mkfifo(secret_dir / "pipe")
    with pytest.raises(SecretUnavailable, match="only regular files"):
        _read({"fromFile": "pipe"}, _sources(secret_dir))
    (secret_dir / "big").write_bytes(b"x" * (MAX_SECRET_FILE_BYTES + 1))
    with pytest.raises(SecretUnavailable, match="at most 64 KiB"):
        _read({"fromFile": "big"}, _sources(secret_dir))
    (secret_dir / "key").write_text("k" * MAX_SECRET_FILE_BYTES)
    assert len(_read({"fromFile": str(secret_dir / "key")}, _sources(secret_dir))) == 65536


def test_fromenv_reads_the_prefix_or_the_allow_list_never_own_settings(secret_dir: Path) -> None:
    listed = _sources(secret_dir, env_allow=frozenset({"DATABASE_URL", "SETPOINT_GITHUB_TOKEN"}))
    assert (
        _read({"fromEnv": "SETPOINT_SECRET_A"}, listed, SETPOINT_SECRET_A="value-of-a-1")
        == "value-of-a-1"
    )
    assert _read({"fromEnv": "DATABASE_URL"}, listed, DATABASE_URL="value-of-u-1") == "value-of-u-1"
    own = ("SETPOINT_GITHUB_TOKEN", "SETPOINT_DATABASE_URL", "SETPOINT_SECRET_STORE_KEY")
    for name in (*own, "SETPOINT_EMULATOR_API_KEY"):
        with pytest.raises(SecretUnavailable, match="one of Setpoint's own settings"):
            _read({"fromEnv": name}, listed, **{name: "own-value"})
    for name in ("HOME", "GITHUB_TOKEN"):
        with pytest.raises(
            SecretUnavailable, match=r"reads only variables named SETPOINT_SECRET_\*"
        ):
            _read({"fromEnv": name}, listed, **{name: "other"})


def test_the_prefix_cannot_open_setpoints_own_namespace() -> None:
    for prefix in ("SETPOINT_", "SET", ""):
        if prefix:
            with pytest.raises(ValueError, match="longer than SETPOINT_"):
                Settings(secret_env_prefix=prefix)
    only_listed = secret_sources(Settings(secret_env_prefix="", secret_env_allow=["DB"]))
    assert only_listed.env_refusal("DB") is None
    assert only_listed.env_refusal("SETPOINT_SECRET_X") is not None


def test_no_setting_of_setpoint_is_ever_read_whatever_the_rules_say() -> None:
    from reconciler import settings_doc

    names = {
        f"{model.model_config.get('env_prefix', '')}{field}".upper()
        for model in settings_doc.MODELS
        for field in model.model_fields
    }
    assert {"SETPOINT_DOKPLOY_API_KEY", "SETPOINT_GITHUB_TOKEN", "SETPOINT_DATABASE_URL"} <= names
    loose = secret_sources(Settings(secret_env_prefix="SETPOINT_S", secret_env_allow=[*names]))
    assert [name for name in sorted(names) if loose.env_refusal(name) is None] == []
