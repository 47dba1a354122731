import pytest

from dig.errors import DigError, DuplicateNameError, UnknownNameError
from dig.registry import Registry


def _registry() -> Registry:
    registry = Registry()
    with registry.registering_for("core"):
        registry.add_track("3d", object(), summary="three d")
        registry.add_model("schnet", object(), track="3d", summary="SchNet\nmore text")
        registry.add_model("spherenet", object(), track="3d", summary="SphereNet")
    return registry


def test_entries_carry_plugin_track_and_first_summary_line():
    entry = _registry().get("model", "schnet", track="3d")
    assert (entry.plugin, entry.track, entry.summary) == ("core", "3d", "SchNet")


def test_duplicate_name_names_both_plugins():
    registry = _registry()
    with registry.registering_for("thirdparty"), pytest.raises(DuplicateNameError) as info:
        registry.add_model("schnet", object(), track="3d", summary="again")
    assert "'core'" in str(info.value) and "'thirdparty'" in str(info.value)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as info:
        _registry().get("model", "schnett", track="3d")
    message = str(info.value)
    assert "did you mean 'schnet'" in message and "spherenet" in message


def test_entry_for_unregistered_track_is_refused():
    registry = _registry()
    with pytest.raises(DigError, match="names track 'ssl'"):
        registry.add_model("x", object(), track="ssl", summary="")


def test_restore_drops_entries_added_after_snapshot():
    registry = _registry()
    before = registry.snapshot()
    registry.add_model("egnn", object(), track="3d", summary="")
    registry.restore(before)
    assert registry.names("model", "3d") == ["schnet", "spherenet"]
