"""The one error tree of plateseg.

Every error a user can meet is a :class:`PlatesegError`; each class knows the exit
code the CLI returns for it, and carries enough context to name what was wrong and
where. Lambda reports an exception by its class name (``errorType``), so the class
names of :class:`TransientError` subclasses are part of the state machine contract:
the ASL retries exactly those names (a test keeps the two in step).

::

    PlatesegError                       exit 1
    ├── InputError                      exit 2   the user asked for something invalid
    │   ├── ExperimentIdError                    unsafe or malformed experiment id
    │   ├── ExecutionInputError                  execution input fails validation
    │   ├── RecipeError                          recipe fails validation
    │   │   └── ModelError                       a segmentation model is missing or invalid
    │   ├── NotFoundError                        no such experiment, run, stack or model
    │   └── ResumeError                          a run cannot be resumed or redriven
    ├── ImageError                      exit 3   one image is unusable (a per-image record)
    │   ├── ImageReadError                       corrupt, truncated, unknown format
    │   └── ImageShapeError                      wrong dimensions, dtype or size
    ├── NoImagesError                   exit 3   an experiment prefix holds no images
    ├── StoreError                      exit 4
    │   ├── ObjectNotFoundError                  key does not exist
    │   └── StoreKeyError                        key is unsafe (``..``, absolute)
    ├── DatabaseError                   exit 5
    ├── DefinitionError                 exit 2   the ASL definition is invalid
    ├── ExecutionFailed                 exit 1   a state machine run ended in failure
    ├── AllImagesFailedError            exit 1   a run finished but no image was segmented
    ├── StatesError                     exit 1   the ``States.*`` errors, by ASL name
    └── TransientError                  exit 75  retry later (EX_TEMPFAIL)
        ├── StoreUnavailableError                S3 throttling, 5xx, connection reset
        └── DatabaseUnavailableError             database unreachable or dropped
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "AllImagesFailedError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DefinitionError",
    "ExecutionFailed",
    "ExecutionInputError",
    "ExperimentIdError",
    "ImageError",
    "ImageReadError",
    "ImageShapeError",
    "InputError",
    "ModelError",
    "NoImagesError",
    "NotFoundError",
    "ObjectNotFoundError",
    "PlatesegError",
    "RecipeError",
    "ResumeError",
    "RunOwnershipError",
    "StatesError",
    "StoreError",
    "StoreKeyError",
    "StoreUnavailableError",
    "TransientError",
    "format_validation_error",
    "transient_error_names",
]


class PlatesegError(Exception):
    """Root of every error plateseg raises on purpose."""

    #: Process exit status of the CLI for this error (a class default; an instance may
    #: refine it, as :class:`ExecutionFailed` does from the ASL error name).
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- input -----------------------------------------------------------------------


class InputError(PlatesegError):
    """The caller asked for something invalid; fixing the request fixes the error."""

    exit_code = 2


class ExperimentIdError(InputError):
    """An experiment id is not a safe, single path segment."""


class ExecutionInputError(InputError):
    """The execution input does not match the documented schema."""


class RecipeError(InputError):
    """A recipe names an unknown segmenter or has out-of-range parameters."""


class ModelError(RecipeError):
    """A segmentation model (``models/<name>.onnx``) is missing, unreadable or mis-shaped."""


class NotFoundError(InputError):
    """The named experiment, run, stack or model does not exist (HTTP 404 in the web API)."""


class ResumeError(InputError):
    """A run cannot be resumed or redriven (unknown run id, finished, or journal mismatch)."""


class RunOwnershipError(InputError):
    """A run id is already taken by another experiment (checked before anything is written)."""


# --- images ------------------------------------------------------------------------


class ImageError(PlatesegError):
    """One image cannot be used. Segment turns it into a per-image error record.

    Parameters
    ----------
    key : str
        Store key (or file path) of the offending image.
    problem : str
        What is wrong with it, in words a scientist understands.
    """

    exit_code = 3

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class ImageReadError(ImageError):
    """The bytes are not a readable image (corrupt, truncated, unknown format)."""


class ImageShapeError(ImageError):
    """The image decodes but has the wrong dimensions, dtype or size."""


class NoImagesError(PlatesegError):
    """Lookup found no images for an experiment."""

    exit_code = 3


# --- store -------------------------------------------------------------------------


class StoreError(PlatesegError):
    """A store operation failed for a reason retrying will not fix."""

    exit_code = 4


class ObjectNotFoundError(StoreError):
    """The key does not exist in the store."""

    def __init__(self, key: str, where: str = "") -> None:
        super().__init__(f"no object at {key!r}" + (f" in {where}" if where else ""))
        self.key = key


class StoreKeyError(StoreError):
    """The key is not a safe relative key."""


# --- database, definition, execution ------------------------------------------------


class DatabaseError(PlatesegError):
    """A database operation failed for a reason retrying will not fix."""

    exit_code = 5


class DefinitionError(PlatesegError):
    """An Amazon States Language definition is invalid or uses what we do not run.

    Parameters
    ----------
    problems : list of str
        One message per problem, each naming the state and a JSON pointer.
    """

    exit_code = 2

    def __init__(self, problems: list[str] | str) -> None:
        items = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("invalid state machine definition:\n  " + "\n  ".join(items))
        self.problems = items


class ExecutionFailed(PlatesegError):
    """A state machine execution ended in failure with an ASL ``Error`` and ``Cause``."""

    def __init__(self, error: str, cause: str, execution: str = "") -> None:
        head = f"execution {execution} failed" if execution else "execution failed"
        super().__init__(f"{head}: {error}: {cause}")
        self.error = error
        self.cause = cause
        self.execution = execution
        self.exit_code = _exit_code_of_error_name(error)


class AllImagesFailedError(PlatesegError):
    """A run finished (``SUCCEEDED_WITH_FAILURES``) but every one of its images failed.

    The execution itself succeeded, yet it produced no result a lab can use; the CLI
    exits 1 as for a failed execution. (Some failed images: the CLI's exit 10.)
    """


#: ASL error names of the definition that are not class names of this tree.
_ERROR_NAME_ALIASES = {"NoImagesFound": "NoImagesError"}


def _exit_code_of_error_name(error: str) -> int:
    """The exit code of the tree's class named by an ASL ``Error`` (1 when none is).

    >>> _exit_code_of_error_name("RecipeError"), _exit_code_of_error_name("NoImagesFound")
    (2, 3)
    >>> _exit_code_of_error_name("States.TaskFailed")
    1
    """
    found = globals().get(_ERROR_NAME_ALIASES.get(error, error))
    if isinstance(found, type) and issubclass(found, PlatesegError):
        return found.exit_code
    return PlatesegError.exit_code


class StatesError(PlatesegError):
    """An error of the ``States.*`` family, raised inside the engine.

    Parameters
    ----------
    name : str
        The ASL error name, e.g. ``"States.Runtime"``.
    cause : str
        Human-readable cause, as Step Functions reports it.
    """

    #: Errors no Catch or Retry can intercept (AWS: States.Runtime is terminal).
    UNCATCHABLE: ClassVar[frozenset[str]] = frozenset({"States.Runtime"})

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(f"{name}: {cause}")
        self.name = name
        self.cause = cause

    def as_error_output(self) -> dict[str, Any]:
        return {"Error": self.name, "Cause": self.cause}


# --- transient ---------------------------------------------------------------------


class TransientError(PlatesegError):
    """A fault that may go away: the state machine's Retry should handle it."""

    exit_code = 75


class StoreUnavailableError(TransientError):
    """The store throttled, timed out or answered with a server error."""


class DatabaseUnavailableError(TransientError):
    """The database could not be reached or dropped the connection."""


def transient_error_names() -> set[str]:
    """Class names of every :class:`TransientError`, as Lambda reports them.

    Returns
    -------
    set of str
        ``{"TransientError", "StoreUnavailableError", ...}``; the ASL Retry lists these.
    """
    names: set[str] = set()
    stack: list[type[TransientError]] = [TransientError]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return names


def format_validation_error(exc: ValidationError, what: str) -> str:
    """One readable line per problem, each naming the field path."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "(root)"
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{what}.{loc}: {message}")
    return "; ".join(lines)
