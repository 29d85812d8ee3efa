"""Runs the README's example queries over a `pipetape runs export-metrics` file with DuckDB (the
official PyPI package) and prints their results as JSON, for tests/e2e/history.rs.

Usage: duckdb_queries.py FILE.parquet
"""
import json
import sys

import duckdb

FILE = sys.argv[1]

# The three queries of the README's "Across thousands of runs" section, verbatim but for the
# file name.
QUERIES = {
    "schema": "DESCRIBE SELECT * FROM 'metrics.parquet'",
    "gate_p50_p95_per_week": """
SELECT metric, date_trunc('week', started) AS week,
       quantile_cont(value, 0.5) AS p50, quantile_cont(value, 0.95) AS p95, count(*) AS runs
FROM 'metrics.parquet'
WHERE family = 'gate'
GROUP BY metric, week
ORDER BY metric, week""",
    "flakiest_steps": """
WITH s AS (
  SELECT metric, bad, attempts,
         lag(bad) OVER (PARTITION BY pipeline, metric ORDER BY started) AS prev_bad
  FROM 'metrics.parquet'
  WHERE family = 'step')
SELECT metric, count(*) AS runs,
       count(*) FILTER (WHERE bad <> prev_bad) AS flips,
       count(*) FILTER (WHERE NOT bad AND attempts > 1) AS retried
FROM s
GROUP BY metric
HAVING flips + retried > 0
ORDER BY flips + retried DESC, metric
LIMIT 10""",
    "image_changed_and_readiness_regressed": """
WITH r AS (
  SELECT run_id, started, metric, value, bad, images,
         lag(images) OVER w AS prev_images, lag(value) OVER w AS prev_value,
         lag(bad) OVER w AS prev_bad
  FROM 'metrics.parquet'
  WHERE family = 'ready'
  WINDOW w AS (PARTITION BY pipeline, metric ORDER BY started))
SELECT run_id, count(*) AS regressed, min(started) AS started
FROM r
WHERE prev_images IS NOT NULL AND images IS DISTINCT FROM prev_images
  AND ((bad AND NOT prev_bad) OR value > 1.5 * prev_value + 10)
GROUP BY run_id
ORDER BY started""",
}

out = {}
con = duckdb.connect()
for name, sql in QUERIES.items():
    rel = con.sql(sql.replace("'metrics.parquet'", "'" + FILE.replace("'", "''") + "'"))
    cols = rel.columns
    out[name] = [dict(zip(cols, [str(v) if not isinstance(v, (int, float, bool, type(None))) else v for v in row])) for row in rel.fetchall()]
print(json.dumps(out))
