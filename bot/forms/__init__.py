"""A small form engine for long chat flows: declarative steps, back/cancel everywhere, answers kept in
FSM storage (Redis in production) so a flow resumes after a restart or a day later."""
