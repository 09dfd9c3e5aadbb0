"""Runs every `-- stagecoach: NAME` SQL block of docs/analytics.md with
DuckDB in the current directory (where the Parquet export is) and prints
{NAME: {"columns": [...], "rows": [[...], ...]}} as JSON, plus the export's
column types under "types"."""
import json
import pathlib
import re
import sys

import duckdb

doc = pathlib.Path(sys.argv[1]).read_text()
con = duckdb.connect()
out = {}
for block in re.findall(r"```sql\n(.*?)```", doc, re.S):
    first = block.splitlines()[0]
    if not first.startswith("-- stagecoach: "):
        # set-up statements (SET TimeZone …) run as they are
        con.execute(block)
        continue
    name = first.removeprefix("-- stagecoach: ").strip()
    cur = con.execute(block)
    out[name] = {
        "columns": [d[0] for d in cur.description],
        "rows": [list(r) for r in cur.fetchall()],
    }
out["types"] = {
    table: {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM '{table}.parquet'").fetchall()}
    for table in ["prospects", "activities", "transitions", "stages"]
}
out["counts"] = {
    table: con.execute(f"SELECT count(*) FROM '{table}.parquet'").fetchone()[0]
    for table in ["prospects", "activities", "transitions"]
}
won = con.execute(
    "SELECT strftime(closed_at, '%Y-%m') AS month, sum(CAST(fields->>'amount' AS DOUBLE)), count(*) "
    "FROM 'prospects.parquet' WHERE status = 'won' GROUP BY month ORDER BY month"
).fetchall()
out["won_by_month"] = [list(r) for r in won]
print(json.dumps(out, default=str))
