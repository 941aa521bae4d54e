"""A job's set-up, below both the timed workers (``harness.running``) and the
profiled ones (``harness.profiling``): the job, the trainer ready to train, the
shuffles, children that die with their parent, and the start and end of a child
that works from a folder."""
