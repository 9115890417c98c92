"""Chat state kept in the system's database when no Redis is configured: web chat transcripts and
files, and the bot's conversation (FSM) state. The bot's SQL stores (``bot/sqlstore.py``) use these
tables; nothing in the backend's API reads them."""
