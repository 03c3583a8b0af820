"""ALB access logs in S3 (the window's and the baseline's) and the per-endpoint query over them."""

from __future__ import annotations

from ..sources import alb_logs
from .core import events
from .engines import engine_call

events("alb_access_logs", "s3:ListObjectsV2+GetObject", ["alb.access_logs"],
       lambda inc: alb_logs.access_logs_call(inc.env["alb"], inc.context_window, aws=inc.aws),
       alb_logs.COLUMNS, source="alb_access_logs",
       doc="Every ALB request of the context window from the access logs in S3 (the files of the window only).")
events("alb_access_logs_baseline", "s3:ListObjectsV2+GetObject", ["alb.access_logs"],
       lambda inc: alb_logs.access_logs_call(inc.env["alb"], inc.baseline_window, aws=inc.aws),
       alb_logs.COLUMNS, source="alb_access_logs",
       doc="ALB requests of the baseline hours before the window: what 'known' clients and user agents means.")
engine_call("alb_endpoints", "alb_access_logs", "alb_endpoints", ("alb.access_logs",),
            table=("alb_table", "alb_logs"), reads=("alb_access_logs", "alb_logs"),
            doc="Requests, 5xx/4xx and target latency per endpoint (method and path template) in the window.")
