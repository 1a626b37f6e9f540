"""Who this server works for: the client that launched it and the agent session it belongs to."""
