"""No test package may take the name of an installed module. pytest puts the folder above a test
package's top on sys.path (its default "prepend" import mode), so `tests/spark_apps/streaming/websocket/`
was importable as `websocket` and hid websocket-client from selenium in the same run."""
from __future__ import annotations

from importlib.metadata import packages_distributions
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_top_level_test_package_shadows_an_installed_module():
    tops = sorted({init.parent for init in TESTS.rglob("__init__.py")
                   if not (init.parent.parent / "__init__.py").exists()})
    installed = packages_distributions()
    shadowing = {top.name: installed[top.name] for top in tops if top.name in installed}
    assert not shadowing, f"test packages named like installed modules: {shadowing}"
