"""Load tests (locust), their runner and the harness shared with tests/faults."""
