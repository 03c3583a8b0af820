"""ELBv2: planted target health, and fixed ARN ids for load balancers and target groups.

``DescribeTargetHealth`` reports what :func:`set_target_health` planted (moto reports every target
healthy); :func:`rekey_load_balancer` / :func:`rekey_target_group` replace the random id moto draws
(the last part of the ARN and of the CloudWatch dimension) with a fixed one.
"""

from __future__ import annotations

from .patching import patch_once


def install_target_health() -> None:
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    def make(original):
        def health_for(self, target, ec2_backend):
            planted = getattr(self, "forensics_health", {}).get(target["Id"])
            if planted is not None and target["Id"] in self.targets:
                state, reason, description = planted
                port = self.targets[target["Id"]].get("Port", self.port)
                return FakeHealthStatus(target["Id"], port, self.health_check_port, state, reason, description)
            return original(self, target, ec2_backend)

        return health_for

    patch_once(FakeTargetGroup, "health_for", make)


def set_target_health(elbv2_backend, target_group_arn: str, target_id: str, state: str,
                      reason: str | None = None, description: str | None = None) -> None:
    """What describe_target_health reports for a registered target (``healthy`` clears it)."""
    tg = elbv2_backend.target_groups[target_group_arn]
    planted = tg.__dict__.setdefault("forensics_health", {})
    if state == "healthy":
        planted.pop(target_id, None)
    else:
        planted[target_id] = (state, reason, description)


def rekey_load_balancer(elbv2_backend, arn: str, lb_id: str) -> str:
    """Give a load balancer a fixed id (the last part of its ARN and of its CloudWatch dimension)."""
    return _rekey(elbv2_backend, elbv2_backend.load_balancers, arn, lb_id)


def rekey_target_group(elbv2_backend, arn: str, tg_id: str) -> str:
    """Give a target group a fixed id (the last part of its ARN and of its CloudWatch dimension)."""
    return _rekey(elbv2_backend, elbv2_backend.target_groups, arn, tg_id)


def _rekey(elbv2_backend, store: dict, arn: str, new_id: str) -> str:
    obj = store.pop(arn)
    new_arn = arn.rsplit("/", 1)[0] + "/" + new_id
    obj.arn = new_arn
    store[new_arn] = obj
    tags = getattr(getattr(elbv2_backend, "tagging_service", None), "tags", None)
    if isinstance(tags, dict) and arn in tags:
        tags[new_arn] = tags.pop(arn)
    return new_arn
