# Every pytest-asyncio test of this suite runs on sysletloop (pytest-asyncio >= 1.3).
pytest_plugins = ["sysletloop.testing"]
