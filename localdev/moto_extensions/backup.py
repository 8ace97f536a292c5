"""AWS Backup: selections, ListTags without a trailing slash, a vault's recovery points."""
from __future__ import annotations

from localdev.moto_extensions.registry import backend_state, extension


@extension
def backup_selections() -> None:
    """The database backup assigns the DB instance to a backup plan; moto has plans and
    vaults but no selections. Create, get, list and delete, stored per plan."""
    import json
    import uuid

    from moto.backup.exceptions import ResourceNotFoundException
    from moto.backup.responses import BackupResponse
    from moto.core.utils import unix_time

    def selections(self: BackupResponse) -> dict:
        return backend_state(self.backup_backend, "selections")

    def path_ids(self: BackupResponse) -> tuple[str, str | None]:
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        plan_id = parts[parts.index("plans") + 1]
        selection_id = parts[-1] if parts[-1] != "selections" else None
        return plan_id, selection_id

    def create_backup_selection(self: BackupResponse) -> str:
        plan_id, _ = path_ids(self)
        self.backup_backend.get_backup_plan(plan_id, None)  # not found → ResourceNotFoundException
        body = json.loads(self.body or "{}")
        selection_id = str(uuid.uuid4())
        record = {"SelectionId": selection_id, "BackupPlanId": plan_id, "CreationDate": unix_time(),
                  "CreatorRequestId": body.get("CreatorRequestId"), "BackupSelection": body["BackupSelection"]}
        selections(self)[selection_id] = record
        return json.dumps({k: record[k] for k in ("SelectionId", "BackupPlanId", "CreationDate")})

    def found(self: BackupResponse) -> dict:
        plan_id, selection_id = path_ids(self)
        record = selections(self).get(selection_id)
        if record is None or record["BackupPlanId"] != plan_id:
            raise ResourceNotFoundException(f"Selection {selection_id} of plan {plan_id} not found")
        return record

    def get_backup_selection(self: BackupResponse) -> str:
        return json.dumps(found(self))

    def delete_backup_selection(self: BackupResponse) -> str:
        del selections(self)[found(self)["SelectionId"]]
        return "{}"

    def list_backup_selections(self: BackupResponse) -> str:
        plan_id, _ = path_ids(self)
        listed = [{"SelectionId": r["SelectionId"], "SelectionName": r["BackupSelection"].get("SelectionName"),
                   "BackupPlanId": plan_id, "CreationDate": r["CreationDate"],
                   "IamRoleArn": r["BackupSelection"].get("IamRoleArn")}
                  for r in selections(self).values() if r["BackupPlanId"] == plan_id]
        return json.dumps({"BackupSelectionsList": listed})

    for fn in (create_backup_selection, get_backup_selection, delete_backup_selection, list_backup_selections):
        setattr(BackupResponse, fn.__name__, fn)


@extension
def backup_list_tags_path() -> None:
    """ListTags is `GET /tags/{arn}/`; moto takes the ARN from the next-to-last path
    segment, which is wrong when the client leaves the trailing slash off (the Go SDK
    does), so every backup plan and vault read back with no tags."""
    import json
    from urllib.parse import unquote

    from moto.backup.responses import BackupResponse

    def list_tags(self: BackupResponse) -> str:
        arn = unquote(self.path.split("?")[0].split("/tags/", 1)[1].rstrip("/"))
        return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=arn)})

    BackupResponse.list_tags = list_tags


@extension
def backup_vault_recovery_points() -> None:
    """Destroying a vault with force_destroy lists its recovery points first; moto has
    no route for that. The emulator never takes backups, so every vault is empty."""
    import json

    from moto.backup import urls
    from moto.backup.responses import BackupResponse

    def list_recovery_points_by_backup_vault(self: BackupResponse) -> str:
        name = self.path.split("?")[0].split("/backup-vaults/", 1)[1].split("/")[0]
        self.backup_backend.describe_backup_vault(name)  # not found → ResourceNotFoundException
        return json.dumps({"RecoveryPoints": []})

    for pattern in ("{0}/backup-vaults/(?P<name>[^/]+)/recovery-points$",  # the Go SDK's form
                    "{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/$"):  # botocore's
        urls.url_paths[pattern] = BackupResponse.dispatch
    BackupResponse.list_recovery_points_by_backup_vault = list_recovery_points_by_backup_vault
