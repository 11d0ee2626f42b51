"""Never imported by the project: a job row naming it must not make a worker import it."""

import os

with open(os.environ["FORGED_MARKER"], "w") as marker:
    marker.write("imported")


def payload() -> str:
    return "ran"
