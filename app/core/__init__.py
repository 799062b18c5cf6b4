"""What every layer uses and that knows no HTTP and no Redis: money arithmetic, the
clock, settings, tokens and roles, refusal codes, exact JSON, logging and metrics."""
