"""The exception mlebench graders raise for a submission that cannot be graded.
harness treats any exception class of this name as an invalid submission."""


class InvalidSubmissionError(Exception):
    """The submission cannot be graded; the message says why."""
