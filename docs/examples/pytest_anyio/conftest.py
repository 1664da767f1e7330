# anyio's pytest plugin: run each @pytest.mark.anyio test on sysletloop and on trio.
import pytest

import sysletloop.testing


@pytest.fixture(
    params=[
        pytest.param(sysletloop.testing.anyio_backend(), id="sysletloop"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param
