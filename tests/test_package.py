from importlib.metadata import version

import sysletloop


def test_version_matches_installed_metadata() -> None:
    assert sysletloop.__version__ == version("sysletloop")
