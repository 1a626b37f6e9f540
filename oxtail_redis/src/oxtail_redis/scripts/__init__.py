"""The Lua scripts, one file each: every mutating Store step runs as one of them.

Discipline (docs/redis.md): a script does every read and check first, then only writes that
cannot fail, because Redis does not roll back a script's earlier writes when a later one fails.
Mutating scripts that answer "who won" take an op key as their last KEYS entry and leave the
answer there for 60 s, so a call replayed after a lost reply returns what the first one did.
"""
