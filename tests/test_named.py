"""Name tables: a class is filed under its name once; a second class under that name is refused."""

from __future__ import annotations

import pytest

from clinitune.named import registrar


def test_registrar_files_classes_by_name_and_refuses_a_second_class():
    table: dict[str, type] = {}
    register = registrar(table, "widget")

    @register("a")
    class A:
        pass

    assert table == {"a": A} and A.name == "a"
    assert register("a")(A) is A  # the same class again (a module imported twice) is fine
    with pytest.raises(ValueError, match="widget name 'a' is registered twice"):
        register("a")(type("B", (), {}))


def test_builtin_steps_and_builders_are_registered():
    from clinitune.curate.steps.base import registered_steps
    from clinitune.data.builders import registered_builders

    assert {"pseudonymize_ids", "deidentify"} <= set(registered_steps())
    assert {"icd10_coding", "instructions"} <= set(registered_builders())
