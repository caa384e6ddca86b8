"""Secret references: desired state names where a secret lives, never the secret itself."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import model_validator

from desired_state.base import SpecModel
from desired_state.dotenv import carry_problem
from desired_state.rules import Problem, raise_rules, secret_ref_rules

_SECRET_KEY_NAME = re.compile(
    r"(PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|ACCESS_?KEY"
    r"|AUTH_?KEY|SIGNING_?KEY|DSN|WEBHOOK|(^|_)PASS($|_))",
    re.I,
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What a value looks like, and the words an error may use for it (never the value itself).
_SECRET_VALUE_SHAPES = (
    (re.compile(r"^gh[pousr]_[A-Za-z0-9]{20,}$"), "a GitHub token"),
    (re.compile(r"^github_pat_[A-Za-z0-9_]{20,}$"), "a GitHub token"),
    (re.compile(r"^(sk|rk)_(live|test)_[A-Za-z0-9]{10,}$"), "a Stripe key"),
    (re.compile(r"^AKIA[0-9A-Z]{16}$"), "an AWS access key id"),
    (re.compile(r"^xox[abpr]-[A-Za-z0-9-]{10,}$"), "a Slack token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I), "a URL with a password"),
    (
        re.compile(
            r"[?&](api[_-]?key|apikey|key|token|access_token|auth|sig|signature|secret"
            r"|password|pass|pwd)=[^&\s]+",
            re.I,
        ),
        "a URL with a key",
    ),
    (
        re.compile(
            r"(hooks\.slack\.com/(services|workflows|triggers)/|discord(app)?\.com/api/webhooks/"
            r"|webhook\.office\.com/|outlook\.office\.com/webhook|chat\.googleapis\.com/v1/spaces/"
            r"|api\.telegram\.org/bot\d+:|/hooks/[a-z0-9]{20,})",
            re.I,
        ),
        "a chat webhook URL",
    ),
)
NOT_SECRET_ANNOTATION = "setpoint.dev/not-secret"  # noqa: S105 -- a key name

# A line of a compose file that carries a credential: a secret's key with a value that is
# not only `${VAR}` references, a token shape, or a URL with a password in it. The plan's
# compose diff masks such lines; validation refuses them (a plan carries the file itself).
COMPOSE_CREDENTIAL_KEY = re.compile(
    r"""^(?P<key>\s*(?:-\s*)?["']?(?P<name>[\w.-]*(?:passw(?:or)?d|passwd|secret|token
    |api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)[\w.-]*)["']?\s*[:=]\s*)
    (?P<value>.*)$""",
    re.IGNORECASE | re.VERBOSE,
)
ONLY_REFERENCES = re.compile(r"""^["']?(?:\$\{[^}]+\}|\$[A-Za-z_]\w*)+["']?\s*$""")
URL_USERINFO = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:(?P<password>[^/\s@]+)@", re.IGNORECASE
)
TOKEN_SHAPES = re.compile(
    r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|xox[abposr]-[\w-]{10,}|AKIA[0-9A-Z]{16}"
    r"|sk-[A-Za-z0-9_-]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY-----)"
)
_COMPOSE_KEY = re.compile(r"""^\s*(?:-\s*)?["']?(?P<name>[\w.-]+)["']?\s*[:=]""")


class SecretRef(SpecModel):
    """Where a secret value comes from at apply time: an environment variable, a file, or
    Setpoint's encrypted secret store (`setpoint secrets set NAME`)."""

    from_env: str | None = None
    from_file: str | None = None
    from_store: str | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SecretRef:
        raise_rules(secret_ref_rules(self.model_dump(by_alias=True)))
        return self

    def describe(self) -> str:
        if self.from_env is not None:
            return f"env:{self.from_env}"
        if self.from_file is not None:
            return f"file:{self.from_file}"
        return f"store:{self.from_store}"


def secret_reason(key: str, value: str) -> str | None:
    """Why a plain env entry is probably a secret that belongs in `secrets:`, or None."""
    for shape, what in _SECRET_VALUE_SHAPES:
        if shape.search(value):
            return f"the value looks like {what}"
    if _SECRET_KEY_NAME.search(key) and value.strip() and not value.startswith("$"):
        return "the name is a secret's name"
    return None


def looks_like_secret(key: str, value: str) -> bool:
    """True when a plain env entry is probably a secret that belongs in `secrets:`."""
    return secret_reason(key, value) is not None


def check_plain_env(env: dict[str, str]) -> dict[str, str]:
    """Names only: values are judged by `env_rules`, which knows what is marked not secret."""
    raise_rules(_name_rules(env))
    return env


def _name_rules(env: Mapping[str, Any]) -> Iterator[Problem]:
    for key in env:
        if not _ENV_NAME.match(key):
            yield (key,), f"{key!r} is not a valid environment variable name"


def env_rules(env: Mapping[str, Any], not_secret: frozenset[str]) -> Iterator[Problem]:
    """Every plain env entry that is badly named or looks like a secret, at its key."""
    yield from _name_rules(env)
    yield from carry_rules(env)
    for key, value in env.items():
        reason = secret_reason(key, value) if isinstance(value, str) else None
        if reason is None or key in not_secret:
            continue
        # The value itself is never echoed back: error messages end up in CI logs.
        yield (
            (key,),
            (
                f"env {key} looks like a secret ({reason}); put it in `secrets:` as "
                f"`{key}: {{fromEnv: VAR}}`, `{{fromFile: PATH}}` or `{{fromStore: NAME}}`; "
                f"if it is not a secret, list {key} in the annotation `{NOT_SECRET_ANNOTATION}`"
            ),
        )


def carry_rules(env: Mapping[str, Any]) -> Iterator[Problem]:
    """Every value Dokploy's env parser would not give back as written, at its key
    (invariant 16); the reason names what the value holds, never the value."""
    for key, value in env.items():
        problem = carry_problem(value) if isinstance(value, str) else None
        if problem is not None:
            yield (key,), f"env {key} cannot be written to Dokploy unchanged: {problem}"


def compose_credential(line: str, not_secret: frozenset[str]) -> str | None:
    """Why a compose file line carries a credential written in clear, or None. Never the
    value: the key, when the line has one, and what gave it away."""
    keyed = COMPOSE_CREDENTIAL_KEY.match(line)
    key = _COMPOSE_KEY.match(line)
    name = key["name"] if key else None
    if name is not None and name in not_secret:
        return None
    value = keyed["value"].strip() if keyed else ""
    if keyed and value.strip("'\"") and not ONLY_REFERENCES.match(value):
        return f"{keyed['name']} is a secret's name"
    if TOKEN_SHAPES.search(line):
        return f"{name or 'a value'} looks like a token or a private key"
    password = URL_USERINFO.search(line)
    if password and not ONLY_REFERENCES.match(password["password"]):
        return f"{name or 'a value'} holds a URL with a password"
    return None


def compose_rules(compose_file: str, not_secret: frozenset[str]) -> Iterator[str]:
    """One message per compose file line that carries a credential in clear."""
    for number, line in enumerate(compose_file.splitlines(), start=1):
        reason = compose_credential(line, not_secret)
        if reason is not None:
            yield (
                f"compose file line {number}: a credential written in clear ({reason}); "
                "write `${VAR}` and give VAR through `secrets:`; if it is not a secret, list "
                f"its key in the annotation `{NOT_SECRET_ANNOTATION}`"
            )


def not_secret_keys(annotations: Any) -> frozenset[str]:
    """Keys the `setpoint.dev/not-secret` annotation lists, separated by commas or spaces."""
    value = annotations.get(NOT_SECRET_ANNOTATION) if isinstance(annotations, Mapping) else None
    return frozenset(re.split(r"[\s,]+", value.strip())) if isinstance(value, str) else frozenset()


def product_env_rules(spec: Mapping[str, Any], not_secret: frozenset[str]) -> Iterator[Problem]:
    """`env_rules` for a Product spec's env and each lane's, and `compose_rules` for each
    lane's compose file, with paths from the spec."""
    for path, message in env_rules(_as_map(spec.get("env")), not_secret):
        yield ("env", *path), message
    lanes = spec.get("lanes")
    for index, lane in enumerate(lanes if isinstance(lanes, list) else []):
        lane = _as_map(lane)
        for path, message in env_rules(_as_map(lane.get("env")), not_secret):
            yield ("lanes", index, "env", *path), message
        compose = lane.get("composeFile")
        for message in compose_rules(compose if isinstance(compose, str) else "", not_secret):
            yield ("lanes", index, "composeFile"), message


def _as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
