"""Secret values: resolved from references, never shown, fingerprinted with a salt (Inv. 7)."""

from __future__ import annotations

import io
import logging
import pickle
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from desired_state.secret_sources import SecretSources
from desired_state.secrets import SecretRef
from reconciler import secret_values as secrets
from reconciler.errors import SecretUnavailable
from reconciler.records import secret_store
from reconciler.records.database import make_engine
from reconciler.runtime import utcnow
from reconciler.secret_sources import own_setting_names
from reconciler.secret_values import SecretValue


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    secrets.forget_all_secrets()
    yield
    secrets.forget_all_secrets()


def env_ref(name: str) -> SecretRef:
    return SecretRef.model_validate({"fromEnv": name})


def file_ref(path: Path) -> SecretRef:
    return SecretRef.model_validate({"fromFile": str(path)})


def files_in(folder: Path) -> SecretSources:
    return SecretSources(reserved=own_setting_names(), file_dir=folder)


def test_a_secret_value_never_prints() -> None:
    value = SecretValue("pa55-word-1")
    logged = "%s" % value  # noqa: UP031 - the formatting logging itself does
    shown = [repr(value), str(value), f"{value}", f"{value!r}", logged, str([value])]
    assert all("pa55" not in text for text in shown)
    assert repr(value) == "SecretValue(***)"
    assert value.reveal() == "pa55-word-1"
    with pytest.raises(TypeError):
        pickle.dumps(value)


def test_resolve_from_env_registers_the_value() -> None:
    value = secrets.resolve(
        env_ref("SETPOINT_SECRET_API_TOKEN"), environ={"SETPOINT_SECRET_API_TOKEN": "tok-123456"}
    )
    assert value.reveal() == "tok-123456"
    assert "tok-123456" in secrets.known_secret_values()


def test_unavailable_secrets_name_the_reference(tmp_path: Path) -> None:
    with pytest.raises(SecretUnavailable) as missing:
        secrets.resolve(env_ref("SETPOINT_SECRET_NOPE"), environ={})
    assert (
        str(missing.value)
        == "secret env:SETPOINT_SECRET_NOPE is unavailable: environment variable is not set"
    )
    with pytest.raises(SecretUnavailable, match="value is empty"):
        secrets.resolve(env_ref("SETPOINT_SECRET_EMPTY"), environ={"SETPOINT_SECRET_EMPTY": ""})
    with pytest.raises(SecretUnavailable, match="file does not exist"):
        secrets.resolve(file_ref(tmp_path / "absent"), sources=files_in(tmp_path))


def test_undecodable_file_error_does_not_quote_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"topsecret-bytes\xff\xfe")
    with pytest.raises(SecretUnavailable) as raised:
        secrets.resolve(file_ref(path), sources=files_in(tmp_path))
    assert "topsecret" not in str(raised.value) and "not UTF-8" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is not None
    assert raised.value.__suppress_context__  # so a traceback does not show the decode error


@pytest.mark.parametrize(
    ("content", "expected"),
    [("s3cret\n", "s3cret"), ("s3cret", "s3cret"), ("s3cret\n\n", "s3cret\n"), ("s3\r\n", "s3")],
)
def test_file_secret_loses_one_trailing_newline(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content.encode())
    assert secrets.resolve(file_ref(path), sources=files_in(tmp_path)).reveal() == expected


def test_fingerprint_is_salted_and_stable() -> None:
    first = secrets.fingerprint("salt-a", SecretValue("value"))
    assert re.fullmatch(r"hmac-sha256:[0-9a-f]{16}", first)
    assert first == secrets.fingerprint("salt-a", "value")
    assert first != secrets.fingerprint("salt-b", "value")
    assert first != secrets.fingerprint("salt-a", "value2")


def test_installation_salt_is_created_once(database_url: str, engine: Engine) -> None:
    racers = 4
    engines = [make_engine(database_url) for _ in range(racers)]
    salts: list[str] = []
    start = threading.Barrier(racers)

    def take(own: Engine) -> None:
        start.wait()
        salts.append(secret_store.installation_salt(own, now=utcnow()))

    threads = [threading.Thread(target=take, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for own in engines:
        own.dispose()
    assert len(salts) == racers and len(set(salts)) == 1
    assert len(salts[0]) == 64
    assert secret_store.installation_salt(engine, now=utcnow()) == salts[0]


@pytest.fixture
def root_output() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)


def test_log_redaction_hides_known_values(root_output: io.StringIO) -> None:
    value = secrets.resolve(
        env_ref("SETPOINT_SECRET_DB"), environ={"SETPOINT_SECRET_DB": "hunter2-long-value"}
    )
    short = secrets.resolve(env_ref("SETPOINT_SECRET_PIN"), environ={"SETPOINT_SECRET_PIN": "4711"})
    assert secrets.install_log_redaction() >= 1
    secrets.install_log_redaction()  # a second call adds no second filter
    log = logging.getLogger("setpoint.test")
    log.warning("connecting with %s to db", value.reveal())
    log.warning("pin %s, but order 47110 is not the pin", short.reveal())
    try:
        raise RuntimeError(f"auth failed for password {value.reveal()}")
    except RuntimeError:
        log.exception("deploy failed")
    text = root_output.getvalue()
    assert "hunter2" not in text
    assert "connecting with *** to db" in text
    assert "pin ***, but order 47110 is not the pin" in text
    assert "RuntimeError: auth failed for password ***" in text


def test_redaction_leaves_logs_alone_when_nothing_is_known(root_output: io.StringIO) -> None:
    secrets.install_log_redaction()
    logging.getLogger("setpoint.test").warning("plain %d", 3)
    assert root_output.getvalue() == "plain 3\n"
