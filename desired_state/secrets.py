"""Secret references: desired state names where a secret lives, never the secret itself."""

from __future__ import annotations

import re

from pydantic import model_validator

from desired_state.base import SpecModel

_SECRET_KEY_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|ACCESS_?KEY)", re.I
)
_SECRET_VALUE_SHAPES = (
    re.compile(r"^gh[pousr]_[A-Za-z0-9]{20,}$"),  # GitHub tokens
    re.compile(r"^github_pat_[A-Za-z0-9_]{20,}$"),
    re.compile(r"^(sk|rk)_(live|test)_[A-Za-z0-9]{10,}$"),  # Stripe
    re.compile(r"^AKIA[0-9A-Z]{16}$"),  # AWS access key id
    re.compile(r"^xox[abpr]-[A-Za-z0-9-]{10,}$"),  # Slack
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),  # URL with user:password
)


class SecretRef(SpecModel):
    """Where a secret value comes from at apply time: an environment variable, a file, or
    Setpoint's encrypted secret store (`setpoint secrets set NAME`)."""

    from_env: str | None = None
    from_file: str | None = None
    from_store: str | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SecretRef:
        given = [s for s in (self.from_env, self.from_file, self.from_store) if s is not None]
        if len(given) != 1:
            raise ValueError(
                "a secret reference needs exactly one of fromEnv, fromFile or fromStore"
            )
        return self

    def describe(self) -> str:
        if self.from_env is not None:
            return f"env:{self.from_env}"
        if self.from_file is not None:
            return f"file:{self.from_file}"
        return f"store:{self.from_store}"


def looks_like_secret(key: str, value: str) -> bool:
    """True when a plain env entry is probably a secret that belongs in `secrets:`."""
    if any(shape.search(value) for shape in _SECRET_VALUE_SHAPES):
        return True
    return bool(_SECRET_KEY_NAME.search(key)) and len(value) >= 8 and not value.startswith("$")


def check_plain_env(env: dict[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise ValueError(f"{key!r} is not a valid environment variable name")
        if looks_like_secret(key, value):
            # The value itself is never echoed back: error messages end up in CI logs.
            raise ValueError(
                f"env {key} looks like a secret value; put it in `secrets:` as "
                f"`{key}: {{fromEnv: VAR}}`, `{{fromFile: PATH}}` or `{{fromStore: NAME}}` "
                "instead of plain env"
            )
    return env
