"""One-time codes sent by SMS: how a web chat proves it holds a phone before it joins that phone's person."""
