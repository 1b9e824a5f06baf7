"""The fork server's last preload: freezes what the server imported (`gc.freeze`), in the server itself."""

from __future__ import annotations

import gc

# The server then exits at once when its parent does (no collection over every preloaded module at shutdown, which
# kept a piped command's output open for a few tenths of a second after the command ended), and the processes it
# forks start with those objects outside their collector's walks, as the documentation of gc.freeze advises for a
# process that forks without exec.
gc.freeze()
