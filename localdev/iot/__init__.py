"""IoT Core's data plane, locally: an MQTT broker that admits exactly what IoT Core would, and its
rules engine, applying the deployed topic rules as their roles.

moto's IoT is a registry only (no MQTT, topic rules stored and never run). Here:

- authority.py  who may connect and publish: the client certificate registered and ACTIVE in the
                emulator's registry, attached to the thing the client id names, and each connect and
                publish evaluated against the policies attached to it (localdev/access/policy.py,
                with IoT's policy variables)
- rules.py      the rules engine: the deployed rule's SQL (the subset the stack uses), its Kinesis
                action with its partition key, its error action, each call made as the rule's role
                through the emulator, so the access evaluator decides it as AWS would
- broker.py     amqtt with mutual TLS, IoT's limits (128 KB, no QoS 2, 100 publishes a second a
                connection), Basic Ingest topics; `python -m localdev.iot.broker`
- local_broker.py  that broker as a process of its own on a free port (tests, the demo)
- device.py     a sensor as a real MQTT client (paho-mqtt) from the device.json tools.sensors wrote
"""
