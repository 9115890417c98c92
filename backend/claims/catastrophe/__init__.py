"""R-CLM-5 catastrophe or emergency: disaster events that link claims across counties."""
