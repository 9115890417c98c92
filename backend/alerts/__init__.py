"""Staff alerts: what staff must see at once (claims deadlines, accidents, catastrophes; later CAP warnings)."""
