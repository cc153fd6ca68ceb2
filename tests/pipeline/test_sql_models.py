"""The SQL model runner (pipeline/sql_models.py): headers, order from references, selection, Jinja."""
from __future__ import annotations

import pytest

from features.build import TEMPLATE_CONTEXT
from pipeline import sql_models
from pipeline.storage import connect


def test_headers_and_references():
    assert sql_models.header("-- kind: full\n-- grain: a, b\n-- tags: x\n-- what it is\nSELECT 1") == {
        "kind": "full", "grain": "a, b", "tags": "x"}
    sql = "-- FROM ignored\nWITH t AS (SELECT * FROM Alpha JOIN beta USING (k)) SELECT 'FROM gamma' FROM t, range(3)"
    assert sql_models.references(sql) == {"alpha", "beta", "t"}


def test_every_model_file_declares_itself_and_the_order_follows_references():
    for package, context in (("features", TEMPLATE_CONTEXT), ("pipeline.publish", {})):
        models = sql_models.load(package, context)
        names = list(models.models)
        for name, model in models.models.items():
            assert all(names.index(dep) < names.index(name) for dep in model.depends_on), name
    features = sql_models.load("features", TEMPLATE_CONTEXT)
    assert features.order()[-1] == "user_week_peer_features"
    assert set(features.upstream("sessions")) == {"session_weeks", "session_repo_prompts"}
    assert "affected_weeks" not in features.order()  # a query, not a table
    assert sql_models.declared("features") == tuple(sorted(features.order()))


def test_run_builds_the_selected_models_in_order(tmp_path):
    (tmp_path / "demo_models" / "sql").mkdir(parents=True)
    package = tmp_path / "demo_models"
    (package / "__init__.py").write_text("")
    files = {
        "b_total": "-- kind: full\n-- grain: one row\n-- tags: t\nSELECT sum(x) AS total FROM z_rows",
        "z_rows": "-- kind: full\n-- grain: x\n-- tags: t\nSELECT * FROM range({{ n }}) AS r(x)",
        "v_total": "-- kind: view\n-- grain: one row\nSELECT total * 2 AS twice FROM b_total",
        "m": "-- kind: macros\nCREATE OR REPLACE TEMP MACRO two() AS 2;",
    }
    for name, text in files.items():
        (package / "sql" / f"{name}.sql").write_text(text)
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        models = sql_models.load("demo_models", {"n": 4})
        assert list(models.models)[:3] == ["m", "z_rows", "b_total"]
        with connect() as con:
            assert models.run(con, "t") == ("z_rows", "b_total")
            assert con.sql("SELECT total, two() FROM b_total").fetchall() == [(6, 2)]
            assert sql_models.run(con, "demo_models", context={"n": 5}) == ("z_rows", "b_total", "v_total")
            assert con.sql("SELECT twice FROM v_total").fetchall() == [(20,)]
        with pytest.raises(Exception, match="n"):
            sql_models.load("demo_models")  # undefined Jinja name
        (package / "sql" / "bad.sql").write_text("SELECT 1")
        with pytest.raises(sql_models.ModelError, match="kind"):
            sql_models.load("demo_models", {"n": 1})
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("demo_models", None)
