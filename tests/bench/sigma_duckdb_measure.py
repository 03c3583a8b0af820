"""Measure pySigma's DuckDB backend over a trail (docs/security-detection.md). Not a test: run it by hand in a
side environment, since pysigma-backend-duckdb 0.1.4 requires pySigma < 2:

    python -m venv /tmp/sigduck && /tmp/sigduck/bin/pip install pysigma-backend-duckdb==0.1.4 duckdb pandas
    /tmp/sigduck/bin/python tests/bench/sigma_duckdb_measure.py lib/forensics/detection/rules/sigmahq TRAIL_DIR

It prints load and query times, the queries that failed and the hits per rule.
"""
import glob, json, sys, time
import duckdb
from sigma.collection import SigmaCollection
from sigma_backend_duckdb.backend import DuckDBBackend
rules_dir, trail_dir = sys.argv[1], sys.argv[2]
with open("records.ndjson", "w") as out:
    for path in sorted(glob.glob(trail_dir + "/*.json")):
        for record in json.load(open(path))["Records"]:
            out.write(json.dumps(record) + "\n")
t0 = time.perf_counter()
con = duckdb.connect()
import pandas as pd
flat = pd.json_normalize([json.loads(l) for l in open('records.ndjson')])
flat = flat.astype("string")  # nested values as text, like a flattened log table
con.register("flat", flat)
con.execute("CREATE TABLE logs AS SELECT * FROM flat")
t_load = time.perf_counter() - t0
backend = DuckDBBackend()
ok = err = 0; hits = {}; errors = []
t1 = time.perf_counter()
for path in sorted(glob.glob(rules_dir + '/*.yml')):
    coll = SigmaCollection.from_yaml(open(path).read())
    for rule in coll.rules:
        try:
            qs = backend.convert_rule(rule)
        except Exception as exc:
            errors.append((rule.title, 'convert', str(exc)[:120])); err += 1; continue
        for q in qs:
            try:
                n = con.execute(f"SELECT count(*) FROM ({q})").fetchone()[0]
                ok += 1
                if n: hits[rule.title] = hits.get(rule.title, 0) + n
            except Exception as exc:
                errors.append((rule.title, 'run', str(exc).splitlines()[0][:160])); err += 1
t_eval = time.perf_counter() - t1
print(json.dumps({"load_s": round(t_load, 3), "eval_s": round(t_eval, 3), "queries_ok": ok, "queries_failed": err,
                  "hits": hits, "errors": errors}, indent=1))
