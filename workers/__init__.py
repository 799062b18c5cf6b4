"""RQ jobs: asynchronous contributions and callback delivery."""
