"""Identity claims: an identity (a person's user_id or alias, case-insensitive) belongs to one person.

For a dataset that `claims_identities` (people): a row whose id or alias is already another
person's, loaded or earlier in this load, is rejected; implied rows a source offers (LiteLLM's
people) are offered only for identities nobody claimed yet.
"""
from __future__ import annotations

import duckdb

from pipeline.ingest.checks import CHECKED
from pipeline.ingest.contract import DatasetSpec


def claimed_keys_sql(spec: DatasetSpec) -> str:
    """SQL: the lowercased ids already claimed, loaded or staged (and, for people, their aliases)."""
    key = spec.id_field
    aliases = staged_aliases = ""
    for side in spec.side_lists if spec.claims_identities else ():
        aliases += f"UNION ALL SELECT lower(trim({side.column})) FROM main.{side.table}"
        staged_aliases += f"UNION ALL SELECT lower(trim(unnest({side.field}))) FROM {CHECKED} WHERE __reason IS NULL"
    return (
        f"SELECT k FROM (SELECT lower(trim({key})) AS k FROM main.{spec.name} {aliases} "
        f"UNION ALL SELECT lower(trim({key})) FROM {CHECKED} WHERE __reason IS NULL {staged_aliases}) WHERE k IS NOT NULL"
    )


def mark_claimed_identities(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """A valid staged row whose id or an alias (case-insensitive) is already another person's id or
    alias, loaded or earlier in this batch, is rejected: an identity belongs to one person."""
    key = spec.id_field
    (side,) = spec.side_lists
    con.execute(
        f"""
        UPDATE {CHECKED} SET __reason = 'identity already claimed: ' || left(c.identity, 80)
        FROM (
            WITH ids AS (
                SELECT rid, f, p, owner, identity, lower(trim(identity)) AS key
                FROM (SELECT rowid AS rid, __file_id AS f, __position AS p, {key} AS owner,
                             unnest(list_distinct(list_prepend({key}, coalesce({side.field}, [])))) AS identity
                      FROM {CHECKED} WHERE __reason IS NULL)
                WHERE trim(identity) <> ''
            ),
            loaded AS (
                SELECT lower(trim({key})) AS key, {key} AS owner FROM main.{spec.name}
                UNION ALL SELECT lower(trim({side.column})), {key} FROM main.{side.table}
            )
            SELECT rid, min(identity) AS identity FROM ids
            WHERE EXISTS (SELECT 1 FROM loaded l WHERE l.key = ids.key AND l.owner <> ids.owner)
               OR EXISTS (SELECT 1 FROM ids j WHERE j.key = ids.key AND j.owner <> ids.owner
                                                AND (j.f < ids.f OR (j.f = ids.f AND j.p < ids.p)))
            GROUP BY rid
        ) c
        WHERE {CHECKED}.rowid = c.rid
        """
    )
