"""`python -m localdev.gateway --endpoint URL --region R --api-id ID --stage S --port P --cert C --key K`:
serve the deployed stage on https://127.0.0.1:P/S until SIGTERM. Each request is one JSON line in
`--access-log` (what the stage's access log would hold)."""
from __future__ import annotations

import argparse
import json
import logging
import threading
from typing import Any

import boto3
import uvicorn

from localdev.access.trust import API_GATEWAY, assume_as
from localdev.gateway.app import Gateway, create_app
from localdev.gateway.deployed import read_stage

PLAIN_KEYS = {"aws_access_key_id": "localdev", "aws_secret_access_key": "localdev"}


def build(endpoint: str, region: str, api_id: str, stage: str, access_log: str | None = None) -> Gateway:
    """A gateway for the deployed `stage` of `api_id` and the web ACL in front of it, calling integrations
    through `endpoint` with sessions of their roles (STS AssumeRole, as API Gateway assumes an integration's
    role; STS evaluates the role's trust policy for apigateway.amazonaws.com)."""
    apigateway = boto3.client("apigateway", region_name=region, endpoint_url=endpoint, **PLAIN_KEYS)
    sts = boto3.client("sts", region_name=region, endpoint_url=endpoint, **PLAIN_KEYS)
    wafv2 = boto3.client("wafv2", region_name=region, endpoint_url=endpoint, **PLAIN_KEYS)

    def assume(role_arn: str) -> dict[str, str]:
        return assume_as(sts, API_GATEWAY, role_arn, f"apigateway-{api_id}")

    lock = threading.Lock()

    def log(entry: dict[str, Any]) -> None:
        if access_log:
            with lock, open(access_log, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")

    return Gateway(read_stage(apigateway, api_id, stage, wafv2), endpoint=endpoint, assume=assume, access_log=log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="the emulator")
    parser.add_argument("--region", required=True)
    parser.add_argument("--api-id", required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--access-log")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    gateway = build(args.endpoint, args.region, args.api_id, args.stage, args.access_log)
    uvicorn.run(create_app(gateway), host="127.0.0.1", port=args.port, ssl_certfile=args.cert, ssl_keyfile=args.key,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
