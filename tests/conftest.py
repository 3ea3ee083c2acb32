"""Fixtures live in fix_*.py plugin modules, one concern each."""

pytest_plugins = [
    "tests.fix_db",
    "tests.fix_model",
    "tests.fix_services",
    "tests.fix_kafka",
    "tests.fix_api_process",
]
