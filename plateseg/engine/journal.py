"""A durable execution journal: resume after a crash, redrive failed Map items.

One SQLite file per execution (WAL, ``synchronous=FULL``: a committed row survives
SIGKILL and power loss). It records

- ``execution``: name, definition, input, and how the execution ended;
- ``transitions``: each state the *top-level* machine left — step number, state name,
  the next state and the state's output — so a resumed run starts at the first state
  that did not finish, with exactly the data it would have had;
- ``children``: each Distributed Map child execution (batch) result, keyed by the step
  at which the Map state was entered and the batch index, so a resumed Map Run re-runs
  only batches that have no result or failed;
- ``variables``: the top-level workflow variables after each step that changed them, so
  a resumed run reads the ``$name`` values it would have read.

A resumed execution is the same execution (same name, so the same Map Run ids,
ResultWriter folders and child names); nothing already journaled as succeeded runs
twice, nothing is lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plateseg.errors import ResumeError

__all__ = ["Journal", "Resume"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS execution (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    cause TEXT
);
CREATE TABLE IF NOT EXISTS transitions (
    step INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    next TEXT,
    output TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS variables (
    step INTEGER PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS children (
    step INTEGER NOT NULL,
    state TEXT NOT NULL,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (step, idx)
);
"""


@dataclass(frozen=True)
class Resume:
    """Where a journaled execution continues: the step number, state and its input,
    and the top-level workflow variables as they were then."""

    step: int
    state: str
    data: Any
    variables: dict[str, Any] | None = None


