"""The APScheduler process: instance lifecycle and raffle draws."""
