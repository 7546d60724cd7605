"""What both network front-ends share: the listener prologue, connection limits, the clock."""
