-- alb_endpoints: requests, 5xx/4xx and target latency per endpoint (method + path template) of a window.
-- params: start timestamp
-- params: end timestamp
-- params: table identifier alb_logs
-- dialect notes: Athena (Trino) over the table AWS documents for ALB access logs ("Querying Application
--   Load Balancer logs": columns time string, request_verb, request_url, elb_status_code int,
--   target_status_code string, target_processing_time double with -1 kept). So: the time is parsed
--   from text, -1 is filtered out of the percentiles, the path comes from url_extract_path(request_url),
--   target_status_code is cast. Path masking: transform/lambda over split() (the same rule as
--   alb_endpoints.duckdb.sql). Percentiles: approx_percentile (approximate; DuckDB's are exact).
WITH req AS (
  SELECT coalesce(request_verb, '-') || ' ' || coalesce(array_join(transform(split(url_extract_path(request_url), '/'), s ->
           CASE
             WHEN regexp_like(s, '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$') THEN '{uuid}'
             WHEN regexp_like(s, '^[0-9]+$') THEN '{n}'
             WHEN regexp_like(s, '^[A-Za-z0-9_\-]{16,}$') AND regexp_like(s, '[0-9]') THEN '{id}'
             WHEN regexp_like(s, '^[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9]{1,5}$')
                  AND regexp_like(regexp_extract(s, '^([A-Za-z0-9_\-]+)\.', 1), '[0-9]')
               THEN '{id}' || regexp_extract(s, '(\.[A-Za-z0-9]{1,5})$', 1)
             ELSE s
           END), '/'), '-') AS endpoint,
         elb_status_code, try_cast(target_status_code AS integer) AS target_status,
         nullif(target_processing_time, -1) AS target_processing_time
  FROM {table}
  WHERE from_iso8601_timestamp(time) >= {start} AND from_iso8601_timestamp(time) < {end}
)
SELECT endpoint,
       count(*) AS requests,
       count_if(elb_status_code >= 500) AS errors_5xx,
       count_if(elb_status_code >= 500 AND target_status IS NULL) AS elb_5xx,
       count_if(target_status >= 500) AS target_5xx,
       count_if(elb_status_code BETWEEN 400 AND 499) AS errors_4xx,
       approx_percentile(target_processing_time, 0.50) AS p50,
       approx_percentile(target_processing_time, 0.95) AS p95,
       approx_percentile(target_processing_time, 0.99) AS p99
FROM req
GROUP BY 1
ORDER BY errors_5xx DESC, requests DESC, endpoint
