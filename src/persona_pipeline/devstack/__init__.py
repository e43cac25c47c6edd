"""The embedded development stack: real Kafka- and MongoDB-protocol servers as child processes.

Used by ``persona dev`` and by the integration-test fixtures. Never used in
production, where ``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URI`` point at
Apache Kafka and MongoDB.
"""
