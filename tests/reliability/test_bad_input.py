"""Bad input never crashes the loader and never loses a row: property-based tests (hypothesis).

Input folders are drawn at random: every dataset as CSV, JSON lines or Parquet, in a file or a
folder, with wrong types, numbers beyond int64, NaN and infinities, mixed timestamp formats,
duplicate and blank ids, extra and missing columns, ragged CSV rows and stray quotes, garbage
JSON lines, then damaged: gzip (whole or truncated), cut bytes, Latin-1 or UTF-16 text, a BOM,
stray binary, an empty file. Properties, for every folder:

- load_inputs raises nothing but MissingDatasetError (and that only for a missing required dataset);
- per dataset, loaded + rejected = given, and every record position of every new file is
  accounted for exactly once (loaded rows and rejected rows partition 1..given, or the whole file
  is one rejected row at position 0);
- every rejected row has a non-empty, one-line reason that the loader documents;
- loaded rows hold what the raw tables promise (unique non-blank ids, bounded counts, no future);
- a rerun on the same folder adds nothing.

Examples are derandomized (the same on every machine and run) and few, so the suite stays fast.
"""
from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest import load as load_module
from pipeline.ingest.load import DATASETS, MissingDatasetError, load_inputs
from pipeline.settings import Settings
from flows import preload_model_libraries, run_local
from pipeline.storage import connect
from tests.conftest import TEST_KEY
from tests.reliability.conftest import REPO

NOW = datetime.datetime(2026, 10, 10, 12, 0, tzinfo=datetime.timezone.utc)
SKEW = datetime.timedelta(hours=24)
DEFAULT_PRICES = REPO / "pipeline" / "ingest" / "prices.csv"
SPECS = {spec.name: spec for spec in DATASETS}
REQUIRED = [spec.name for spec in DATASETS if spec.required]

PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# --- values --------------------------------------------------------------------------------

