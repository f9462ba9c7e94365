"""The served model: one bundle reference, kept current with its registry alias.

A request reads `ModelHolder.current` once and uses that bundle to the end, so swapping in a
new model never disturbs requests in flight; a background thread swaps when the alias moves.
Loading and predicting are `safetynet.model`'s.
"""

from __future__ import annotations

import logging
import threading

from safetynet.config import Settings, get_settings
from safetynet.model import Bundle, alias_version, load_bundle

log = logging.getLogger(__name__)


def load_model(alias: str | None = None, settings: Settings | None = None) -> Bundle:
    """Load the model registered under `alias` (default: the configured serving alias)."""
    settings = settings or get_settings()
    return load_bundle(alias=alias or settings.model_alias, settings=settings)


class ModelHolder:
    """Holds the served bundle; `reload()` and the alias watcher swap it atomically."""

    def __init__(self, settings: Settings, alias: str | None = None) -> None:
        self.settings = settings
        self.alias = alias or settings.model_alias
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.current: Bundle = load_model(self.alias, settings)

    def reload(self, force: bool = False) -> tuple[str, str]:
        """Load the alias's model if its version changed (or `force`); (old, new) versions."""
        with self._lock:  # one reload at a time; requests never take this lock
            old = self.current.version
            if not force and alias_version(self.alias, self.settings) == old:
                return old, old
            new = load_model(self.alias, self.settings)
            self.current = new  # one reference assignment: atomic for readers
            log.info("model %s: version %s -> %s", new.name, old, new.version)
            return old, new.version

    def watch(self, every: float) -> None:
        """Check the alias every `every` seconds in a daemon thread (0 = never)."""
        if every <= 0 or self._watcher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.reload()
                except Exception:  # a registry hiccup must not kill the watcher
                    log.exception("checking the model alias failed; keeping the served model")

        self._watcher = threading.Thread(target=loop, name="model-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
