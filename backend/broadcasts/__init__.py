"""Fan-out: every message to many people (warnings, reminders, staff messages, publicity) is a broadcast."""
