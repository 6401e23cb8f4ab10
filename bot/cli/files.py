"""Files the command line reads and writes: a failure names the file and says why, in words.

The operating system's reason (``[Errno 2] No such file or directory``) names neither which file
nor, for a missing folder, which part of the path is missing; and left to travel up, an
``OSError`` was blamed on the database. So every file the CLI opens turns its ``OSError`` into
one of these sentences where it happens.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.core.errors import GpubookError
from bot.core.phrases import Code
from bot.core.sentence import Quote


class FileProblem(GpubookError):
    """A file the command was told to read or write could not be; nothing else was changed."""


def cannot_write(path: str | Path, error: OSError) -> FileProblem:
    """``error``, raised writing ``path``, as the sentence an operator can act on."""
    path = Path(path)
    if isinstance(error, FileExistsError):
        return FileProblem(Code.FILE_EXISTS, path=Quote(str(path)))
    if error.errno == errno.ENOENT and not path.parent.is_dir():
        return FileProblem(
            Code.FILE_NO_FOLDER, path=Quote(str(path)), folder=Quote(str(path.parent))
        )
    return FileProblem(Code.FILE_CANT_WRITE, path=Quote(str(path)), reason=reason(error))


def cannot_read(path: str | Path, error: OSError | UnicodeDecodeError) -> FileProblem:
    """``error``, raised reading the text file ``path``, as a sentence."""
    if isinstance(error, UnicodeDecodeError):
        return FileProblem(Code.FILE_NOT_TEXT, path=Quote(str(path)))
    return FileProblem(Code.FILE_CANT_READ, path=Quote(str(path)), reason=reason(error))


def reason(error: OSError) -> str:
    """The system's reason in a sentence's case: ``permission denied``, ``is a directory``."""
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Run the block that writes ``path``; its ``OSError`` becomes :func:`cannot_write`'s."""
    try:
        yield
    except BrokenPipeError:  # a pipe, not a file: the reader left (see bot.cli.main)
        raise
    except OSError as error:
        raise cannot_write(path, error) from error
