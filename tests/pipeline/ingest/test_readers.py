"""Readers: finding a dataset's files and turning each into positioned rows."""
from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import numpy as np
import pytest

from pipeline.ingest import readers
from pipeline.ingest.readers import InputFile, find_dataset_files, split_csv_records

FIELDS = ("user_id", "team", "tags")
LISTS = frozenset({"tags"})


def read(con: duckdb.DuckDBPyConnection, path: Path, redact: frozenset[str] = frozenset()) -> readers.FileRows:
    kind = readers.input_kind(path)
    assert kind is not None
    return readers.read_file(con, InputFile(path, *kind), view_name="src", list_fields=LISTS, json_fields=FIELDS, redact=redact)


def rows(con: duckdb.DuckDBPyConnection, file_rows: readers.FileRows, columns: str) -> list[tuple]:
    assert file_rows.relation is not None
    return con.sql(f"SELECT {columns} FROM {file_rows.relation} ORDER BY __position").fetchall()


def rejects(file_rows: readers.FileRows) -> list[tuple]:
    return list(zip(*file_rows.rejects.to_pydict().values()))


# --- finding files ---------------------------------------------------------------------


def test_find_dataset_files(tmp_path: Path) -> None:
    for name in ["people.csv.gz", "people/b.jsonl", "people/a/z.parquet", "people/.hidden.csv", "people/notes.md",
                 "people/c.ndjson.zst", "people.xlsx", "people_old.csv", "labels/people.csv", "README.md",
                 "token_usage.ndjson"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    found = find_dataset_files(tmp_path, "people")
    assert found is not None
    assert [(str(f.path.relative_to(tmp_path)), f.format, f.compressed, f.codec) for f in found] == [
        ("people.csv.gz", "csv", True, "gzip"),
        ("people.xlsx", "unknown", False, None),  # recorded by the loader as an unknown format
        ("people/a/z.parquet", "parquet", False, None),
        ("people/b.jsonl", "jsonl", False, None),
        ("people/c.ndjson.zst", "jsonl", True, "zstd"),
        ("people/notes.md", "unknown", False, None),
    ]
    assert [f.format for f in find_dataset_files(tmp_path, "token_usage") or []] == ["jsonl"]
    assert find_dataset_files(tmp_path, "changes") is None


def test_an_empty_folder_is_an_entry_without_files(tmp_path: Path) -> None:
    (tmp_path / "changes").mkdir()
    assert find_dataset_files(tmp_path, "changes") == []


# --- CSV -------------------------------------------------------------------------------


def test_split_csv_records_follows_quotes() -> None:
    data = b'a,b\n"x\ny",1\n"say ""hi""",2\r\n\nbad"quote,3\nlast,4'
    records = split_csv_records(data)
    texts = [data[s:e] for s, e in zip(records.starts, records.ends)]
    assert texts == [b"a,b", b'"x\ny",1', b'"say ""hi""",2', b"", b'bad"quote,3\nlast,4']
    assert records.malformed.tolist() == [False, False, False, False, True]  # the stray quote runs to the end
    assert records.complete.tolist() == [True, True, True, True, False]
    assert readers.csv_field_counts(data, records).tolist() == [2, 2, 2, 1, 1]  # commas after the stray quote are quoted


def test_split_csv_records_flags_text_after_a_closing_quote() -> None:
    data = b'"ab"c,1\n"ok",2\n'
    assert split_csv_records(data).malformed.tolist() == [True, False, False]


def test_csv_positions_skip_header_and_blank_lines(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b'\xef\xbb\xbfuser_id,team,extra\n\na,t1,x\nb,t2\n\n"c","t,3",y\nd,t4,z,w\n')
    result = read(con, path)
    assert rows(con, result, "__position, user_id, team, extra") == [(1, "a", "t1", "x"), (3, "c", "t,3", "y")]
    assert rejects(result) == [(2, "b,t2", "malformed CSV record"), (4, "d,t4,z,w", "malformed CSV record")]
    assert result.rows_given == 4
    assert result.columns == {"user_id": "VARCHAR", "team": "VARCHAR", "extra": "VARCHAR"}


def test_csv_duplicate_header_names_keep_the_first(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("user_id,user_id,\na,b,c\n")
    result = read(con, path)
    assert list(result.columns) == ["user_id", "user_id_2", "column_3"]
    assert rows(con, result, "user_id") == [("a",)]


def test_malformed_csv_record_with_prompt_text_is_withheld(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "invocations.csv"
    path.write_text('invocation_id,prompt_text\ni-1,"secret words\n')
    result = read(con, path, redact=frozenset({"prompt_text"}))
    [(position, raw, reason)] = rejects(result)
    assert (position, reason) == (1, "malformed CSV record")
    assert "secret" not in raw and "withheld" in raw


def test_csv_invalid_utf8_rejects_the_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b"user_id\na\n\xff\xfe\n")
    assert rejects(read(con, path)) == [(0, None, "unreadable file: invalid UTF-8")]


def test_csv_truncated_gzip_keeps_complete_records(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    text = "user_id,team\n" + "".join(f"user-{i},team-{i}\n" for i in range(3000))
    packed = gzip.compress(text.encode())
    path = tmp_path / "people.csv.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    result = read(con, path)
    kept = rows(con, result, "__position, user_id")
    assert kept == [(i + 1, f"user-{i}") for i in range(len(kept))]
    assert 0 < len(kept) < 3000
    assert rejects(result) == [(len(kept) + 1, None, "unreadable file: truncated gzip")]
    assert result.rows_given == len(kept) + 1


# --- JSON lines ------------------------------------------------------------------------


def test_json_lines_positions_and_record_rejects(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_text(
        '{"user_id": "a", "team": 7, "tags": ["x", 1]}\r\n'
        "\n"
        '{"user_id": "b", "tags": "p;q"}\n'
        "{oops\n"
        "  \t \n"
        "[1, 2]\n"
        '{"user_id": "c", "other": true}'  # no final newline
    )
    result = read(con, path)
    assert rows(con, result, "__position, user_id, team, CAST(tags AS VARCHAR)") == [
        (1, "a", "7", '["x",1]'), (2, "b", None, '"p;q"'), (5, "c", None, None),
    ]
    assert rejects(result) == [(3, "{oops", "malformed JSON"), (4, "[1, 2]", "not a JSON object")]
    assert result.rows_given == 5
    assert result.columns == {"user_id": "VARCHAR", "team": "VARCHAR", "tags": "JSON"}


def test_json_lines_gzip_members_are_concatenated(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"user_id": "a"}\n') + gzip.compress(b'{"user_id": "b"}\n'))
    assert rows(con, read(con, path), "user_id") == [("a",), ("b",)]


def test_json_lines_invalid_utf8_rejects_the_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(b'{"user_id": "a"}\n{"user_id": "\xc3"}\n')
    result = read(con, path)
    assert result.relation is None
    assert rejects(result) == [(0, None, "unreadable file: invalid UTF-8")]


# --- Parquet ---------------------------------------------------------------------------


def test_parquet_keeps_types_and_numbers_rows(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.parquet"
    con.execute(f"COPY (SELECT range AS user_id, ['t'] AS tags FROM range(3)) TO '{path}' (FORMAT parquet)")
    result = read(con, path)
    assert result.columns == {"user_id": "BIGINT", "tags": "VARCHAR[]"}
    assert rows(con, result, "__position, user_id") == [(1, 0), (2, 1), (3, 2)]
    assert con.sql(f"SELECT {result.raw_sql} FROM {result.relation} WHERE __position = 2").fetchall() == [
        ('{"user_id":1,"tags":["t"]}',)
    ]


def test_gzipped_parquet(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    plain = tmp_path / "plain.parquet"
    con.execute(f"COPY (SELECT 'a' AS user_id UNION ALL SELECT 'b') TO '{plain}' (FORMAT parquet)")
    path = tmp_path / "people.parquet.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    result = read(con, path)
    assert rows(con, result, "__position, user_id") == [(1, "a"), (2, "b")]
    result.release()


def test_corrupt_parquet_is_unreadable(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.parquet"
    path.write_bytes(b"PAR1" + bytes(range(200)) + b"PAR1")
    result = read(con, path)
    assert result.relation is None and result.rows_given == 1
    [(position, raw, reason)] = rejects(result)
    assert (position, raw) == (0, None)
    assert reason.startswith("unreadable file: ") and str(tmp_path) not in reason


# --- helpers ---------------------------------------------------------------------------


def test_short_error_drops_quoted_values() -> None:
    error = ValueError('Invalid Input Error: value "my secret prompt" is not valid UTF8!\nmore lines')
    assert readers.short_error(error) == "value … is not valid UTF8!"


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"abc")
    assert readers.file_digest(path) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3)


@pytest.mark.parametrize("size", [0, 1, 5])
def test_lines_array_splits_on_newlines(size: int) -> None:
    data = "".join(f"line {i}\n" for i in range(size)).encode()
    assert readers.lines_array(data).to_pylist() == [f"line {i}\n" for i in range(size)]
    assert readers.line_count(data) == size
    assert np.array_equal(readers.lines_array(data + b"tail").to_pylist()[-1:], ["tail"])


def test_a_gz_name_on_plain_bytes_is_unreadable(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl.gz"
    path.write_bytes(b'{"user_id": "a"}\n')
    [(position, raw, reason)] = rejects(read(con, path))
    assert (position, raw) == (0, None)
    assert reason.startswith("unreadable file: corrupt gzip")
