"""Validators for names, hostnames and image references that several kinds share."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_IMAGE = re.compile(r"^[a-z0-9]+([._/:-][a-zA-Z0-9_.-]+)*(@sha256:[0-9a-f]{64})?$")


def check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter "
            "or digit"
        )
    return value


def check_hostname(value: str) -> str:
    if (
        len(value) > 253
        or "." not in value
        or not all(_LABEL.match(label) for label in value.split("."))
    ):
        raise ValueError("not a valid host name" + _host_hint(value))
    if value.rsplit(".", 1)[-1].isdigit():  # no top-level domain is a number: an address
        raise ValueError(
            "an IP address is not a domain (Dokploy routes by host name, and an address "
            "may be loopback, link-local or cloud metadata): give the host name"
        )
    if value == "localhost" or value.endswith(".localhost"):
        raise ValueError("a loopback name is not a domain: give the host name")
    return value


_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def check_url_text(value: str) -> str:
    """A path or URL that goes on the wire: no spaces and no control characters (a CR or
    LF would split an HTTP request line or header)."""
    if _CONTROL.search(value):
        raise ValueError("holds a space or a control character (CR, LF, tab...): not allowed")
    return value


def _host_hint(value: str) -> str:
    """What to change, without repeating the value (a pasted URL may hold a password)."""
    if "://" in value:
        return ": drop the scheme; write the bare host, such as shop.example.com"
    if "/" in value:
        return ": put the path in `path` and only the host here"
    if ":" in value:
        return ": put the port in `port` and only the host here"
    if value != value.lower():
        return ": use lowercase"
    if "." not in value:
        return ": use the fully qualified name, such as shop.example.com"
    return (
        ": labels are 1-63 lowercase letters, digits or '-', separated by '.', not starting "
        "or ending with '-'"
    )


def check_repository(value: str) -> str:
    if not _REPOSITORY.match(value):
        raise ValueError("not a repository: expected OWNER/NAME, such as acme/shop")
    return value


def check_image(value: str) -> str:
    if not _IMAGE.match(value):
        hint = "; drop the scheme" if "://" in value else ""
        raise ValueError(f"not an image reference (registry/name:tag or @sha256:...){hint}")
    return value


def is_image_ref(value: str) -> bool:
    return bool(_IMAGE.match(value))


def has_digest(image: str) -> bool:
    return bool(_DIGEST.search(image))


def check_lane_name_ref(value: str) -> str:
    """A lane of this product (`testing`) or of another (`old-shop/testing`)."""
    for part in value.split("/", 1):
        check_name(part)
    return value


Name = Annotated[str, AfterValidator(check_name)]
LaneNameRef = Annotated[str, AfterValidator(check_lane_name_ref)]
Hostname = Annotated[str, AfterValidator(check_hostname)]
UrlText = Annotated[str, AfterValidator(check_url_text)]
Repository = Annotated[str, AfterValidator(check_repository)]
ImageRef = Annotated[str, AfterValidator(check_image)]
