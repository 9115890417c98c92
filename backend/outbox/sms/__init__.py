"""SMS, an outbox channel: provider templates, per-number limits, quiet hours, stops and receipts."""
