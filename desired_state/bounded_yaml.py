"""A YAML reader that bounds its work while it reads, not after: entries in one mapping or
list, nodes and documents in one file, and explicit tags are checked as each node is composed, so a
megabyte of flat keys stops at the first entry past the bound (in milliseconds, not after
building the whole tree), and a `!!python/...` tag is a located refusal, never a traceback.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.events import CollectionStartEvent, ScalarEvent

from desired_state.positions import MAX_KEYS

# Per file, whatever its documents: round-trip reading costs about 0.1 ms a node and 2 ms a
# document on a quiet machine, so these bound a file's cost to about 1 s; a Product is about
# 120 nodes, so a file holds some 80 of them.
MAX_NODES = 10_000
MAX_DOCUMENTS = 500

_CORE = "tag:yaml.org,2002:"
_TAG_SHOWN = 60


class InputBound(ComposerError):
    """A bound passed while reading; `problem` is the whole message, `problem_mark` where."""


class BoundedComposer(Composer):
    nodes = 0  # in the whole stream: many small documents cost as much as one big one
    documents = 0

    def compose_document(self) -> Any:
        self.documents += 1
        if self.documents > MAX_DOCUMENTS:
            self._refuse(
                f"more than {MAX_DOCUMENTS} documents in one file", self.parser.peek_event()
            )
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if parent is not None and len(parent.value) >= MAX_KEYS:
            self._refuse(f"more than {MAX_KEYS} entries in one mapping or list", event)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._refuse(f"more than {MAX_NODES} values in one file", event)
        # Any explicit tag, even `!!str`: plain YAML needs none (quote a value instead),
        # and the round-trip reader would keep a tagged value as an object of its own.
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.tag is not None:
            shown = str(event.tag).replace(_CORE, "!!")[:_TAG_SHOWN]
            self._refuse(f"the tag {shown} is not allowed: desired state is plain YAML", event)
        return super().compose_node(parent, index)

    @staticmethod
    def _refuse(message: str, event: Any) -> None:
        raise InputBound(None, None, message, event.start_mark)


def bounded_yaml() -> YAML:
    """A round-trip reader (line numbers kept) with the bounds above."""
    yaml = YAML(typ="rt")
    yaml.Composer = BoundedComposer
    return yaml
