"""A segment saved from a list of persons (the console's drop-off list): exactly those members,
kept by recomputation, usable by name; bad names and empty lists refused naming the field."""

from __future__ import annotations

import pandas as pd
import pytest

from liebian.db.session import session_scope
from liebian.tags import service
from liebian.tags.service import TagError

FEATURES = pd.DataFrame({"person_id": [1, 2]})


def test_a_list_segment_keeps_its_members_through_recomputation(store) -> None:
    with session_scope() as s:
        tag = service.save_list_segment(s, "流失召回", [5, 3, 3, 9], created_by="t")
        assert tag.level == service.LIST_LEVEL
    with session_scope() as s:
        assert service.members(s, "流失召回") == [3, 5, 9]
        service.recompute(s, features=FEATURES)  # 3, 5, 9 are not even in the features
    with session_scope() as s:
        assert service.members(s, "流失召回") == [3, 5, 9]
        assert "流失召回" in service.tag_names(s)
        service.retire_tag(s, "流失召回")
    with session_scope() as s:
        service.recompute(s, features=FEATURES)
    with session_scope() as s:
        assert service.members(s, "流失召回") == []  # retired: its members leave like any tag's


@pytest.mark.parametrize(
    ("name", "persons", "field", "status"),
    [
        ("", [1], "name", 422),
        ("x" * 65, [1], "name", 422),
        ("空", [], "persons", 422),
        ("dup", [1], "name", 409),
    ],
)
def test_bad_list_segments_are_refused(store, name, persons, field, status) -> None:
    with session_scope() as s:
        service.save_list_segment(s, "dup", [1])
    with session_scope() as s, pytest.raises(TagError) as info:
        service.save_list_segment(s, name, persons)
    assert (info.value.field, info.value.status) == (field, status)
