"""Replace a file all at once, or not at all.

A file written in place is truncated first: a write that fails (no space
left, a file-size limit), an interrupt or a killed process leaves half a
file, and a reader opening it meanwhile sees half a file.  Written to a
temporary file in the same folder and renamed over the target
(``os.replace``, atomic on POSIX and Windows), the target is at every
moment either the old file or the new one, whole.
"""

import contextlib
import os
import secrets


@contextlib.contextmanager
def replacing(path):
    """A binary stream whose content replaces the file ``path`` when the
    block ends without an exception.

    On any exception (KeyboardInterrupt included) the temporary file is
    removed, ``path`` is left as it was and the exception propagates.  Only
    a process killed outright (SIGKILL, a power cut) leaves the temporary
    file, a hidden ``.NAME.*.tmp`` beside ``path``, never a damaged ``path``.
    """
    target = os.path.realpath(os.fspath(path))  # through a symlink, not over it
    folder, name = os.path.split(target)
    try:
        mode = os.stat(target).st_mode & 0o7777  # a replaced file keeps its mode
    except FileNotFoundError:
        mode = None
    descriptor, temporary = _create(folder, name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(folder)


def _create(folder, name):
    """``(descriptor, path)`` of a new file beside ``name``.

    Unlike ``tempfile.mkstemp`` (mode 0600), opened with mode 0666 so that
    the umask gives a new model file the mode of any new file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue


def _sync_folder(folder):
    """Make the rename durable: fsync the folder where the system allows it."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
