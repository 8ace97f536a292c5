"""The local API Gateway: a deployed REST API stage, read back from the emulator, served over HTTPS.

moto's server does not serve execute-api calls, and in-process moto skips API keys, usage plans and
validators, has no Velocity engine and cannot call Kinesis. Here:

- deployed.py  what the stage serves, read through the API Gateway API (routes, methods, models,
               validators, integrations and their responses, keys, usage plans, gateway responses)
- velocity.py  mapping templates rendered with airspeed (`$input`, `$context`, `$util`)
- limits.py    usage plans' token buckets and quotas
- app.py       the request's way through, as a Starlette app
- __main__.py  `python -m localdev.gateway`: the app on uvicorn, TLS with the local CA's certificate
- supplier_api.py  the supplier API made in the emulator without Terraform, for the gateway's tests and
               bench (the one module here that knows it)
"""
