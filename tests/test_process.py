"""The CLI's process-wide tuning: the collector is paused for the block and resumed as it was."""

import gc

import pytest

from dashboard.process import garbage_collection_paused


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_and_left_as_it_was_found(enabled):
    was_enabled = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with garbage_collection_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), garbage_collection_paused():
            raise RuntimeError("the block failed")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was_enabled else gc.disable)()
