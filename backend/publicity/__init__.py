"""Publicity notices (公示): underwriting household lists, claims payouts and weather-index payouts posted
for at least 72 hours after the village committee's check, with objections and a tamper-evident archive
(R-ENR-8, R-PUB-1 to R-PUB-4, R-CLM-2). See docs/architecture.md "Publicity"."""
