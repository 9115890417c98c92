"""The tamper-evident archive of every publication (R-PUB-3): append-only records in a SHA-256 chain."""
