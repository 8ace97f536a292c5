"""Run the whole pipeline on one machine: moto as AWS, a real PostgreSQL and Redis, both stacks deployed unchanged."""
