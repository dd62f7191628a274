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


def test_test_modules_outside_packages_have_unique_names():
    """A test file in a folder without ``__init__.py`` is imported by its bare name: two such files
    with the same name stop the whole run at collection ("import file mismatch")."""
    bare: dict[str, list[str]] = {}
    for path in TESTS.rglob("test_*.py"):
        if not (path.parent / "__init__.py").exists():
            bare.setdefault(path.name, []).append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in bare.items() if len(paths) > 1}
    assert not clashes, f"test modules with the same name outside packages: {clashes}"
