-- alb_endpoints: requests, 5xx/4xx and target latency per endpoint (method + path template) of a window.
-- params: start timestamp
-- params: end timestamp
-- params: table identifier alb_logs
-- dialect notes: DuckDB over the frame of forensics.sources.alb_logs (registered as {table}): columns
--   timestamp (TIMESTAMPTZ), request_verb, path, elb_status_code, target_status_code,
--   target_processing_time (NULL where ALB wrote -1). Path segments masked with list_transform and
--   DuckDB 2's `lambda s: ...` (the `s ->` arrow is refused since 2.0; Athena keeps `s ->`)
--   (RE2 has no look-around); the rule is forensics.analysis.alb.path_template's. Percentiles:
--   quantile_cont (exact, interpolated like pandas). Athena: see alb_endpoints.athena.sql.
WITH req AS (
  SELECT coalesce(request_verb, '-') || ' ' || coalesce(array_to_string(list_transform(string_split(path, '/'), lambda s:
           CASE
             WHEN regexp_full_match(s, '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}') THEN '{uuid}'
             WHEN regexp_full_match(s, '[0-9]+') THEN '{n}'
             WHEN regexp_full_match(s, '[A-Za-z0-9_\-]{16,}') AND regexp_matches(s, '[0-9]') THEN '{id}'
             WHEN regexp_full_match(s, '[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9]{1,5}')
                  AND regexp_matches(regexp_extract(s, '^([A-Za-z0-9_\-]+)\.', 1), '[0-9]')
               THEN '{id}' || regexp_extract(s, '(\.[A-Za-z0-9]{1,5})$', 1)
             ELSE s
           END), '/'), '-') AS endpoint,
         elb_status_code, target_status_code, target_processing_time
  FROM {table}
  WHERE "timestamp" >= {start} AND "timestamp" < {end}
)
SELECT endpoint,
       count(*) AS requests,
       count(*) FILTER (WHERE elb_status_code >= 500) AS errors_5xx,
       count(*) FILTER (WHERE elb_status_code >= 500 AND target_status_code IS NULL) AS elb_5xx,
       count(*) FILTER (WHERE target_status_code >= 500) AS target_5xx,
       count(*) FILTER (WHERE elb_status_code BETWEEN 400 AND 499) AS errors_4xx,
       quantile_cont(target_processing_time, 0.50) AS p50,
       quantile_cont(target_processing_time, 0.95) AS p95,
       quantile_cont(target_processing_time, 0.99) AS p99
FROM req
GROUP BY endpoint
ORDER BY errors_5xx DESC, requests DESC, endpoint
