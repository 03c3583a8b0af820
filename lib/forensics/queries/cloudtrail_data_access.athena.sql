-- cloudtrail_data_access: object calls (S3 data events) per principal, bucket and action of a window,
-- with the busiest minute. Bursts against each principal's baseline: forensics.analysis.security.data_access.
-- params: start timestamp
-- params: end timestamp
-- params: table identifier cloudtrail_logs
-- dialect notes: Athena (Trino) over the table AWS documents for CloudTrail ("Query AWS CloudTrail
--   logs": eventtime string, useridentity struct, requestparameters / additionaleventdata JSON text,
--   eventcategory string). The principal is useridentity.arn (else the session issuer's, else
--   invokedby), the bucket and key come from requestparameters with json_extract_scalar; eventtime is
--   parsed with from_iso8601_timestamp. Partition projection columns, when the table has them, are best
--   added by the caller's table; this query filters on eventtime only.
WITH ev AS (
  SELECT coalesce(useridentity.arn, useridentity.sessioncontext.sessionissuer.arn, useridentity.invokedby,
                  'unknown') AS principal,
         coalesce(json_extract_scalar(requestparameters, '$.bucketName'), '-') AS bucket,
         eventname AS event_name,
         json_extract_scalar(requestparameters, '$.key') AS object_key,
         try_cast(json_extract_scalar(additionaleventdata, '$.bytesTransferredOut') AS double) AS bytes_out,
         errorcode AS error_code,
         from_iso8601_timestamp(eventtime) AS ts
  FROM {table}
  WHERE eventcategory = 'Data'
    AND from_iso8601_timestamp(eventtime) >= {start} AND from_iso8601_timestamp(eventtime) < {end}
),
per_minute AS (
  SELECT principal, bucket, event_name, max(n) AS peak_per_minute FROM (
    SELECT principal, bucket, event_name, date_trunc('minute', ts) AS minute, count(*) AS n
    FROM ev GROUP BY 1, 2, 3, 4) GROUP BY 1, 2, 3
)
SELECT e.principal, e.bucket, e.event_name,
       count(*) AS calls,
       count(DISTINCT e.object_key) AS objects,
       coalesce(sum(e.bytes_out), 0) AS bytes_out,
       count(e.error_code) AS errors,
       min(e.ts) AS first_seen,
       max(e.ts) AS last_seen,
       max(p.peak_per_minute) AS peak_per_minute
FROM ev e JOIN per_minute p ON p.principal = e.principal AND p.bucket = e.bucket AND p.event_name = e.event_name
GROUP BY e.principal, e.bucket, e.event_name
ORDER BY calls DESC, e.principal, e.bucket, e.event_name
