"""Run the whole pipeline on one machine: moto as AWS, a real PostgreSQL and Redis, both stacks deployed unchanged."""
import os

# The stacks' config imports cdktf (jsii), which warns on every run that Node 20 is end-of-life.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
