"""RQ queue names, defined once (the services enqueue on them, the worker listens to them)."""

CONTRIBUTION_QUEUE = "contributions"  # asynchronous contributions
CALLBACK_QUEUE = "callbacks"  # callback deliveries
QUEUES = (CONTRIBUTION_QUEUE, CALLBACK_QUEUE)  # the order a worker serves them in
