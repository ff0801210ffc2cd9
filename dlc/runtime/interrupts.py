"""What a signal does to a command: SIGINT and SIGTERM become a request that training answers at its
safe points (`FitOptions.should_stop`), and a second one aborts. Standard library only: installed
before anything else is imported."""

from __future__ import annotations

import os
import sys


class Interrupts:
    """SIGINT and SIGTERM as a request that `dlc run` answers at its safe points, never as an
    exception raised wherever Python happens to be (inside an import, or a callback of XLA's,
    where it printed tracebacks or was swallowed). The C-level handler writes each signal to a
    pipe that a thread reads, so a signal is seen at once even while the main thread is inside
    XLA: the first asks to stop (or, unless `graceful`, aborts); a second aborts at once, printing
    `abort_line`. Installed by the CLI's `main` for the length of a command, before anything is imported."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.graceful = True
        self.notice = ""  # printed when the first signal asks to stop, while training
        self.abort_line = "dlc: interrupted"
        self.previous: dict | None = None
        self.keep_installed = False  # the process's own command: signals stay dlc's through its shutdown

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def status(self) -> int:
        """The shell's status for death by the signal: 130 for SIGINT, 143 for SIGTERM."""
        import signal

        return 128 + (self.signum or signal.SIGINT)

    def __enter__(self) -> Interrupts:
        import signal
        import threading

        self.signum, self.graceful, self.notice, self.abort_line = None, True, "", "dlc: interrupted"
        if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
            return self
        read, self.write = os.pipe()
        os.set_blocking(self.write, False)
        self.previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
        self.previous_fd = signal.set_wakeup_fd(self.write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read,), name="dlc-interrupts", daemon=True).start()
        return self

    def _watch(self, read: int) -> None:
        import signal

        with os.fdopen(read, "rb", buffering=0) as pipe:
            while signals := pipe.read(16):
                for signum in signals:
                    if signum not in (signal.SIGINT, signal.SIGTERM):
                        continue
                    if self.signum is None and self.graceful:
                        self.signum = signum
                        if self.notice:
                            print(self.notice, file=sys.stderr, flush=True)
                        continue
                    self.signum = self.signum or signum
                    print(self.abort_line, file=sys.stderr, flush=True)
                    os._exit(self.status)

    def __exit__(self, *exc) -> None:
        import signal

        if self.previous is None:
            return
        if self.keep_installed:
            # The command is done: a signal while Python shuts down has nothing left to stop. (Python's
            # shutdown puts the default handler back for any handler but SIG_IGN, and a signal then
            # killed the process after it had printed its last line.)
            for signum in self.previous:
                signal.signal(signum, signal.SIG_IGN)
            return
        signal.set_wakeup_fd(self.previous_fd)
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = None
        os.close(self.write)  # the watcher reads the end of the pipe and stops