TIMESTAMPS = [
    "2026-10-05T09:00:00Z", "2026-10-05T09:00:00+00:00", "2026-10-05T11:00:00+0200", "2026-10-05 09:00:00",
    "2026-10-05T09:00:00.123456-05:30", "2026-10-05T09:00:00+02", "2026-10-05", "2026/10/05 09:00",
    "05/10/2026 09:00", "Mon, 05 Oct 2026 09:00:00 GMT", "1759654800", "2026-13-45T99:99:99Z",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2030-01-01T00:00:00Z", "2026-10-05T09:00:00ZZ",
    "+2026-10-05T09:00:00Z", "not a time", "", " ", "\t",
]
HUGE = [2**31, 2**53, 10**12, 10**12 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1, -1, 0, 1]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 12.0, 1e3, 1e308, -0.0, 1e-320]),
    st.text(max_size=12),
    st.sampled_from(["12", " 7 ", "1e3", "12.5", "0x1F", "NaN", "inf", "-3", "", " ", "null", "success", "rolled_back"]),
    st.sampled_from(TIMESTAMPS),
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(st.text(max_size=6), st.integers(), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
ids = st.sampled_from(["a-1", "a-2", "a-3", "a-1 ", "A-1", "", " ", "a\u00e9", "a'1", 'a"1', "a;1"])


def field_values(dataset: str, field: str):
    spec = SPECS[dataset]
    kind = next(f.kind for f in spec.fields if f.name == field)
    if field == spec.id_field:
        return st.one_of(ids, ids, values)
    if kind == "timestamp":
        return st.one_of(st.sampled_from(TIMESTAMPS), st.sampled_from(TIMESTAMPS), values)
    return values


@st.composite
def rows(draw, dataset: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns (contract fields, some missing, plus extras) and rows over them (keys may be missing)."""
    fields = [f.name for f in SPECS[dataset].fields]
    kept = [f for f in fields if draw(st.integers(0, 5)) > 0]  # each field missing 1 time in 6
    extras = draw(st.lists(st.sampled_from(["extra", "Extra", "note", "user id", "ts "]), max_size=2, unique=True))
    columns = kept + extras
    n = draw(st.integers(0, 6))
    out = []
    for _ in range(n):
        row = {}
        for column in columns:
            if draw(st.integers(0, 9)) == 0:
                continue  # key absent from this row
            row[column] = draw(field_values(dataset, column) if column in fields else values)
        out.append(row)
    return columns, out


# --- files ---------------------------------------------------------------------------------

GARBAGE_LINES = st.one_of(
    st.text(max_size=20).filter(lambda s: "\n" not in s),
    st.sampled_from([
        '{"request_id": "a-1",', "[1, 2]", '"just a string"', "null", "{}", '{"a": 1}{"b": 2}', "{'single': 1}",
        '{"invocation_id": "a-2", "ts": NaN}', "\ufeff{}", "   ", "\r", '{"x": "\\ud800"}',
    ]),
)
STRAY_CSV = st.sampled_from(['a-9,2026-10-05T09:00:00Z,u"1,s,m,1,1', '"unterminated,x', 'x""y,z', '"a"b,c', '",",","'])


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join("" if v is None else str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


@st.composite
def jsonl_bytes(draw, columns: list[str], records: list[dict[str, Any]]) -> bytes:
    lines = [json.dumps(r, allow_nan=True) for r in records]
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(GARBAGE_LINES))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return "".join(line + end for line in lines).encode("utf-8", errors="surrogatepass")


@st.composite
def csv_bytes(draw, columns: list[str], records: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    header = list(columns)
    if header and draw(st.integers(0, 9)) == 0:
        header.append(header[0])  # a duplicate header name
    writer.writerow(header)
    for record in records:
        cells = [as_text(record.get(c)) for c in columns]
        ragged = draw(st.integers(0, 7))
        if ragged == 0 and cells:
            cells = cells[:-1]
        elif ragged == 1:
            cells = cells + ["surplus"]
        writer.writerow(cells)
    text = out.getvalue()
    if draw(st.integers(0, 4)) == 0:
        lines = text.split("\n")
        lines.insert(draw(st.integers(1, max(len(lines) - 1, 1))), draw(STRAY_CSV))
        text = "\n".join(lines)
    return text.encode("utf-8", errors="surrogatepass")


@st.composite
def parquet_bytes(draw, columns: list[str], records: list[dict[str, Any]]) -> bytes:
    def strings(column: str) -> pa.Array:
        return pa.array([None if r.get(column) is None else as_text(r.get(column)) for r in records], pa.string())

    arrays = {}
    for column in columns:
        try:  # the types pyarrow infers (ints, floats, lists, structs), else text
            arrays[column] = pa.array([r.get(column) for r in records])
            if pa.types.is_null(arrays[column].type) and draw(st.booleans()):
                arrays[column] = strings(column)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError):
            arrays[column] = strings(column)
    if not arrays:
        arrays = {"nothing": pa.array([None] * len(records), pa.string())}
    sink = io.BytesIO()
    try:
        pq.write_table(pa.table(arrays), sink)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. an empty struct, which Parquet cannot hold
        sink = io.BytesIO()
        pq.write_table(pa.table({column: strings(column) for column in arrays}), sink)
    return sink.getvalue()


ENCODERS = {"jsonl": jsonl_bytes, "csv": csv_bytes, "parquet": parquet_bytes}
DAMAGES = ["none", "none", "none", "gzip", "gzip-truncated", "truncated", "latin-1", "utf-16", "bom", "empty", "binary"]


@st.composite
def damaged(draw, data: bytes, fmt: str) -> tuple[bytes, bool]:
    """(bytes, gzip-compressed) after one drawn damage."""
    damage = draw(st.sampled_from(DAMAGES))
    if damage in ("latin-1", "utf-16", "bom") and fmt == "parquet":
        damage = "none"
    if damage == "gzip":
        return gzip.compress(data), True
    if damage == "gzip-truncated":
        packed = gzip.compress(data)
        return packed[: draw(st.integers(0, max(len(packed) - 1, 0)))], True
    if damage == "truncated":
        return data[: draw(st.integers(0, len(data)))], False
    if damage == "latin-1":
        return data.decode("utf-8", errors="replace").replace("a", "\u00e4", 1).encode("latin-1", errors="replace"), False
    if damage == "utf-16":
        return data.decode("utf-8", errors="replace").encode("utf-16"), False
    if damage == "bom":
        return b"\xef\xbb\xbf" + data, False
    if damage == "empty":
        return b"", False
    if damage == "binary":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:], False
    return data, False


@st.composite
def dataset_files(draw, dataset: str) -> dict[str, bytes]:
    """Relative path -> bytes for one dataset: one file `DATASET.ext`, or a folder of 0-2 files."""
    as_folder = draw(st.integers(0, 3)) == 0
    files = {f"{dataset}/": b""} if as_folder else {}  # the folder itself, even when empty
    for i in range(draw(st.integers(0, 2)) if as_folder else 1):
        fmt = draw(st.sampled_from(list(ENCODERS)))
        columns, records = draw(rows(dataset))
        data, compressed = draw(damaged(draw(ENCODERS[fmt](columns, records)), fmt))
        name = f"{dataset}/part-{i}.{fmt}" if as_folder else f"{dataset}.{fmt}"
        files[name + (".gz" if compressed else "")] = data
    if as_folder and draw(st.integers(0, 5)) == 0 and len(files) > 1:
        first = list(files)[1]
        files[first.replace("part-0", "copy-of-0")] = files[first]  # the same content twice: one is skipped
    return files


@st.composite
def input_folders(draw, *, allow_missing: bool = True) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for spec in DATASETS:
        absent = draw(st.integers(0, 19)) == 0 if (spec.required and allow_missing) else (
            not spec.required and draw(st.booleans()))
        if not absent:
            files |= draw(dataset_files(spec.name))
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# --- properties ----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def models_imported(fast_settings: Settings) -> None:
    """The run's model libraries imported before any example is drawn: a run imports them on a
    background thread (this module's, or an earlier test's still going), and importing
    scikit-learn's ensemble or pyod changes the `random` module's state, which hypothesis sees
    change while it draws (HypothesisDeprecationWarning). Imported here, they are imported once."""
    preload_model_libraries(fast_settings)


def documented_reasons() -> list[str]:
    """The reason prefixes the loader documents (its module docstring), e.g. 'not an integer: '."""
    block = load_module.__doc__.split("Reasons")[1].split("Positions")[0]
    prefixes = []
    for line in block.splitlines()[1:]:
        match = re.match(r" {4}(\S.*?)(?:\s{2,}|$)", line)
        if match:
            prefixes += [alternative.split("<")[0] for alternative in match.group(1).split(" | ")]
    return prefixes


REASONS = documented_reasons()
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md")))


def is_documented(reason: str) -> bool:
    """A reason the loader's docstring lists, or one a doc page spells out ('reason: ...')."""
    head = reason.split(":")[0]
    return any(reason.startswith(prefix) for prefix in REASONS) or (":" in reason and f"`{head}:" in DOCS)


def load(con: duckdb.DuckDBPyConnection, input_dir: Path, run_id: str):
    return load_inputs(con, input_dir, run_id, max_future_skew=SKEW, now=NOW, default_prices=DEFAULT_PRICES, key=TEST_KEY)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchall()[0][0]


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    names = [*SPECS, "rejected_rows", "loaded_files"]
    return {name: scalar(con, f"SELECT count(*) FROM {name}") for name in names}


def assert_nothing_lost(con: duckdb.DuckDBPyConnection, summary, run_id: str) -> None:
    for name, d in summary.datasets.items():
        spec = SPECS[name]
        assert d.rows_loaded + d.rows_rejected == d.rows_given, name
        assert scalar(con, f"SELECT count(*) FROM {name}") == d.rows_loaded, name
        assert scalar(con, "SELECT count(*) FROM rejected_rows WHERE dataset = ?", [name]) == d.rows_rejected, name
        # loaded ids are unique and not blank
        assert scalar(con, f"SELECT count(*) - count(DISTINCT {spec.id_field}) FROM {name}") == 0, name
        assert scalar(con, f"SELECT count(*) FROM {name} WHERE trim({spec.id_field}) = ''") == 0, name
        # every position of every new file: loaded or rejected, exactly once
        files = con.execute(
            "SELECT file_id, path, rows_given FROM loaded_files WHERE run_id = ? AND dataset = ?", [run_id, name]
        ).fetchall()
        for file_id, path, rows_given in files:
            loaded = [p for (p,) in con.execute(f"SELECT position FROM {name} WHERE file_id = ?", [file_id]).fetchall()]
            rejected = [p for (p,) in con.execute(
                "SELECT position FROM rejected_rows WHERE dataset = ? AND source_file = ?", [name, path]).fetchall()]
            positions = sorted(loaded + rejected)
            whole_file = rows_given == 1 and positions == [0] and not loaded
            assert whole_file or positions == list(range(1, rows_given + 1)), (name, path, positions, rows_given)

    reasons = [r for (r,) in con.sql("SELECT DISTINCT reason FROM rejected_rows").fetchall()]
    for reason in reasons:
        assert reason and reason.strip() and "\n" not in reason, repr(reason)
        assert is_documented(reason), f"undocumented reason {reason!r}"
    # what the raw tables promise beyond NOT NULL
    limit = NOW.replace(tzinfo=None) + SKEW
    for name in ("token_usage", "invocations"):
        assert scalar(con, f"SELECT count(*) FROM {name} WHERE ts > ?", [limit]) == 0
    assert scalar(con, "SELECT count(*) FROM deployments WHERE deployed_at > ? OR status NOT IN "
                       "('success', 'failure', 'rolled_back')", [limit]) == 0
    assert scalar(con, "SELECT count(*) FROM token_usage WHERE least(input_tokens, output_tokens, cache_read_tokens, "
                       "cache_write_tokens) < 0 OR greatest(input_tokens, output_tokens, cache_read_tokens, "
                       f"cache_write_tokens) > {load_module.COUNT_MAX}") == 0


def check_folder(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        input_dir = write_folder(Path(tmp) / "in", files)
        with connect() as con:
            try:
                summary = load(con, input_dir, "run-1")
            except MissingDatasetError as error:
                present = {name.split("/")[0].split(".")[0] for name in files}
                missing = [name for name in REQUIRED if name not in present]
                assert missing and all(name in str(error) for name in missing)
                return
            assert_nothing_lost(con, summary, "run-1")
            before = table_counts(con)

            rerun = load(con, input_dir, "run-2")
            assert all(d.rows_given == 0 and d.files_loaded == 0 for d in rerun.datasets.values())
            assert table_counts(con) == before


@PROPERTY_SETTINGS
@given(input_folders())
def test_any_input_folder_loads_or_rejects_every_row_and_reruns_add_nothing(files: dict[str, bytes]) -> None:
    check_folder(files)


@settings(PROPERTY_SETTINGS, max_examples=15)
@given(st.data())
def test_one_damaged_dataset_among_good_ones(data: st.DataObject) -> None:
    """Every dataset valid but one, drawn and damaged: the damage stays in that dataset."""
    target = data.draw(st.sampled_from([spec.name for spec in DATASETS]))
    files = {name: text.encode() for name, text in GOOD_FILES.items()}
    files = {name: blob for name, blob in files.items() if not name.startswith(target)}
    files |= data.draw(dataset_files(target))
    check_folder(files)


# a minimal valid folder (the loader's own example rows)
GOOD_FILES = {
    "token_usage.csv": "request_id,ts,user_id,session_id,model,input_tokens,output_tokens\n"
                       "r-0,2026-10-05T09:00:00Z,u0,s-0,sonnet-4.5,1,1\n",
    "invocations.jsonl": '{"invocation_id": "i-0", "ts": "2026-10-05T09:00:00Z", "user_id": "u0", "session_id": "s-0"}\n',
    "changes.csv": "change_id,repo\npr-0,a/b\n",
    "deployments.jsonl": '{"deployment_id": "d-0", "repo": "a/b", "deployed_at": "2026-10-05T10:00:00Z", "status": "success"}\n',
}


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("token_usage.csv", b"", "empty file"),
        ("token_usage.csv", b" \r\n\n", "empty file"),
        ("token_usage.jsonl.zst", b"(\xb5/\xfd", "unreadable file: truncated zstd"),  # a zstd frame cut after its magic number
        ("token_usage/report.xlsx", b"PK\x03\x04", "unknown format: report.xlsx (this dataset reads "),
        ("token_usage.csv.gz", gzip.compress(GOOD_FILES["token_usage.csv"].encode())[:20], "unreadable file: truncated gzip"),
        ("token_usage.csv", GOOD_FILES["token_usage.csv"].encode("utf-16"), "unreadable file: invalid UTF-8"),
        ("token_usage.jsonl", '{"request_id": "r-1", "user_id": "z\u00fcrich"}\n'.encode("latin-1"), "unreadable file: invalid UTF-8"),
        ("token_usage.parquet", b"PAR1 not really", "unreadable file: "),
        ("token_usage.jsonl", b'{"request_id": "r-1", "input_tokens": 99999999999999999999999}\n', "missing required field: ts"),
        ("token_usage.csv", b"request_id,ts,user_id,session_id,model,input_tokens,output_tokens\n"
                            b"r-1,2026-10-05T09:00:00Z,u,s,m,18446744073709551616,1\n", "out of range: input_tokens"),
        ("token_usage.csv", b"request_id,ts,user_id,session_id,model,input_tokens,output_tokens\n"
                            b"r-1,2026-10-05T09:00:00Z,u,s,m,1000000000001,1\n", "out of range: input_tokens"),
        ("token_usage.csv", b"request_id,ts,user_id,session_id,model,input_tokens,output_tokens,cost_usd\n"
                            b"r-1,2026-10-05T09:00:00Z,u,s,m,1,1,1e308\n", "out of range: cost_usd"),
        ("token_usage.csv", b"\x00request_id,ts,user_id,session_id,model,input_tokens,output_tokens\n"
                            b"r-1,2026-10-05T09:00:00Z,u,s,m,1,1\n", "missing required field: request_id"),
        ("token_usage.csv", b"request_id,ts,user_id,session_id,model,input_tokens,output_tokens,Extra,extra\n"
                            b"r-1,2026-10-05T09:00:00Z,u,s,m,-1,1,a,b\n", "negative value: input_tokens"),
    ],
)
def test_named_damage_is_one_reason(name: str, data: bytes, reason: str | None, tmp_path: Path) -> None:
    """A few damages spelled out, with the reason an operator reads."""
    files = {k: v.encode() for k, v in GOOD_FILES.items() if not k.startswith("token_usage")} | {name: data}
    input_dir = write_folder(tmp_path / "in", files)
    with connect() as con:
        summary = load(con, input_dir, "run-1")
        assert_nothing_lost(con, summary, "run-1")
        got = [r for (r,) in con.sql("SELECT reason FROM rejected_rows WHERE dataset = 'token_usage'").fetchall()]
    if reason is None:
        assert got == [] and summary.datasets["token_usage"].rows_given == 0
    else:
        assert len(got) == 1 and got[0].startswith(reason), got


@pytest.mark.slow
@settings(PROPERTY_SETTINGS, max_examples=4)
@given(files=input_folders(allow_missing=False))
def test_whole_run_survives_bad_input(files: dict[str, bytes], fast_settings: Settings) -> None:
    """The whole run (features, scores, flags, publish) on bad input completes, with the loader's counts.
    (With allow_empty: by default a run whose required dataset loaded nothing stops after its load,
    tests/pipeline/test_cli.py.)"""
    with tempfile.TemporaryDirectory() as tmp:
        input_dir = write_folder(Path(tmp) / "in", files)
        db = Path(tmp) / "out" / "g.duckdb"
        result = run_local(input_dir, db, fast_settings, allow_empty=True)
        again = run_local(input_dir, db, fast_settings, allow_empty=True)
        with duckdb.connect(str(db), read_only=True) as con:
            given = sum(d.rows_given for d in result.load.datasets.values())
            assert con.sql("SELECT rows_given, rows_loaded + rows_rejected FROM runs ORDER BY started_at").fetchall() == [
                (given, given), (0, 0)]
            assert con.sql("SELECT count(*) FROM rejected_rows").fetchall()[0][0] == sum(
                d.rows_rejected for d in result.load.datasets.values())
        assert again.detect == result.detect

