# Every pytest-asyncio test of this suite runs on sysletloop (pytest-asyncio >= 1.4).
pytest_plugins = ["sysletloop.testing"]
