"""Never skip a file silently: unknown formats and empty files are recorded; `.zst` reads like `.gz`."""
from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import zstandard

from pipeline.ingest import readers
from pipeline.ingest.readers import InputFile
from pipeline.storage import connect
from tests.pipeline.conftest import FIXTURES, TOKEN_HEADER, InputDir, rejected, run_load, table

OTEL_LOGS = FIXTURES / "sources" / "claude_code_otel" / "logs.jsonl"
DATASET_READS = ".parquet, .csv, .jsonl, .ndjson, optionally compressed .gz or .zst"
OTEL_READS = ".jsonl, .json, .ndjson, optionally compressed .gz or .zst"
USAGE_ROWS = "".join(f"r-{i},2026-10-05T09:00:00Z,u{i % 3},s-{i % 5},sonnet-4.5,{i},1\n" for i in range(1, 6))
PROMPTS = "".join(
    f'{{"invocation_id": "i-{i}", "ts": "2026-10-05T09:0{i}:00Z", "user_id": "u0", "session_id": "s-0", '
    f'"prompt_text": "prompt number {i}"}}\n' for i in range(1, 4)
) + "not json\n"


def zst(data: str | bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data.encode() if isinstance(data, str) else data)


def loaded_world(tmp_path: Path, files: dict[str, bytes]) -> duckdb.DuckDBPyConnection:
    """A fresh database loaded from the minimal inputs plus `files` (replacing a default of the same dataset)."""
    inputs = InputDir(tmp_path)
    for name, data in files.items():
        target = inputs.write(name, b"")
        target.write_bytes(data)  # as given: InputDir.write would gzip a `.gz` name
    con = connect()
    run_load(con, inputs.path)
    return con


def contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """What a load kept, without file ids and file names."""
    return {
        "token_usage": table(con, "token_usage", "* EXCLUDE (file_id)"),
        "invocations": table(con, "invocations", "* EXCLUDE (file_id)"),
        "rejected_rows": table(con, "rejected_rows", "dataset, position, raw, reason"),
        "loaded_files": table(con, "loaded_files", "dataset, rows_given, rows_loaded, rows_rejected, source"),
    }


# --- unknown formats and empty files ---------------------------------------------------