class Journal:
    """The journal of one execution, in the SQLite file ``path``.

    Parameters
    ----------
    path : Path
        The journal file; created (with its folder) if missing.

    Notes
    -----
    One connection shared by the engine's threads under a lock; every write is its own
    committed transaction.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # -- execution -------------------------------------------------------------
    def begin(self, name: str, definition: Any, execution_input: Any) -> None:
        """Record a new execution, or check a resumed one is the same execution.

        Raises
        ------
        ResumeError
            The journal belongs to an execution with another name or definition.
        """
        row = self.execution()
        if row is None:
            with self._lock:
                self._db.execute(
                    "INSERT INTO execution (id, name, definition, input, status) "
                    "VALUES (1, ?, ?, ?, 'RUNNING')",
                    (name, _dumps(definition), _dumps(execution_input)),
                )
            return
        if row["name"] != name or row["definition"] != definition:
            raise ResumeError(
                f"journal {self.path} belongs to execution {row['name']!r} with another "
                "definition; it cannot continue this one"
            )
        self._set_status("RUNNING", None, None, None)

    def execution(self) -> dict[str, Any] | None:
        """The recorded execution (name, definition, input, status, output, error, cause)."""
        with self._lock:
            found = self._db.execute(
                "SELECT name, definition, input, status, output, error, cause FROM execution"
            ).fetchone()
        if found is None:
            return None
        name, definition, input_text, status, output, error, cause = found
        return {
            "name": name,
            "definition": json.loads(definition),
            "input": json.loads(input_text),
            "status": status,
            "output": None if output is None else json.loads(output),
            "error": error,
            "cause": cause,
        }

    def finish(self, status: str, output: Any, error: str | None, cause: str | None) -> None:
        """Record how the execution ended."""
        self._set_status(status, None if status != "SUCCEEDED" else _dumps(output), error, cause)

    def _set_status(
        self, status: str, output: str | None, error: str | None, cause: str | None
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE execution SET status = ?, output = ?, error = ?, cause = ? WHERE id = 1",
                (status, output, error, cause),
            )

    # -- transitions -------------------------------------------------------------
    def record_transition(self, step: int, state: str, next_state: str | None, output: Any) -> None:
        """Record that top-level ``state`` (entered at ``step``) finished with ``output``."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO transitions (step, state, next, output) VALUES (?,?,?,?)",
                (step, state, next_state, _dumps(output)),
            )

    def resume_point(self, start_at: str, execution_input: Any) -> Resume | None:
        """Where to continue; ``None`` when the last recorded state ended the machine."""
        with self._lock:
            last = self._db.execute(
                "SELECT step, next, output FROM transitions ORDER BY step DESC LIMIT 1"
            ).fetchone()
        if last is None:
            return Resume(0, start_at, execution_input)
        step, next_state, output = last
        if next_state is None:
            return None
        with self._lock:
            saved = self._db.execute(
                "SELECT data FROM variables WHERE step <= ? ORDER BY step DESC LIMIT 1", (step,)
            ).fetchone()
        variables = None if saved is None else json.loads(saved[0])
        return Resume(step + 1, next_state, json.loads(output), variables)

    def record_variables(self, step: int, variables: dict[str, Any]) -> None:
        """Record the top-level variables as they are after the state entered at ``step``."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO variables (step, data) VALUES (?, ?)",
                (step, _dumps(variables)),
            )

    def last_output(self) -> Any:
        """Output of the last recorded transition (the execution's output when it ended)."""
        with self._lock:
            row = self._db.execute(
                "SELECT output FROM transitions ORDER BY step DESC LIMIT 1"
            ).fetchone()
        return None if row is None else json.loads(row[0])

    # -- Map Run children ----------------------------------------------------------
    def record_child(self, step: int, state: str, index: int, status: str, result: Any) -> None:
        """Durably record the result of batch ``index`` of the Map entered at ``step``."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO children (step, state, idx, status, result) "
                "VALUES (?,?,?,?,?)",
                (step, state, index, status, _dumps(result)),
            )

    def succeeded_children(self, step: int) -> dict[int, Any]:
        """Batch index → recorded result, for the succeeded batches of a Map."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, result FROM children WHERE step = ? AND status = 'SUCCEEDED'",
                (step,),
            ).fetchall()
        return {index: json.loads(text) for index, text in rows}

    def count_children(self, status: str | None = None) -> int:
        """How many batch results are journaled (optionally only with ``status``)."""
        query = "SELECT COUNT(*) FROM children"
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        with self._lock:
            return int(self._db.execute(query, args).fetchone()[0])

    def rewind_to_failed_map(self) -> str:
        """Prepare a redrive: go back to the last Map with failed batches.

        Transitions from that Map's step on are forgotten, so the Map runs again — its
        succeeded batches from the journal, its failed ones for real — and so does
        everything after it. When no Map has failed batches but the execution failed
        (a later state such as Aggregate failed), nothing is forgotten: the redrive
        starts at the state that failed, as AWS ``RedriveExecution`` does.

        Returns
        -------
        str
            The name of the state that will run again first.

        Raises
        ------
        ResumeError
            The execution is still running, or it succeeded and no Map has failed
            batches.
        """
        row = self.execution()
        if row is None or row["status"] == "RUNNING":
            raise ResumeError(
                f"journal {self.path}: only a finished execution can be redriven "
                "(a running or killed one is resumed)"
            )
        with self._lock:
            found = self._db.execute(
                "SELECT step, state FROM children WHERE status != 'SUCCEEDED' "
                "ORDER BY step DESC LIMIT 1"
            ).fetchone()
            if found is None:
                last = self._db.execute(
                    "SELECT next FROM transitions ORDER BY step DESC LIMIT 1"
                ).fetchone()
                if row["status"] == "SUCCEEDED" or (last is not None and last[0] is None):
                    raise ResumeError(f"journal {self.path}: no failed Map items to redrive")
                # A state after the Maps failed (e.g. Aggregate with the database down):
                # as AWS redrives from the failed state, run again from where it stopped.
                return str(last[0]) if last is not None else "the first state"
            step, state = found
            self._db.execute("DELETE FROM transitions WHERE step >= ?", (step,))
            self._db.execute("DELETE FROM variables WHERE step >= ?", (step,))
        return str(state)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)
