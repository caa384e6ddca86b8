"""A plan that deletes one product lane's service and creates one like it for another lane
says that it looks like a rename: nothing carries over from the old service to the new one
(a rename declared with `renamedFrom` moves the service instead).

Pure; the product kind offers it as its plan notes (`RemarkingKind`). The heuristic reads
product-shaped names (`product/lane`, `dokploy:<type>/<name>`), so it is the product
kind's: previews come and go with pull requests and are never renamed, and a runner pool's
slots are no services.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.core.plans import Action, Effect, kind_of_lane, name_of_lane
from reconciler.kinds.product.ops import Op


def rename_notes(actions: Sequence[Action]) -> list[str]:
    """Of a plan's actions (this kind's lanes), the deletes and creates that look like one
    lane renamed: the same type of service, sharing the product or the lane name."""
    # Services only: a lane's environment deleted with it is no half of a rename.
    deleted = {a.lane: a for a in actions if a.op == Op.delete_service and "/" in a.target}
    if not deleted:  # no rename without a deletion (a first plan: every action a create)
        return []
    created = [
        a
        for a in actions
        if a.effect is Effect.create and a.lane not in deleted and "/" in a.target
    ]
    notes: list[str] = []
    for old, gone in sorted(deleted.items()):
        for new in created:
            if _looks_renamed(old, gone.target, new.lane, new.target):
                notes.append(
                    f"{new.lane}: looks like a rename of {old}: this plan deletes "
                    f"{gone.target} and creates {new.target}; nothing carries over between them"
                )
    return notes


def _looks_renamed(old: str, old_target: str, new: str, new_target: str) -> bool:
    if kind_of_lane(old) != kind_of_lane(new) or old == new:
        return False
    if old_target.rsplit("/", 1)[0] != new_target.rsplit("/", 1)[0]:
        return False  # a domain, or another type of service
    old_parts, new_parts = name_of_lane(old).split("/"), name_of_lane(new).split("/")
    if len(old_parts) != len(new_parts) or len(old_parts) < 2:
        return True
    return old_parts[0] == new_parts[0] or old_parts[-1] == new_parts[-1]
