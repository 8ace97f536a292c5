"""Secrets Manager: rotation of an RDS-managed secret, without a Lambda."""
from __future__ import annotations

from typing import Any

from localdev.moto_extensions.registry import extension


@extension
def secrets_cancel_rotation_without_lambda() -> None:
    """The database secret is RDS-managed: AWS rotates it without a Lambda, and
    CancelRotateSecret turns rotation off. moto demands a rotation Lambda ARN, so
    destroying the rotation resource failed."""
    from moto.secretsmanager.responses import SecretsManagerResponse

    cancel = SecretsManagerResponse.cancel_rotate_secret

    def cancel_rotate_secret(self: SecretsManagerResponse) -> str:
        secret_id = self._get_param("SecretId")
        backend = self.backend
        if backend._is_valid_identifier(secret_id):
            secret = backend.secrets[secret_id]
            if not getattr(secret, "rotation_lambda_arn", None) and not secret.is_deleted():
                secret.rotation_enabled = False
                return secret.to_short_dict()
        return cancel(self)

    SecretsManagerResponse.cancel_rotate_secret = cancel_rotate_secret


@extension
def managed_secret_rotation() -> None:
    """RDS rotates the master secret it manages itself, without a Lambda: a new version
    with a new password becomes AWSCURRENT. moto, lacking a Lambda, moves AWSCURRENT to
    an empty version, so the secret can no longer be read. Here a Lambda-less rotation of
    a service-managed secret writes the new password into the new version."""
    import json
    import secrets as random_secrets

    from moto.secretsmanager.models import SecretsManagerBackend

    rotate = SecretsManagerBackend.rotate_secret

    def rotate_secret(self: SecretsManagerBackend, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        secret = self.secrets[secret_id] if self._is_valid_identifier(secret_id) else None
        managed = secret is not None and getattr(secret, "owning_service", None) and not (
            kwargs.get("rotation_lambda_arn") or getattr(secret, "rotation_lambda_arn", None))
        before = secret.secret_string if managed else None
        answer = rotate(self, secret_id, *args, **kwargs)
        if managed and before:
            current = secret.versions[secret.default_version_id]
            if current.get("secret_string") is None:
                value = json.loads(before)
                value["password"] = random_secrets.token_urlsafe(24)
                current["secret_string"] = secret.secret_string = json.dumps(value)
        return answer

    SecretsManagerBackend.rotate_secret = rotate_secret
