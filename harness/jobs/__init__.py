"""A job's set-up, below both the timed workers (``harness.running``) and the
profiled ones (``harness.profiling``): the job, the trainer ready to train, the
shuffles, and children that die with their parent."""
