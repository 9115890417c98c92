"""R-CLM-12 payees: the registry of accounts that are never paid a claim (village committees, townships,
staff, other insureds), and the payee exceptions (a payee other than the insured's own account on file),
each with its recorded explanation and a second staff member's approval."""
