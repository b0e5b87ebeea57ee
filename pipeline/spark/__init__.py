"""The Spark engine: the same stages as DuckDB's, for traces past one machine.

- `session`: a SparkSession from `--spark-master` / `--spark-conf` (pyspark is the optional
  `servetrace[spark]` extra; Spark needs a Java 17+ runtime).
- `transpile`: the files in `sql/` are the one source of truth; each is parsed as DuckDB SQL by
  sqlglot and written out as Spark SQL, with the run's variables bound as literals, the shared
  macros expanded and the seeded hash uniforms drawn with Spark's own 64-bit hash.
- `connection`: the few calls the stages make on a DuckDB connection (`sql(...).pl()`,
  `run_sql`, `register`), answered by Spark, so the stages' Python runs unchanged on either engine.
- `gaps`: the gap statistics as window functions over time windows, distributed.
"""
