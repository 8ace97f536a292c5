"""KMS: the key rotation period."""
from __future__ import annotations

from localdev.moto_extensions.registry import backend_state, extension


@extension
def kms_rotation_period() -> None:
    """EnableKeyRotation takes RotationPeriodInDays (default 365) and
    GetKeyRotationStatus returns it; moto drops it, and the key plans a change for ever."""
    import json

    from moto.kms.responses import KmsResponse

    enable, status = KmsResponse.enable_key_rotation, KmsResponse.get_key_rotation_status

    def periods(self: KmsResponse) -> dict:
        return backend_state(self.kms_backend, "rotation_periods")

    def enable_key_rotation(self: KmsResponse) -> str:
        answer = enable(self)
        key_id = self.kms_backend.get_key_id(self._get_param("KeyId"))
        periods(self)[key_id] = int(self._get_param("RotationPeriodInDays") or 365)
        return answer

    def get_key_rotation_status(self: KmsResponse) -> str:
        answer = json.loads(status(self))
        key_id = self.kms_backend.get_key_id(self._get_param("KeyId"))
        answer["KeyId"] = key_id
        if answer.get("KeyRotationEnabled"):
            answer["RotationPeriodInDays"] = periods(self).get(key_id, 365)
        return json.dumps(answer)

    KmsResponse.enable_key_rotation = enable_key_rotation
    KmsResponse.get_key_rotation_status = get_key_rotation_status
