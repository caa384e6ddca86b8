"""docs/cli.md lists every setting, as reconciler/settings.py and the Dokploy config define
them (issue 12, item 12)."""

from __future__ import annotations

from reconciler import settings_doc


def test_the_settings_table_in_docs_cli_is_in_step_with_the_models() -> None:
    documented = settings_doc.documented(settings_doc.CLI_DOC.read_text(encoding="utf-8"))
    assert documented == settings_doc.block(), (
        "docs/cli.md is out of step: run `uv run python -m reconciler.settings_doc --write`"
    )


def test_every_setting_is_described_and_listed() -> None:
    text = settings_doc.CLI_DOC.read_text(encoding="utf-8")
    for model in settings_doc.MODELS:
        prefix = str(model.model_config.get("env_prefix", ""))
        for name, field in model.model_fields.items():
            assert field.description, f"{name} has no description"
            assert f"`{prefix}{name}`".upper() in text.upper()
    assert "`SETPOINT_DEPLOY_POLL_SECONDS`" in text
