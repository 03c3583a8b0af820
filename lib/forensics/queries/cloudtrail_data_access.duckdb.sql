-- cloudtrail_data_access: object calls (S3 data events) per principal, bucket and action of a window,
-- with the busiest minute. Bursts against each principal's baseline: forensics.analysis.security.data_access.
-- params: start timestamp
-- params: end timestamp
-- params: table identifier cloudtrail
-- dialect notes: DuckDB over the frame of forensics.sources.cloudtrail_s3 (registered as {table}):
--   principal, bucket, object_key, bytes_out, event_category already extracted from the record.
--   Athena reads the same from the CloudTrail table's useridentity struct and JSON text columns: see
--   cloudtrail_data_access.athena.sql.
WITH ev AS (
  SELECT coalesce(principal, 'unknown') AS principal, coalesce(bucket, '-') AS bucket, event_name,
         object_key, bytes_out, error_code, "timestamp"
  FROM {table}
  WHERE event_category = 'Data' AND "timestamp" >= {start} AND "timestamp" < {end}
),
per_minute AS (
  SELECT principal, bucket, event_name, date_trunc('minute', "timestamp") AS minute, count(*) AS n
  FROM ev GROUP BY ALL
)
SELECT e.principal, e.bucket, e.event_name,
       count(*) AS calls,
       count(DISTINCT e.object_key) AS objects,
       coalesce(sum(e.bytes_out), 0) AS bytes_out,
       count(e.error_code) AS errors,
       min(e."timestamp") AS first_seen,
       max(e."timestamp") AS last_seen,
       (SELECT max(n) FROM per_minute p
         WHERE p.principal = e.principal AND p.bucket = e.bucket AND p.event_name = e.event_name) AS peak_per_minute
FROM ev e
GROUP BY e.principal, e.bucket, e.event_name
ORDER BY calls DESC, e.principal, e.bucket, e.event_name