def test_unknown_formats_in_dataset_folders_and_at_the_top_are_recorded(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("token_usage/2026-10-05.csv", f"{TOKEN_HEADER}\nr-1,2026-10-05T09:00:00Z,u,s,m,1,1\n")
    inputs.write("token_usage/report.xlsx", b"PK\x03\x04 not a table")
    inputs.write("token_usage/old/notes.txt.gz", "gzip of a text")
    inputs.write("token_usage/.DS_Store", b"\x00\x01")  # hidden: not an input file
    inputs.write("people.xlsx", b"PK\x03\x04 people in a spreadsheet")

    summary = run_load(con, inputs.path)

    assert rejected(con) == [  # in path order
        ("people.xlsx", 0, f"unknown format: people.xlsx (this dataset reads {DATASET_READS})"),
        ("notes.txt.gz", 0, f"unknown format: notes.txt.gz (this dataset reads {DATASET_READS})"),
        ("report.xlsx", 0, f"unknown format: report.xlsx (this dataset reads {DATASET_READS})"),
    ]
    files = "loaded_files WHERE dataset IN ('people', 'token_usage')"
    assert table(con, files, "dataset, regexp_extract(path, '[^/]+$'), rows_given, rows_loaded, rows_rejected", "file_id") == [
        ("people", "people.xlsx", 1, 0, 1),
        ("token_usage", "2026-10-05.csv", 1, 1, 0),
        ("token_usage", "notes.txt.gz", 1, 0, 1),
        ("token_usage", "report.xlsx", 1, 0, 1),
    ]
    usage = summary.datasets["token_usage"]
    assert (usage.files_seen, usage.rows_given, usage.rows_loaded, usage.rows_rejected) == (3, 3, 1, 2)
    assert summary.datasets["people"].files_seen == 1


def test_unknown_formats_in_a_source_folder_are_recorded(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    folder = inputs.path / "sources" / "claude_code_otel"
    folder.mkdir(parents=True)
    (folder / "logs.jsonl").write_bytes(OTEL_LOGS.read_bytes())
    (folder / "report.xlsx").write_bytes(b"PK\x03\x04 a spreadsheet")
    (folder / "old").mkdir()
    (folder / "old" / "export.csv.zst").write_bytes(zst("a,b\n1,2\n"))
    (folder / ".hidden.jsonl").write_text("{}\n")  # hidden: not an input file

    summary = run_load(con, inputs.path)

    whole_file = [r for r in rejected(con) if r[1] == 0]
    assert whole_file == [
        ("export.csv.zst", 0, f"unknown format: export.csv.zst (this source reads {OTEL_READS})"),
        ("report.xlsx", 0, f"unknown format: report.xlsx (this source reads {OTEL_READS})"),
    ]
    assert con.sql("SELECT DISTINCT dataset FROM rejected_rows WHERE position = 0").fetchall() == [("token_usage",)]
    source_files = "loaded_files WHERE source = 'claude_code_otel'"
    assert table(con, source_files, "regexp_extract(path, '[^/]+$'), dataset, rows_given, rows_loaded, rows_rejected",
                 "file_id") == [
        ("logs.jsonl", "token_usage", 6, 2, 4),
        ("export.csv.zst", "token_usage", 1, 0, 1),  # every file gets a row per dataset of its source
        ("report.xlsx", "token_usage", 1, 0, 1),
        ("logs.jsonl", "invocations", 3, 3, 0),
        ("export.csv.zst", "invocations", 0, 0, 0),
        ("report.xlsx", "invocations", 0, 0, 0),
    ]
    assert summary.datasets["token_usage"].files_seen == 4  # token_usage.csv and the three source files
    assert ".hidden.jsonl" not in {Path(p).name for p in summary.inputs_seen}


def test_empty_files_are_recorded(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("people.csv", "")
    inputs.write("reviews/blank.jsonl", " \n\t\r\n")
    (inputs.path / "reviews" / "empty.jsonl.zst").write_bytes(zst(""))
    folder = inputs.path / "sources" / "git_log"
    folder.mkdir(parents=True)
    (folder / "main.txt.gz").write_bytes(gzip.compress(b"\n\n"))

    run_load(con, inputs.path)

    assert rejected(con) == [  # in path order
        ("people.csv", 0, "empty file"),
        ("blank.jsonl", 0, "empty file"),
        ("empty.jsonl.zst", 0, "empty file"),
        ("main.txt.gz", 0, "empty file"),
    ]
    assert con.sql("SELECT dataset FROM rejected_rows ORDER BY ALL").fetchall() == [
        ("changes",), ("people",), ("reviews",), ("reviews",),
    ]


def test_a_header_only_csv_is_not_empty(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("people.csv", "user_id,team\n")
    summary = run_load(con, inputs.path)
    assert rejected(con) == []
    assert (summary.datasets["people"].files_loaded, summary.datasets["people"].rows_given) == (1, 0)


# --- zstd ------------------------------------------------------------------------------


def test_zst_contract_files_load_like_plain_ones(tmp_path: Path) -> None:
    usage = f"{TOKEN_HEADER}\n{USAGE_ROWS}r-bad,2026-10-05T09:00:00Z,u,s,m,abc,1\n"
    plain = loaded_world(tmp_path / "plain", {"token_usage.csv": usage.encode(), "invocations.jsonl": PROMPTS.encode()})
    packed = loaded_world(tmp_path / "zst", {"token_usage.csv.zst": zst(usage), "invocations.jsonl.zst": zst(PROMPTS)})

    expected = contents(plain)
    assert [r[0] for r in expected["token_usage"]] == ["r-1", "r-2", "r-3", "r-4", "r-5"]
    assert [r[0] for r in expected["invocations"]] == ["i-1", "i-2", "i-3"]
    assert [(d, p, reason) for d, p, _, reason in expected["rejected_rows"]] == [
        ("invocations", 4, "malformed JSON"), ("token_usage", 6, "not an integer: input_tokens"),
    ]
    assert contents(packed) == expected
    assert sorted(Path(p).name for (p,) in packed.sql("SELECT path FROM loaded_files").fetchall()) == [
        "changes.csv", "deployments.jsonl", "invocations.jsonl.zst", "token_usage.csv.zst",
    ]


def test_zst_source_file_loads_like_a_plain_one(tmp_path: Path) -> None:
    folder = "sources/claude_code_otel"
    plain = loaded_world(tmp_path / "plain", {f"{folder}/logs.jsonl": OTEL_LOGS.read_bytes()})
    packed = loaded_world(tmp_path / "zst", {f"{folder}/logs.jsonl.zst": zst(OTEL_LOGS.read_bytes())})

    expected = contents(plain)
    assert [r[:3] for r in table(plain, "token_usage", "request_id, user_id, input_tokens")] == [
        ("cc-ec16b2021b98fd2afb8ef83c69867c21", "alice@corp.example", 1200),
        ("r-0", "u0", 1),
        ("req_011CU", "0b7c2e4a-aaaa-4bbb-8ccc-000000000002", 900),
    ]
    assert [r[0] for r in expected["invocations"]] == ["cc-dbeb1080aa4915f6a8d4ec3c8c10a2a4", "i-0", "p-0001", "p-0002"]
    assert len(expected["rejected_rows"]) == 4
    assert contents(packed) == expected


def test_a_truncated_zst_keeps_the_rows_before_the_damage(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    rows = "".join(f"r-{i},2026-10-05T09:00:00Z,u,s,m,{i},1\n" for i in range(20000))
    whole = zst(f"{TOKEN_HEADER}\n{rows}")
    (inputs.path / "token_usage.csv").unlink()
    (inputs.path / "token_usage.csv.zst").write_bytes(whole[: len(whole) * 3 // 4])

    summary = run_load(con, inputs.path)

    load = summary.datasets["token_usage"]
    kept = load.rows_loaded
    assert 0 < kept < 20000
    assert table(con, "token_usage", "min(position), max(position), count(*), max(input_tokens)") == [(1, kept, kept, kept - 1)]
    assert rejected(con) == [("token_usage.csv.zst", kept + 1, "unreadable file: truncated zstd")]
    assert (load.rows_given, load.rows_rejected) == (kept + 1, 1)


def test_a_truncated_zst_source_file_keeps_the_lines_before_the_damage(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    line = OTEL_LOGS.read_text().splitlines()[1]  # an api_request record (position 2 of the fixture)
    data = zst("".join(line + "\n" for _ in range(3000)))
    target = inputs.path / "sources" / "claude_code_otel" / "logs.jsonl.zst"
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: len(data) - 40])
    run_load(con, inputs.path)
    assert rejected(con)[-1][2] == "unreadable file: truncated zstd"


def test_zst_readers(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    two_frames = tmp_path / "people.jsonl.zst"
    two_frames.write_bytes(zst('{"user_id": "a"}\n') + zst('{"user_id": "b"}\n'))
    plain = tmp_path / "plain.parquet"
    con.execute(f"COPY (SELECT 'a' AS user_id UNION ALL SELECT 'b') TO '{plain}' (FORMAT parquet)")
    parquet = tmp_path / "people.parquet.zst"
    parquet.write_bytes(zst(plain.read_bytes()))
    for path in (two_frames, parquet):
        kind = readers.input_kind(path)
        assert kind is not None and kind[1]
        result = readers.read_file(con, InputFile(path, *kind), view_name="src", list_fields=frozenset(),
                                   json_fields=("user_id",), redact=frozenset())
        assert con.sql(f"SELECT __position, user_id FROM {result.relation} ORDER BY 1").fetchall() == [(1, "a"), (2, "b")]
        result.release()

    not_zstd = tmp_path / "people.csv.zst"
    not_zstd.write_bytes(b"user_id\na\n")
    result = readers.read_file(con, InputFile(not_zstd, "csv", True), view_name="bad", list_fields=frozenset(),
                               json_fields=(), redact=frozenset())
    [(position, raw, reason)] = list(zip(*result.rejects.to_pydict().values()))
    assert (position, raw, result.rows_given) == (0, None, 1)
    assert reason.startswith("unreadable file: corrupt zstd (")

    assert readers.read_bytes(two_frames) == (b'{"user_id": "a"}\n{"user_id": "b"}\n', None)
    cut = zst('{"user_id": "a"}\n' * 50000)
    assert readers._decompress(cut[: len(cut) // 2], "zstd")[1] == "truncated zstd"


def test_blank_file(tmp_path: Path) -> None:
    cases = {
        "a.csv": b"", "b.csv": b" \n\r\n\t", "c.csv": b"\n x", "d.jsonl.gz": gzip.compress(b"\n") + gzip.compress(b" "),
        "e.jsonl.gz": gzip.compress(b"\n") + gzip.compress(b"{}"), "f.jsonl.zst": zst("  \n"), "g.jsonl.zst": zst("{}"),
        "h.jsonl.zst": zst(" " * 100000)[:-4], "i.jsonl.gz": b"not gzip",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    blank = {name for name in cases if readers.blank_file(tmp_path / name)}
    assert blank == {"a.csv", "b.csv", "d.jsonl.gz", "f.jsonl.zst"}  # a damaged file is not blank: its reader says why
