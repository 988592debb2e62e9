"""Planning over a websocket: the server (`server`), its client (`client`) and the message
format they share (`wire`)."""
