# pytest-asyncio older than 1.4 (no loop-factory hook): override its policy fixture.
import pytest

import sysletloop


@pytest.fixture(scope="session")
def event_loop_policy() -> sysletloop.EventLoopPolicy:
    return sysletloop.EventLoopPolicy()
