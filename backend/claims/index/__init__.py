"""R-CLM-2 weather index: station readings, payouts without a report, the payout list by village."""
